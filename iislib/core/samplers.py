"""Training click procedures: how clicks are simulated while a model learns.

- ``ritm``: RITM's ``MultiPointSampler`` draws the initial clicks (1 + k positives with
  P(k) ∝ 0.8^k, k negatives likewise; positives in the eroded object; each negative from the
  background, another object or a border band), then 0-3 no-grad iterations each add one click
  uniformly among the pixels whose distance transform exceeds half the maximum of the larger
  error type (``ritm_next_click``).
- ``gto99``: iterative, each click exactly where the rgto99 robot puts it (the centre of the
  largest error region) on the network's own previous prediction; the first click is rgto99's on
  an empty prediction.

docs/decisions.md, "Training click procedures". Clicks are (row, col) ``Click``s.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from iislib.core.clicks import Click
from iislib.core.robots import border_dt_box, exact_sq, rgto99

PROCEDURES: tuple[str, ...] = ("ritm", "gto99")


def _geometric_count(rng: np.random.Generator, gamma: float, kmax: int) -> int:
    """k in 0..kmax with P(k) ∝ gamma^k."""
    p = gamma ** np.arange(kmax + 1)
    return int(rng.choice(kmax + 1, p=p / p.sum()))


def _uniform_pixel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    return divmod(int(idx[rng.integers(idx.size)]), mask.shape[1])


def multipoint_clicks(
    gt: np.ndarray,
    rng: np.random.Generator,
    others: np.ndarray | None = None,
    max_points: int = 24,
    gamma: float = 0.8,
    erode_prob: float = 0.9,
    neg_strategy_probs: tuple[float, float, float] = (0.1, 0.4, 0.5),
    expand_ratio: float = 0.1,
) -> list[Click]:
    """RITM's MultiPointSampler: the initial clicks of a training sample.

    Args:
        gt: bool (H, W) target object (non-empty).
        others: bool (H, W) pixels of other objects, or None.
        neg_strategy_probs: probabilities of the negative strategies (background, other object,
            border band).
    Returns:
        positives first, then negatives.
    """
    area = int(gt.sum())
    pos_region = gt
    if rng.random() < erode_prob:
        eroded = ndimage.binary_erosion(gt, structure=np.ones((3, 3)), iterations=3)
        if eroded.sum() > 10:
            pos_region = eroded
    n_pos = 1 + _geometric_count(rng, gamma, max_points - 1)
    n_neg = _geometric_count(rng, gamma, max_points)
    clicks = []
    for _ in range(n_pos):
        r, c = _uniform_pixel(pos_region, rng)
        clicks.append(Click(r, c, True))
    bg = ~gt
    other = others & ~gt if others is not None and others.any() else bg
    iters = max(1, math.ceil(expand_ratio * math.sqrt(area)))
    border = ndimage.binary_dilation(gt, structure=np.ones((3, 3)), iterations=iters) & ~gt
    regions = (bg, other, border if border.any() else bg)
    for _ in range(n_neg):
        region = regions[int(rng.choice(3, p=neg_strategy_probs))]
        rc = _uniform_pixel(region, rng)
        if rc is not None:
            clicks.append(Click(rc[0], rc[1], False))
    return clicks


def ritm_next_click(
    prob: np.ndarray, gt: np.ndarray, rng: np.random.Generator, threshold: float = 0.49
) -> Click | None:
    """RITM's iterative-training click: uniform where DT > max/2 of the larger error type.

    FN = gt & prob < t, FP = ~gt & prob > t; positive iff max DT(FN) > max DT(FP). RITM uses
    cv2's 5x5-mask DT; we use the exact one (a difference of a few percent in distances).
    Returns None when there is no error.
    """
    fn = gt & (prob < threshold)
    fp = ~gt & (prob > threshold)
    found = {}
    for region, positive in ((fn, True), (fp, False)):
        if region.any():
            found[positive] = border_dt_box(region)
    if not found:
        return None
    # Exact squared distances: float32 DT values of exactly tied pixels differ in the last bit.
    d2 = {k: (exact_sq(dt), top, left) for k, (dt, top, left) in found.items()}
    fn_max = int(d2[True][0].max()) if True in d2 else 0
    fp_max = int(d2[False][0].max()) if False in d2 else 0
    positive = fn_max > fp_max  # strict, as RITM: a tie gives a negative click
    sq, top, left = d2[positive]
    r, c = _uniform_pixel(4 * sq > sq.max(), rng)  # DT > max / 2, exactly
    return Click(top + r, left + c, positive)


def gto99_next_click(prob: np.ndarray, gt: np.ndarray, clicks: list[Click]) -> Click | None:
    """gto99's training click: where rgto99 clicks on the thresholded prediction."""
    return rgto99(prob > 0.5, gt, clicks, np.random.default_rng(0))


def initial_clicks(
    procedure: str, gt: np.ndarray, rng: np.random.Generator, others: np.ndarray | None = None
) -> list[Click]:
    """The clicks a training sample starts with under ``procedure``."""
    if procedure == "ritm":
        return multipoint_clicks(gt, rng, others)
    if procedure == "gto99":
        return [gto99_next_click(np.zeros(gt.shape, np.float32), gt, [])]
    raise ValueError(f"unknown training procedure {procedure!r}; known: {', '.join(PROCEDURES)}")


def next_click(
    procedure: str, prob: np.ndarray, gt: np.ndarray, clicks: list[Click], rng: np.random.Generator
) -> Click | None:
    """The click added after a no-grad iteration under ``procedure`` (None: no error left)."""
    if procedure == "ritm":
        return ritm_next_click(prob, gt, rng)
    if procedure == "gto99":
        return gto99_next_click(prob, gt, clicks)
    raise ValueError(f"unknown training procedure {procedure!r}; known: {', '.join(PROCEDURES)}")
