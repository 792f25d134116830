"""Benchmark datasets (RITM layout: ``images/`` beside ``masks/``, paired by file stem) and single pairs.

Where the data comes from, in order:

1. the ``root`` argument: a folder holding ``berkeley/``, ``grabcut/``, ... (or the dataset folder
   itself);
2. the environment variable ``IISLIB_DATA`` (same meaning);
3. a download of the official zip with pooch into the user's cache, every extracted file checked
   against the SHA256 manifest shipped in ``iislib/manifests/``.

Mask rules per dataset:

=========== ==================================================================================
berkeley    one channel, > 128 is foreground
grabcut     0 background, 255 foreground, grey (64 < v < 192, the 128 band) ignored
davis       every non-zero label is foreground (objects merged into one)
folder      any other folder in this layout: one channel, > 128 is foreground
=========== ==================================================================================
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}

URLS: dict[str, str] = {
    "berkeley": "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0/Berkeley.zip",
    "grabcut": "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0/GrabCut.zip",
    "davis": "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0/DAVIS.zip",
}
DATASET_NAMES: tuple[str, ...] = tuple(URLS)
MANIFESTS = Path(__file__).parent / "manifests"


class DataError(ValueError):
    """A dataset or file that cannot be used, with the path and the reason."""


@dataclass(frozen=True)
class Sample:
    """One evaluation instance.

    Attributes:
        name: the file stem, unique within its dataset.
        image: uint8 (H, W, 3) RGB.
        gt: bool (H, W) foreground.
        ignore: bool (H, W) pixels left out of scores and clicks, or None.
    """

    name: str
    image: np.ndarray
    gt: np.ndarray
    ignore: np.ndarray | None = None


# ----------------------------------------------------------------------------------------------
# reading files


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB; DataError naming the file if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from None


def read_mask_values(path: str | Path) -> np.ndarray:
    """A mask file as uint8 (H, W): the first channel, or the grey level."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "1", "I", "I;16", "F"):
                a = np.asarray(im)
                return (
                    np.clip(a, 0, 255).astype(np.uint8)
                    if im.mode != "1"
                    else a.astype(np.uint8) * 255
                )
            a = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{path}: not a readable mask image ({e})") from None
    return a[..., 0] if a.ndim == 3 else a


