"""RITM's evaluation-time predictor: zoom-in on the object and horizontal-flip averaging.

``ZoomInFlipPredictor(model)`` wraps any ``IISModel`` and reproduces what RITM's
``BasePredictor`` with ``ZoomIn(target_size=400, skip_clicks=1, expansion_ratio=1.4,
min_crop_size=200, recompute_thresh_iou=0.5, prob_thresh=0.5)`` and ``with_flip=True`` does at
each click (the "cvpr" evaluation mode; 600 instead of 400 for DAVIS):

1. Zoom-in (from the second click on): the previous prediction thresholded at ``prob_thresh``
   plus the positive click pixels gives a bounding box (rows rmin..rmax, cols cmin..cmax,
   inclusive); it is expanded about its centre by ``expansion_ratio``, to at least
   ``min_crop_size`` per side, rounded with Python's ``round`` and clamped to the image. The box
   of the previous step is kept unless a positive click falls outside it (rmin <= r < rmax,
   cmin <= c < cmax) or its IoU with the new box (1-D IoUs of the inclusive row and column
   segments, multiplied) is below ``recompute_iou``. Image and previous map are cropped to the
   box and resized bilinearly (align_corners=True) so that the longer side is ``target_size``;
   a click (r, c) becomes (h' (r - rmin) / h, w' (c - cmin) / w) (floats), h, w the box sides.
2. Flip: the crop and its mirror image (clicks at col' = w' - 1 - col) go through the network
   in one batch; the two logit maps are averaged (the mirrored one mirrored back), then the
   sigmoid is applied.
3. The probabilities are resized back to the box (bilinear, align_corners=True) and pasted
   into a zero map of the image's size.

Models that offer ``predict_logits(images, clicks_lists, prevs)`` (``iislib.models.ritm.RITM``)
get exactly this, with float click coordinates and clicks outside the crop kept as RITM keeps
them. Other models get the probability maps of ``predict_batch`` averaged instead of the logits,
with clicks rounded to pixels and those outside the crop left out.

One difference from RITM, where its code misbehaves: when the previous prediction is empty
RITM feeds the whole image but then squeezes the output into the stale box of an earlier step;
here the whole-image prediction is returned as it is (the box is kept for later steps).

The zoom-in box depends on the trajectory's history: it lives in the trajectory's state
(``start``), which the loop opens before the first click and passes back with every call.
A call without a state has no history: the box is chosen afresh from ``prev``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from iislib.core.clicks import Click
from iislib.core.model import IISModel

Box = tuple[int, int, int, int]
"""(rmin, rmax, cmin, cmax), inclusive pixel bounds."""

PointList = list[tuple[float, float, bool]]


def mask_bbox(mask: np.ndarray) -> Box:
    """Tight inclusive box (rmin, rmax, cmin, cmax) of the True pixels of a non-empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def expand_bbox(box: Box, ratio: float, min_size: float | None = None) -> Box:
    """Box scaled by ``ratio`` about its centre, sides at least ``min_size``, ends rounded
    with Python's ``round`` (half to even), as RITM does; may leave the image."""
    rmin, rmax, cmin, cmax = box
    rc, cc = 0.5 * (rmin + rmax), 0.5 * (cmin + cmax)
    h, w = ratio * (rmax - rmin + 1), ratio * (cmax - cmin + 1)
    if min_size is not None:
        h, w = max(h, min_size), max(w, min_size)
    return (
        int(round(rc - 0.5 * h)),
        int(round(rc + 0.5 * h)),
        int(round(cc - 0.5 * w)),
        int(round(cc + 0.5 * w)),
    )


def clamp_bbox(box: Box, shape: tuple[int, int]) -> Box:
    """Box clipped to an image of ``shape`` (H, W)."""
    h, w = shape
    return max(0, box[0]), min(h - 1, box[1]), max(0, box[2]), min(w - 1, box[3])


def object_roi(
    mask: np.ndarray, clicks: Sequence[Click], expansion_ratio: float, min_crop_size: float
) -> Box:
    """Zoom-in box of a predicted mask (bool (H, W)) and the positive clicks."""
    mask = np.array(mask, dtype=bool)
    for c in clicks:
        if c.positive:
            mask[int(c.row), int(c.col)] = True
    box = expand_bbox(mask_bbox(mask), expansion_ratio, min_crop_size)
    return clamp_bbox(box, mask.shape)


