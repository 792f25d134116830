"""Segmentation scores per click, and the summaries over clicks and images.

Per-mask scores (``scores``) count the pixels outside ``ignore`` only. A ratio whose denominator is
0 is 1.0 when prediction and ground truth are both empty there, else 0.0: never NaN
(``docs/decisions.md``, "0/0").

The paper author's code differs (``docs/decisions.md``, "Metric quirks of the paper's code"): its
"accuracy" is TP/(TP+FN),
that is recall, and its Dice equals its F-score. ``reference_scores`` reproduces those numbers so a
notebook can show them beside ours.

Summaries over a batch of IoU curves (``ious`` of shape (n_images, max_clicks), click k at column
k-1): ``noc`` (RITM's rule), ``nof``, ``miou_at`` and ``auc``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

METRIC_NAMES: tuple[str, ...] = ("accuracy", "precision", "recall", "dice", "iou", "fscore")


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