def rule_threshold(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Berkeley's rule: > 128 is foreground, nothing ignored."""
    return values > 128, None


def rule_grabcut(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """GrabCut's rule: >= 192 foreground, the grey band (64 < v < 192) ignored."""
    ignore = (values > 64) & (values < 192)
    return values >= 192, (ignore if ignore.any() else None)


def rule_nonzero(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """DAVIS's rule: every non-zero label is foreground."""
    return values > 0, None


MaskRule = Callable[[np.ndarray], tuple[np.ndarray, "np.ndarray | None"]]
RULES: dict[str, MaskRule] = {
    "berkeley": rule_threshold,
    "grabcut": rule_grabcut,
    "davis": rule_nonzero,
    "folder": rule_threshold,
}


def check_pair(image: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None, what: str) -> None:
    """Raise DataError when a sample cannot be evaluated (``what`` names it in the message)."""
    if image.shape[:2] != gt.shape:
        raise DataError(
            f"{what}: image is {image.shape[1]}x{image.shape[0]} (WxH) but mask is "
            f"{gt.shape[1]}x{gt.shape[0]}"
        )
    valid = ~ignore if ignore is not None else np.ones(gt.shape, dtype=bool)
    if not gt[valid].any():
        raise DataError(f"{what}: the mask is empty (no foreground pixel)")
    if gt[valid].all():
        raise DataError(f"{what}: the mask is all foreground (no background pixel)")


def load_sample(
    image_path: str | Path,
    mask_path: str | Path,
    rule: MaskRule = rule_threshold,
    name: str | None = None,
) -> Sample:
    """Read and check one (image, mask) pair with a dataset's mask ``rule``."""
    image = read_image(image_path)
    gt, ignore = rule(read_mask_values(mask_path))
    check_pair(image, gt, ignore, f"{image_path} / {mask_path}")
    return Sample(name or Path(image_path).stem, image, gt, ignore)


def mask_from_array(mask: np.ndarray) -> np.ndarray:
    """The demo's rule on a decoded mask: pixels whose channel mean is < 128 are background."""
    a = np.asarray(mask)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=-1) if a.shape[-1] >= 3 else a[..., 0]
    if a.ndim != 2:
        raise DataError(f"a mask must be (H, W) or (H, W, C), got shape {np.asarray(mask).shape}")
    if a.dtype == np.bool_:
        return a.copy()
    return a >= 128


def load_pair(image_path: str | Path, mask_path: str | Path) -> Sample:
    """An image and a mask from any two files, with the paper demo's rule.

    Mask pixels whose channel mean is below 128 are background, the others foreground.
    Raises DataError naming the file and the problem: unreadable file, sizes differ, mask empty
    or all foreground.
    """
    image = read_image(image_path)
    mask_path = Path(mask_path)
    if not mask_path.is_file():
        raise DataError(f"{mask_path}: no such file")
    try:
        with Image.open(mask_path) as im:
            values = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{mask_path}: not a readable mask image ({e})") from None
    gt = mask_from_array(values)
    check_pair(image, gt, None, f"{image_path} / {mask_path}")
    return Sample(Path(image_path).stem, image, gt, None)


# ----------------------------------------------------------------------------------------------
# datasets


class Dataset:
    """A folder of (image, mask) pairs, read lazily one sample at a time.

    ``len(ds)``, ``ds[i]`` (a Sample), ``ds.names`` and iteration; ``ds.subset(n)`` keeps the first n.
    """

    def __init__(
        self, folder: str | Path, rule: MaskRule = rule_threshold, name: str | None = None
    ):
        folder = Path(folder)
        images, masks = folder / "images", folder / "masks"
        for d in (images, masks):
            if not d.is_dir():
                raise DataError(f"{folder}: missing folder {d.name}/ (expected images/ and masks/)")
        imgs = {p.stem: p for p in sorted(images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        msks = {p.stem: p for p in sorted(masks.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
        unpaired = sorted(set(imgs) ^ set(msks))
        if unpaired:
            raise DataError(
                f"{folder}: {len(unpaired)} file(s) without a partner in images/ and masks/: "
                + ", ".join(unpaired[:5])
            )
        if not imgs:
            raise DataError(f"{folder}: no images in {images}")
        self.folder = folder
        self.name = name or folder.name
        self.rule = rule
        self._pairs = [(stem, imgs[stem], msks[stem]) for stem in sorted(imgs)]

    @property
    def names(self) -> list[str]:
        return [stem for stem, _, _ in self._pairs]

    def __len__(self) -> int:
        return len(self._pairs)

    def __getitem__(self, i: int | str) -> Sample:
        if isinstance(i, str):
            i = self.names.index(i)
        stem, img, msk = self._pairs[i]
        return load_sample(img, msk, self.rule, name=stem)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def subset(self, n: int | None) -> Dataset:
        """The first ``n`` samples (all when n is None)."""
        out = object.__new__(Dataset)
        out.__dict__.update(self.__dict__)
        out._pairs = self._pairs[:n] if n is not None else list(self._pairs)
        return out

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} samples, {self.folder})"


def data_root(root: str | Path | None = None) -> Path | None:
    """The local data root: ``root``, else ``$IISLIB_DATA``, else None (download)."""
    if root is not None:
        return Path(root)
    env = os.environ.get("IISLIB_DATA")
    return Path(env) if env else None


def _find_layout(base: Path, name: str) -> Path | None:
    """The folder holding images/ and masks/ for ``name`` under ``base`` (case-insensitive)."""
    if (base / "images").is_dir() and (base / "masks").is_dir() and base.name.lower() == name:
        return base
    for cand in (base / name, base / name.capitalize(), base / name.upper(), base / "GrabCut"):
        if cand.name.lower() == name and (cand / "images").is_dir():
            return cand
    for cand in base.rglob("images"):
        if cand.parent.name.lower() == name and (cand.parent / "masks").is_dir():
            return cand.parent
    return None


def load_dataset(name_or_path: str | Path, root: str | Path | None = None) -> Dataset:
    """A benchmark by name (``berkeley``, ``grabcut``, ``davis``) or any folder in the same layout.

    Args:
        name_or_path: a dataset name, or the path of a folder with images/ and masks/.
        root: folder holding the named datasets; default ``$IISLIB_DATA``, else download.
    """
    key = str(name_or_path)
    if key.lower() in URLS:
        name = key.lower()
        base = data_root(root)
        if base is not None:
            if not base.is_dir():
                raise DataError(f"data root {base} does not exist (from root= or IISLIB_DATA)")
            folder = _find_layout(base, name)
            if folder is None:
                raise DataError(f"{base}: no {name}/ folder with images/ and masks/ in it")
        else:
            folder = download(name)
        return Dataset(folder, RULES[name], name=name)
    path = Path(key)
    if path.is_dir():
        return Dataset(path, RULES["folder"], name=path.name)
    raise DataError(
        f"unknown dataset {key!r}: not one of {', '.join(DATASET_NAMES)} and not a folder"
    )


# ----------------------------------------------------------------------------------------------
# download (pooch) and verification


def read_manifest(path: str | Path) -> dict[str, str]:
    """``sha256sum`` format (``HASH  relative/path``) -> {relative path: hash}."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip().removeprefix("./")] = digest
    return out


def verify_folder(folder: Path, manifest: dict[str, str]) -> None:
    """Raise DataError listing every file of ``manifest`` missing or with another SHA256."""
    import pooch

    bad = []
    for rel, digest in manifest.items():
        f = folder / rel
        if not f.is_file():
            bad.append(f"{rel} (missing)")
        elif pooch.file_hash(str(f)) != digest:
            bad.append(f"{rel} (checksum differs)")
    if bad:
        raise DataError(f"{folder}: {len(bad)} file(s) fail verification: " + ", ".join(bad[:5]))


def download(
    name: str,
    url: str | None = None,
    manifest: dict[str, str] | None = None,
    cache: str | Path | None = None,
) -> Path:
    """Download and unzip dataset ``name`` into the cache; verify it; return its folder.

    Args:
        name: dataset name (folder name inside the zip, case-insensitive).
        url: zip address (default: the official one in ``URLS``).
        manifest: {relative path: sha256} (default: the shipped one; DAVIS has none: warned).
        cache: where to keep it (default ``pooch.os_cache("iislib")``).
    """
    import pooch

    url = url or URLS[name]
    cache = Path(cache) if cache is not None else Path(pooch.os_cache("iislib"))
    if manifest is None:
        mf = MANIFESTS / f"{name}.txt"
        manifest = read_manifest(mf) if mf.is_file() else None
    extract_dir = cache / name
    files = pooch.retrieve(
        url,
        known_hash=None,
        fname=f"{name}.zip",
        path=cache,
        processor=pooch.Unzip(extract_dir=str(extract_dir)),
        progressbar=False,
    )
    if not files:
        raise DataError(f"{url}: the archive is empty")
    folder = _find_layout(extract_dir, name)
    if folder is None:
        raise DataError(f"{url}: the archive has no {name}/images and masks/ folders")
    if manifest is None:
        warnings.warn(f"no SHA256 manifest for {name}: files not verified", stacklevel=2)
    else:
        verify_folder(folder, manifest)
    return folder