def _segment_iou(a: int, b: int, c: int, d: int) -> float:
    inter = max(0, min(b, d) - max(a, c) + 1)
    union = max(1e-6, max(b, d) - min(a, c) + 1)
    return inter / union


def bbox_iou(b1: Box, b2: Box) -> float:
    """RITM's box IoU: the product of the 1-D IoUs of the inclusive row and column ranges."""
    return _segment_iou(b1[0], b1[1], b2[0], b2[1]) * _segment_iou(b1[2], b1[3], b2[2], b2[3])


def clicks_inside(box: Box, clicks: Sequence[Click]) -> bool:
    """All positive clicks satisfy rmin <= r < rmax and cmin <= c < cmax (RITM's half-open test)."""
    rmin, rmax, cmin, cmax = box
    return all(rmin <= c.row < rmax and cmin <= c.col < cmax for c in clicks if c.positive)


def zoom_size(box: Box, target_size: int) -> tuple[int, int]:
    """(h', w') of the resized crop: the longer side becomes ``target_size``."""
    h, w = box[1] - box[0] + 1, box[3] - box[2] + 1
    scale = target_size / max(h, w)
    return int(round(h * scale)), int(round(w * scale))


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


@dataclass
class ZoomState:
    """One trajectory's history as the zoom-in needs it: the box of the last call (None: no
    zoom-in yet)."""

    box: Box | None = None


