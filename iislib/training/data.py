"""Training data for the compact models: Weizmann horses and BSDS500 regions, with augmentation.

Never Berkeley, GrabCut or DAVIS: those are for evaluation. Both training sets live under a root
given at run time (``$IISLIB_DATA`` or ``--data``):

- ``train_weizmann_horses/``: ``images/`` (RGB, original size) resized to the size of ``masks/``
  (JPEG masks, threshold 128); ``horse318`` is almost black, so its ``gray/`` version is used.
- ``train_bsds500_nonbench/``: ``images/*.jpg`` and ``groundTruth/*.mat`` with 4-9 human region
  maps each; any region of 1%-70% of the image can serve as a target object, the others are
  "other objects" for negative clicks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from iislib.experiment.data import DataError, read_image, read_mask_values


@dataclass(frozen=True)
class TrainItem:
    """One training image with its candidate objects.

    Attributes:
        image: uint8 (H, W, 3).
        objects: integer (H, W) region map; 0 is "no object" (background), k > 0 is object k.
        targets: labels in ``objects`` that may be drawn as the target.
    """

    name: str
    image: np.ndarray
    objects: np.ndarray
    targets: tuple[int, ...]


def load_horses(folder: Path) -> list[TrainItem]:
    """The Weizmann horses: one object (the horse) per image."""
    items = []
    for mask_path in sorted((folder / "masks").glob("*.jpg")):
        mask = read_mask_values(mask_path) > 128
        src = folder / "gray" / mask_path.name if mask_path.stem == "horse318" else None
        image = read_image(src or folder / "images" / mask_path.name)
        if image.shape[:2] != mask.shape:
            image = cv2.resize(image, mask.shape[::-1], interpolation=cv2.INTER_AREA)
        if mask.any() and not mask.all():
            items.append(TrainItem(mask_path.stem, image, mask.astype(np.uint16), (1,)))
    return items


def load_bsds(folder: Path, min_frac: float = 0.01, max_frac: float = 0.7) -> list[TrainItem]:
    """BSDS500 (benchmark images removed): one item per (image, annotator) region map."""
    from scipy.io import loadmat

    items = []
    for mat in sorted((folder / "groundTruth").glob("*.mat")):
        image = read_image(folder / "images" / f"{mat.stem}.jpg")
        for k, entry in enumerate(loadmat(str(mat))["groundTruth"][0]):
            seg = np.asarray(entry["Segmentation"][0, 0], dtype=np.uint16)
            if seg.shape != image.shape[:2]:
                raise DataError(f"{mat}: segmentation {k} is {seg.shape}, image {image.shape[:2]}")
            labels, counts = np.unique(seg, return_counts=True)
            frac = counts / seg.size
            ok = tuple(int(v) for v in labels[(frac >= min_frac) & (frac <= max_frac)])
            if ok:
                items.append(TrainItem(f"{mat.stem}_{k}", image, seg, ok))
    return items


def load_training_set(
    root: str | Path, which: tuple[str, ...] = ("horses", "bsds")
) -> list[TrainItem]:
    """The training items under ``root`` (the folder holding ``train_*``)."""
    root = Path(root)
    items: list[TrainItem] = []
    if "horses" in which:
        folder = root / "train_weizmann_horses"
        if not folder.is_dir():
            raise DataError(f"{root}: missing train_weizmann_horses/")
        items += load_horses(folder)
    if "bsds" in which:
        folder = root / "train_bsds500_nonbench"
        if not folder.is_dir():
            raise DataError(f"{root}: missing train_bsds500_nonbench/")
        items += load_bsds(folder)
    if not items:
        raise DataError(f"{root}: no training items")
    return items


# ----------------------------------------------------------------------------------------------
# augmentation


def augment(
    item: TrainItem,
    rng: np.random.Generator,
    size: int = 192,
    scale: tuple[float, float] = (0.75, 1.4),
    merge_prob: float = 0.15,
    min_pixels: int = 60,
    ref_side: int | None = None,
    minmax_prob: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random training crop: scale, crop (object kept in view), flip, colour jitter.

    The image's short side is scaled to ``uniform(*scale) * ref_side`` (``ref_side`` None: the
    crop size). Set ``ref_side`` to the side the models are evaluated at (224 with the ``ipol``
    settings) so that objects, click disks and Gaussians have the sizes seen at test time; the
    crop then shows a window of the image. ``minmax_prob``: how often the crop is min-max
    stretched to the full range, as the ``ipol`` settings do to every test image.

    Returns:
        image uint8 (size, size, 3), target bool (size, size), others bool (size, size) (pixels
        of other objects, for RITM's "other object" negatives).
    """
    label = int(rng.choice(item.targets))
    target = item.objects == label
    if len(item.targets) > 1 and rng.random() < merge_prob:
        # RITM merges two objects into one target now and then.
        extra = int(rng.choice([t for t in item.targets if t != label]))
        target = target | (item.objects == extra)
    others = (item.objects > 0) & ~target if item.targets != (1,) else np.zeros_like(target)

    h, w = target.shape
    s = rng.uniform(*scale) * (ref_side or size) / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    image = cv2.resize(item.image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    target = cv2.resize(target.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST) > 0
    others = cv2.resize(others.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST) > 0

    rows, cols = np.nonzero(target)
    for _ in range(10):
        # Centre the crop on a random object pixel, jittered, clipped to the image.
        i = rng.integers(rows.size)
        top = int(np.clip(rows[i] - rng.integers(size), 0, nh - size))
        left = int(np.clip(cols[i] - rng.integers(size), 0, nw - size))
        t = target[top : top + size, left : left + size]
        if min_pixels <= t.sum() < t.size - min_pixels:
            break
    img = image[top : top + size, left : left + size]
    t = target[top : top + size, left : left + size]
    o = others[top : top + size, left : left + size]
    if rng.random() < 0.5:
        img, t, o = img[:, ::-1], t[:, ::-1], o[:, ::-1]
    img = img.astype(np.float32)
    img = img * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)  # contrast, brightness
    img = img + rng.uniform(-10, 10, size=3)  # RGB shift
    img = np.clip(img, 0, 255)
    if rng.random() < minmax_prob and img.max() > img.min():
        img = (img - img.min()) * (255.0 / (img.max() - img.min()))
    img = np.round(img).astype(np.uint8)
    return np.ascontiguousarray(img), np.ascontiguousarray(t), np.ascontiguousarray(o)
