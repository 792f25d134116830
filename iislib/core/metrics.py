"""Segmentation scores per click, and the summaries over clicks and images.

Per-mask scores (``scores``) count the pixels outside ``ignore`` only. A ratio whose denominator is
0 is 1.0 when prediction and ground truth are both empty there, else 0.0: never NaN
(``docs/decisions.md``, "0/0").

The paper author's code differs (``docs/decisions.md``, "Metric quirks of the paper's code"): its
"accuracy" is TP/(TP+FN),
that is recall, and its Dice equals its F-score. ``reference_scores`` reproduces those numbers so a
notebook can show them beside ours.

``boundary_iou`` (Cheng et al., CVPR 2021) scores the band along each mask's border, where IoU
barely moves once the object is roughly covered; ``click_scores`` gives every per-click column of
a results table (``SCORE_NAMES``: the six scores, then ``boundary_iou``).

Summaries over a batch of IoU curves (``ious`` of shape (n_images, max_clicks), click k at column
k-1): ``noc`` (RITM's rule), ``nof``, ``miou_at`` and ``auc``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "dice", "iou", "fscore")
"""The paper's six scores (``Scores``), all from the confusion counts."""
BOUNDARY_IOU = "boundary_iou"
SCORE_NAMES: tuple[str, ...] = (*METRIC_NAMES, BOUNDARY_IOU)
"""Every per-click score column of a results table (``click_scores``): the six, then Boundary IoU."""
BOUNDARY_RATIO = 0.02
"""Boundary IoU's default band width, as a fraction of the image diagonal (Cheng et al.)."""


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of a binary prediction against the ground truth (ignored pixels excluded)."""

    tp: int
    fp: int
    fn: int
    tn: int


@dataclass(frozen=True)
class Scores:
    """The six scores of one prediction; every value is in [0, 1]."""

    accuracy: float
    precision: float
    recall: float
    dice: float
    iou: float
    fscore: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def as_binary(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    """``mask`` as a bool array: bool, or integers that are all 0 or 1; ValueError otherwise.

    Casting anything else to bool would count every non-zero value as foreground: a probability
    map (0.3 -> True), NaN (True) or a 0/255 mask read as 0/1 would all be scored silently.
    """
    a = np.asarray(mask)
    if a.dtype == np.bool_:
        return a
    if np.issubdtype(a.dtype, np.integer):
        outside = (a != 0) & (a != 1)
        if not outside.any():
            return a.astype(bool)
        found = ", ".join(str(v) for v in np.unique(a[outside])[:3])
        raise ValueError(
            f"{name} must be bool or integers 0/1, got {a.dtype} values such as {found}"
        )
    raise ValueError(
        f"{name} must be bool (or integers 0/1), got dtype {a.dtype}; threshold a probability "
        f"map first (prob > 0.5)"
    )


def confusion(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> Confusion:
    """Confusion counts of bool (H, W) ``pred`` against bool (H, W) ``gt``, outside ``ignore``.

    Each of the three may also be integers 0/1; floats and other values raise ValueError.
    """
    pred = as_binary(pred, "pred")
    gt = as_binary(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred has shape {pred.shape} but gt has shape {gt.shape}")
    if ignore is not None:
        ignore = as_binary(ignore, "ignore")
        if ignore.shape != gt.shape:
            raise ValueError(f"ignore has shape {ignore.shape} but gt has shape {gt.shape}")
        keep = ~ignore
        pred, gt = pred[keep], gt[keep]
    tp = int(np.count_nonzero(pred & gt))
    fp = int(np.count_nonzero(pred & ~gt))
    fn = int(np.count_nonzero(~pred & gt))
    tn = int(pred.size - tp - fp - fn)
    return Confusion(tp, fp, fn, tn)


def _ratio(num: float, den: float, both_empty: bool) -> float:
    if den == 0:
        return 1.0 if both_empty else 0.0
    return float(num) / float(den)


def scores_from_confusion(c: Confusion, beta: float = 1.0) -> Scores:
    """The six scores from confusion counts (0/0 rule in the module docstring)."""
    both_empty = c.tp + c.fp == 0 and c.tp + c.fn == 0
    n = c.tp + c.fp + c.fn + c.tn
    precision = _ratio(c.tp, c.tp + c.fp, both_empty)
    recall = _ratio(c.tp, c.tp + c.fn, both_empty)
    b2 = beta * beta
    fscore = _ratio((1 + b2) * precision * recall, b2 * precision + recall, both_empty)
    return Scores(
        accuracy=_ratio(c.tp + c.tn, n, both_empty),
        precision=precision,
        recall=recall,
        dice=_ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn, both_empty),
        iou=_ratio(c.tp, c.tp + c.fp + c.fn, both_empty),
        fscore=fscore,
    )


def scores(
    pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None, beta: float = 1.0
) -> Scores:
    """Accuracy, precision, recall, Dice, IoU and F-beta of a binary prediction.

    Args:
        pred: bool (H, W) prediction (integers 0/1 accepted; floats, NaN or other values raise
            ValueError: threshold a probability map first).
        gt: bool (H, W) ground truth (same rule).
        ignore: bool (H, W) pixels left out of every count, or None (same rule).
        beta: weight of recall in the F-score. With beta=1 the F-score equals Dice for binary masks
            (2PR/(P+R) = 2TP/(2TP+FP+FN)); the two are kept apart for other betas.

    Returns:
        Scores. accuracy is real pixel accuracy (TP+TN)/N, not the reference code's recall.
    """
    return scores_from_confusion(confusion(pred, gt, ignore), beta=beta)


def boundary_width(shape: tuple[int, ...], dilation_ratio: float = BOUNDARY_RATIO) -> int:
    """Band width d in pixels for an (H, W) image: ``max(1, round(ratio x diagonal))``.

    Python's ``round`` (half to even), as Cheng et al.'s code; 481x321 gives d = 12, 224x224 d = 6.
    """
    if not dilation_ratio >= 0:
        raise ValueError(f"dilation_ratio must be >= 0, got {dilation_ratio!r}")
    h, w = shape[:2]
    return max(1, round(dilation_ratio * math.hypot(h, w)))


_KERNEL = np.ones((3, 3), np.uint8)


def mask_boundary(mask: np.ndarray, width: int) -> np.ndarray:
    """bool (H, W): the pixels of ``mask`` that its erosion removes (its inner border band).

    The mask is padded with one zero pixel, then eroded ``width`` times with a 3x3 square, so a
    mask cut by the image border has a boundary along it: the band holds the mask's pixels whose
    chessboard distance to a background pixel (or to the outside of the image) is <= ``width``.
    """
    if int(width) < 1:
        raise ValueError(f"the band width must be at least 1 pixel, got {width!r}")
    return _boundary_u8(_as_u8(as_binary(mask))[0], int(width)).view(bool)


def _as_u8(*masks: np.ndarray) -> list[np.ndarray]:
    """Contiguous uint8 0/1 views of bool masks (what cv2 takes, without a copy when it can)."""
    return [np.ascontiguousarray(m, dtype=bool).view(np.uint8) for m in masks]


def _boundary_u8(m: np.ndarray, width: int) -> np.ndarray:
    # cv2's default border (the largest value) never erodes: the zero pad is the only outside.
    # All in cv2 on uint8: NumPy's pad and bool operators took 5x longer (0.7-0.9 ms against
    # 0.07-0.18 ms per 481x321 mask, back to back on a loaded 2-core machine).
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, _KERNEL, iterations=width)
    return np.ascontiguousarray(cv2.subtract(padded, eroded)[1:-1, 1:-1])


def boundary_iou(
    pred: np.ndarray,
    gt: np.ndarray,
    dilation_ratio: float = BOUNDARY_RATIO,
    ignore: np.ndarray | None = None,
) -> float:
    """Boundary IoU (Cheng et al., CVPR 2021) of bool (H, W) ``pred`` against ``gt``.

    |B(gt) & B(pred)| / |B(gt) | B(pred)|, where B(mask) = ``mask_boundary(mask, d)`` and
    d = ``boundary_width((H, W), dilation_ratio)``. 1.0 when both boundaries are empty (the 0/0
    rule), in [0, 1] otherwise.

    ``ignore`` (bool (H, W) or None) leaves pixels out as the other scores do: ignored pixels
    count as background in both masks before the boundaries are drawn, so they are never part
    of a boundary (never counted) and neither mask's values there can change the score; the
    score stays symmetric (``docs/decisions.md``, "Boundary IoU"). Masks follow ``as_binary``'s
    rule (bool, or integers 0/1).
    """
    pred = as_binary(pred, "pred")
    gt = as_binary(gt, "gt")
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred has shape {pred.shape} but gt has shape {gt.shape}; both (H, W)")
    d = boundary_width(gt.shape, dilation_ratio)
    if ignore is not None:
        ignore = as_binary(ignore, "ignore")
        if ignore.shape != gt.shape:
            raise ValueError(f"ignore has shape {ignore.shape} but gt has shape {gt.shape}")
        pred, gt = pred & ~ignore, gt & ~ignore
    p, g = _as_u8(pred, gt)
    bp, bg = _boundary_u8(p, d), _boundary_u8(g, d)
    union = cv2.countNonZero(cv2.bitwise_or(bp, bg))
    return 1.0 if union == 0 else cv2.countNonZero(cv2.bitwise_and(bp, bg)) / union


def click_scores(
    pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None
) -> dict[str, float]:
    """{name: value} for every ``SCORE_NAMES`` column: ``scores`` and ``boundary_iou``."""
    out = scores(pred, gt, ignore).as_dict()
    out[BOUNDARY_IOU] = boundary_iou(pred, gt, ignore=ignore)
    return out


def reference_scores(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The paper author's ``eval_metrics`` (foreground only), NaN where it divides by zero.

    Its "accuracy" is TP/(TP+FN) (recall) and its Dice equals its F-score. Shown beside
    ``scores`` only to explain differences with the published figures.
    """
    c = confusion(pred, gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        tp, fp, fn = np.float64(c.tp), np.float64(c.fp), np.float64(c.fn)
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        return {
            "accuracy": float(recall),
            "precision": float(precision),
            "recall": float(recall),
            "dice": float(2 * tp / (2 * tp + fp + fn)),
            "iou": float(tp / (tp + fp + fn)),
            "fscore": float(2 * precision * recall / (precision + recall)),
        }


# ----------------------------------------------------------------------------------------------
# summaries over clicks and images


def _curves(ious: np.ndarray) -> np.ndarray:
    a = np.asarray(ious, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise ValueError(f"expected IoU curves of shape (n_images, max_clicks), got {a.shape}")
    return a


def noc(ious: np.ndarray, k: float, max_clicks: int | None = None) -> np.ndarray:
    """Number of clicks to reach IoU ``k``, per image (RITM's rule).

    The first 1-based click whose IoU is >= ``k``; ``max_clicks`` (default: the curve length) when
    it is never reached, so a failure counts as max_clicks, not max_clicks + 1.

    Args:
        ious: float (n_images, n_clicks), or (n_clicks,) for one image.
    Returns:
        int64 (n_images,).
    """
    a = _curves(ious)
    if max_clicks is None:
        max_clicks = a.shape[1]
    a = a[:, :max_clicks]
    hit = a >= k
    first = np.argmax(hit, axis=1) + 1
    return np.where(hit.any(axis=1), first, max_clicks).astype(np.int64)


def nof(ious: np.ndarray, k: float, max_clicks: int | None = None) -> int:
    """Number of images whose IoU never reaches ``k`` within ``max_clicks`` (``docs/decisions.md``, "NoF").

    RITM's published ">=20" count also includes images that first reach k at the last click;
    ``noc(...) == max_clicks`` gives that count.
    """
    a = _curves(ious)
    if max_clicks is None:
        max_clicks = a.shape[1]
    return int((~(a[:, :max_clicks] >= k).any(axis=1)).sum())


def miou_at(ious: np.ndarray, k: int) -> float:
    """Mean IoU over images after ``k`` clicks (1-based)."""
    a = _curves(ious)
    if not 1 <= k <= a.shape[1]:
        raise ValueError(f"k must be in 1..{a.shape[1]}, got {k}")
    return float(a[:, k - 1].mean())


def auc(ious: np.ndarray) -> float:
    """Area under the mean-IoU-vs-clicks curve, normalised to [0, 1]: mean of mIoU@k, k = 1..K."""
    return float(_curves(ious).mean(axis=0).mean())