class ZoomInFlipPredictor(IISModel):
    """RITM's evaluation protocol around ``model`` (see the module docstring).

    Args:
        model: the wrapped model (``predict_logits`` is used when it has one).
        target_size: longer side of the zoomed crop, pixels (RITM: 400; 600 for DAVIS).
        skip_clicks: no zoom-in while there are at most this many clicks; a negative value
            zooms from the first click (whole image when nothing is predicted yet).
        expansion_ratio, min_crop_size: box growth about the predicted object.
        recompute_iou: keep the previous box while its IoU with the new one is at least this.
        prob_thresh: threshold of the previous prediction that defines the object.
        zoom_in, flip: switch either part off.

    The wrapped model is called without trajectory states: it sees crops that change with the
    box, not the trajectory's image.
    """

    def __init__(
        self,
        model: IISModel,
        *,
        target_size: int = 400,
        skip_clicks: int = 1,
        expansion_ratio: float = 1.4,
        min_crop_size: float = 200,
        recompute_iou: float = 0.5,
        prob_thresh: float = 0.5,
        zoom_in: bool = True,
        flip: bool = True,
    ) -> None:
        if target_size < 1:
            raise ValueError(f"target_size must be positive, got {target_size}")
        self.model = model
        self.name = getattr(model, "name", "model")
        self.target_size = int(target_size)
        self.skip_clicks = int(skip_clicks)
        self.expansion_ratio = float(expansion_ratio)
        self.min_crop_size = float(min_crop_size)
        self.recompute_iou = float(recompute_iou)
        self.prob_thresh = float(prob_thresh)
        self.zoom_in = zoom_in
        self.flip = flip

    def __repr__(self) -> str:
        return f"ZoomInFlipPredictor({self.model!r}, target_size={self.target_size})"

    # -- state --------------------------------------------------------------------------------

    def start(self, image: np.ndarray) -> ZoomState:
        """A trajectory on ``image`` begins: no box yet."""
        return ZoomState()

    def _predict(
        self,
        image: np.ndarray,
        clicks: list[Click],
        prev: np.ndarray,
        state: ZoomState | None = None,
    ) -> np.ndarray:
        clicks = [Click(int(c.row), int(c.col), bool(c.positive)) for c in clicks]
        box = state.box if state is not None else None
        prob, box = self._step(image, clicks, prev, prev, box)
        if state is not None:
            state.box = box
        return prob

    # -- one click ----------------------------------------------------------------------------

    def choose_box(
        self, roi_probs: np.ndarray, clicks: Sequence[Click], box: Box | None
    ) -> tuple[Box | None, Box | None]:
        """(box to zoom on now or None, box to remember), given the previous box."""
        if not self.zoom_in or len(clicks) <= self.skip_clicks:
            return None, box
        mask = roi_probs > self.prob_thresh
        current: Box | None = None
        if mask.any():
            current = object_roi(mask, clicks, self.expansion_ratio, self.min_crop_size)
        elif self.skip_clicks < 0:
            h, w = mask.shape
            current = (0, h - 1, 0, w - 1)
        if current is None:
            return None, box
        if (
            box is None
            or not clicks_inside(box, clicks)
            or bbox_iou(current, box) < self.recompute_iou
        ):
            box = current
        return box, box

    def _step(
        self,
        image: np.ndarray,
        clicks: list[Click],
        prev: np.ndarray,
        roi_probs: np.ndarray,
        box: Box | None,
    ) -> tuple[np.ndarray, Box | None]:
        zoom, box = self.choose_box(roi_probs, clicks, box)
        prob = self._predict_region(image, prev, clicks, zoom)
        if self.zoom_in and box is None and self.skip_clicks <= 0:
            # RITM's check_possible_recalculation: zoom at once when the object is small.
            mask = prob > self.prob_thresh
            if mask.any():
                h, w = mask.shape
                possible = object_roi(mask, [], self.expansion_ratio, self.min_crop_size)
                if bbox_iou(possible, (0, h - 1, 0, w - 1)) < 0.5:
                    return self._step(image, clicks, prev, prob, None)
        return prob, box

    def _predict_region(
        self, image: np.ndarray, prev: np.ndarray, clicks: list[Click], zoom: Box | None
    ) -> np.ndarray:
        """Probabilities (H, W) after zooming on ``zoom`` (None: the whole image) and flipping."""
        x = torch.from_numpy(np.concatenate([image, prev[..., None]], axis=2)).permute(2, 0, 1)
        x = x[None].to(torch.float32)
        points: PointList = [(float(c.row), float(c.col), c.positive) for c in clicks]
        if zoom is not None:
            rmin, rmax, cmin, cmax = zoom
            bh, bw = rmax - rmin + 1, cmax - cmin + 1
            nh, nw = zoom_size(zoom, self.target_size)
            x = _resize(x[:, :, rmin : rmax + 1, cmin : cmax + 1], (nh, nw))
            points = [(nh * (r - rmin) / bh, nw * (c - cmin) / bw, p) for r, c, p in points]
        batch = [x]
        lists = [points]
        width = x.shape[-1]
        if self.flip:
            batch.append(torch.flip(x, dims=[3]))
            lists.append([(r, width - c - 1, p) for r, c, p in points])
        xb = torch.cat(batch, 0).permute(0, 2, 3, 1).contiguous().numpy()
        images, prevs = xb[..., :3], xb[..., 3]
        if hasattr(self.model, "predict_logits"):
            logits = torch.from_numpy(self.model.predict_logits(images, lists, prevs))
            if self.flip:
                logits = 0.5 * (logits[:1] + torch.flip(logits[1:], dims=[2]))
            out = torch.sigmoid(logits[:1])
        else:
            out = torch.from_numpy(self._generic(images, lists, prevs))
            if self.flip:
                out = 0.5 * (out[:1] + torch.flip(out[1:], dims=[2]))
            out = out[:1]
        if zoom is None:
            return out[0].numpy().astype(np.float32, copy=False)
        rmin, rmax, cmin, cmax = zoom
        back = _resize(out[None], (rmax - rmin + 1, cmax - cmin + 1))[0, 0]
        full = np.zeros(image.shape[:2], dtype=np.float32)
        full[rmin : rmax + 1, cmin : cmax + 1] = back.numpy()
        return full

    def _generic(self, images: np.ndarray, lists: list[PointList], prevs: np.ndarray) -> np.ndarray:
        """Probabilities (B, h, w) of a model without ``predict_logits``: clicks rounded to
        pixels, those outside the crop dropped."""
        h, w = images.shape[1:3]
        clicks = [
            [
                Click(int(round(r)), int(round(c)), p)
                for r, c, p in pts
                if 0 <= round(r) < h and 0 <= round(c) < w
            ]
            for pts in lists
        ]
        probs = self.model.predict_batch(
            list(np.clip(images, 0.0, 1.0)), clicks, list(np.clip(prevs, 0.0, 1.0))
        )
        return np.stack(probs).astype(np.float32)


__all__ = [
    "ZoomInFlipPredictor",
    "bbox_iou",
    "clamp_bbox",
    "clicks_inside",
    "expand_bbox",
    "mask_bbox",
    "object_roi",
    "zoom_size",
]
