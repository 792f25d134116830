"""The seven clicking robots of the paper (simulated users), plus one variant.

A robot looks at the current binary prediction and the ground truth and places the next click:

    click = robot(pred, gt, clicks, rng, ignore=None)  # -> Click, or None (END)

- ``pred``, ``gt``: bool arrays of shape (H, W). ``ignore``: bool (H, W) or None; ignored pixels are
  neither error nor clickable (GrabCut's grey band).
- ``clicks``: the clicks placed so far, oldest first.
- ``rng``: a ``numpy.random.Generator``; it is the only source of randomness.
- The label of a click is the ground truth at the clicked pixel (the paper's Assumption 1).
- Every robot returns None (END of Algorithm 1) when no error pixel is left. The reference code crashes
  (r02, r04, r05) or clicks a corner (rgto99, rritm) there; we stop instead.

Semantics follow the paper author's code (commit 246b1b5), as recorded in
``shared/reference/reference-implementations.md`` section A:

======== ==================================================================================
r01      uniform over the (non-ignored) image; ignores the prediction
r02      uniform over the false region FN ∪ FP
r03      uniform over the largest 4-connected component of FN ∪ FP (tie: lowest raster label)
r04      p ∝ exact Euclidean distance transform of FN ∪ FP, the image border as boundary
r05      r04 placing its clicks one by one, each earlier one as border; with one click per step
         it equals r04 (as the paper says). ``r05h`` also treats every earlier click as border.
rgto99   centre (first DT maximum, row-major) of the largest 8-connected FN or FP component;
         larger type wins, tie -> FP; earlier clicks are not excluded
rritm    separate DTs of FN and FP with clicked pixels excluded; positive iff max FN > max FP;
         first maximum in row-major order
======== ==================================================================================

rgto99 and rritm decide every maximum and comparison on exact squared distances (``exact_sq``),
so their clicks are bit-stable across CPUs, threads and calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
from scipy import ndimage

from iislib.core.clicks import Click

Robot = Callable[..., "Click | None"]

_FOUR = ndimage.generate_binary_structure(2, 1)


# ----------------------------------------------------------------------------------------------
# helpers


def _as_bool(name: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) mask, got shape {a.shape}")
    if a.dtype == np.bool_:
        return a
    if np.issubdtype(a.dtype, np.number) and np.isin(a, (0, 1)).all():
        return a.astype(bool)
    raise ValueError(f"{name} must be a binary mask (bool or 0/1), got dtype {a.dtype}")


def _prepare(
    pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the masks; return (gt, fn, fp) with ignored pixels removed from fn and fp."""
    pred = _as_bool("pred", pred)
    gt = _as_bool("gt", gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred has shape {pred.shape} but gt has shape {gt.shape}")
    fn = gt & ~pred
    fp = pred & ~gt
    if ignore is not None:
        ignore = _as_bool("ignore", ignore)
        if ignore.shape != gt.shape:
            raise ValueError(f"ignore has shape {ignore.shape} but gt has shape {gt.shape}")
        fn &= ~ignore
        fp &= ~ignore
    return gt, fn, fp


def _click_at(gt: np.ndarray, r: int, c: int) -> Click:
    return Click(int(r), int(c), bool(gt[r, c]))


def _dt_box(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Border distance transform on the bounding box of ``mask`` (non-empty).

    Returns:
        (dt, top, left): float32 dt of the box (zero outside the mask) and the box's offset.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    sub = np.pad(mask[top : rows[-1] + 1, left : cols[-1] + 1], 1).astype(np.uint8)
    # cv2's precise L2 transform is exact (as scipy's distance_transform_edt) and 5x faster;
    # padding with background makes the image border a boundary, as in the reference code.
    dt = cv2.distanceTransform(sub, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return dt, top, left


def border_dt(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance to the nearest pixel outside ``mask``, the image border included.

    Equivalent to padding with one row/column of zeros, ``cv2.distanceTransform(DIST_L2, 0)``
    and cropping: a mask pixel touching the border or the background has value 1.

    Args:
        mask: bool (H, W).
    Returns:
        float64 (H, W), zero outside ``mask``.
    """
    out = np.zeros(mask.shape, dtype=np.float64)
    if mask.any():
        dt, top, left = _dt_box(mask)
        out[top : top + dt.shape[0], left : left + dt.shape[1]] = dt
    return out


def exact_sq(dt: np.ndarray) -> np.ndarray:
    """Exact squared distances (int64) from an exact Euclidean distance transform ``dt``.

    cv2's float32 precise DT (IPP builds) differs in the last bit between pixels at exactly the
    same distance, depending on buffer alignment, geometry and threads, so a float argmax over
    tied pixels picks one from call to call. The squared distances are integers, and float32
    holds ``dt`` to far better than the 0.5 rounding needs for images up to several thousand
    pixels a side, so ``rint(dt**2)`` recovers them exactly; deterministic robots decide on them
    (docs/decisions.md, "tie rules").
    """
    return np.rint(np.asarray(dt, dtype=np.float64) ** 2).astype(np.int64)


def _sample_proportional(weights: np.ndarray, rng: np.random.Generator) -> int:
    """Flat index drawn with probability proportional to non-negative ``weights``."""
    flat = weights.ravel()
    cdf = np.cumsum(flat)
    u = rng.random() * cdf[-1]
    idx = int(np.searchsorted(cdf, u, side="right"))
    # Guard against u landing exactly on the total through rounding.
    idx = min(idx, flat.size - 1)
    while flat[idx] <= 0:
        idx -= 1
    return idx


def _uniform_in(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    idx = np.flatnonzero(mask)
    flat = int(idx[rng.integers(idx.size)])
    return divmod(flat, mask.shape[1])


# ----------------------------------------------------------------------------------------------
# the robots


def r01(pred, gt, clicks: Sequence[Click], rng: np.random.Generator, ignore=None) -> Click | None:
    """Uniform over the image (ignored pixels excluded), whatever the prediction."""
    gt, fn, fp = _prepare(pred, gt, ignore)
    if not (fn.any() or fp.any()):
        return None
    h, w = gt.shape
    if ignore is None:
        # Row then column, as the reference draws them.
        r = int(rng.integers(h))
        c = int(rng.integers(w))
        return _click_at(gt, r, c)
    r, c = _uniform_in(~_as_bool("ignore", ignore), rng)
    return _click_at(gt, r, c)


def r02(pred, gt, clicks: Sequence[Click], rng: np.random.Generator, ignore=None) -> Click | None:
    """Uniform over the false region FN ∪ FP."""
    gt, fn, fp = _prepare(pred, gt, ignore)
    false = fn | fp
    if not false.any():
        return None
    return _click_at(gt, *_uniform_in(false, rng))


def largest_component(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """The largest connected component of ``mask`` (bool (H, W)); ties go to the lowest label.

    ``connectivity`` 1 is 4-connectivity, labels in pixel raster order (r03's rule); 2 is
    8-connectivity, labels in cv2's 2x2-block scan order (gto99's rule, see ``_largest_8cc``).
    An empty mask gives an empty mask.
    """
    if connectivity == 2:
        return _largest_8cc(mask)
    labels, n = ndimage.label(mask, structure=_FOUR)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == int(np.argmax(counts))


def r03(pred, gt, clicks: Sequence[Click], rng: np.random.Generator, ignore=None) -> Click | None:
    """Uniform over the largest 4-connected component of FN ∪ FP."""
    gt, fn, fp = _prepare(pred, gt, ignore)
    false = fn | fp
    if not false.any():
        return None
    return _click_at(gt, *_uniform_in(largest_component(false, connectivity=1), rng))


def r04(pred, gt, clicks: Sequence[Click], rng: np.random.Generator, ignore=None) -> Click | None:
    """Random, with probability proportional to the distance to the border of FN ∪ FP."""
    gt, fn, fp = _prepare(pred, gt, ignore)
    false = fn | fp
    if not false.any():
        return None
    dt, top, left = _dt_box(false)
    r, c = divmod(_sample_proportional(dt, rng), dt.shape[1])
    return _click_at(gt, top + r, left + c)


def r05_points(
    pred,
    gt,
    clicks: Sequence[Click],
    rng: np.random.Generator,
    n_points: int = 1,
    ignore=None,
    history: bool = False,
) -> list[Click]:
    """r05 placing ``n_points`` clicks in one interaction, each one a border for the next.

    With ``history=True`` every earlier click in ``clicks`` is a border too. Stops early (returns
    fewer clicks) when no error pixel is left to click.
    """
    gt, fn, fp = _prepare(pred, gt, ignore)
    false = fn | fp
    if history:
        for c in clicks:
            false[c.row, c.col] = False
    out: list[Click] = []
    for _ in range(n_points):
        if not false.any():
            break
        dt, top, left = _dt_box(false)
        r, c = divmod(_sample_proportional(dt, rng), dt.shape[1])
        r, c = top + r, left + c
        out.append(_click_at(gt, r, c))
        false[r, c] = False
    return out


def r05(pred, gt, clicks: Sequence[Click], rng: np.random.Generator, ignore=None) -> Click | None:
    """r04 made click-aware within one interaction; at one click per step it equals r04."""
    placed = r05_points(pred, gt, clicks, rng, n_points=1, ignore=ignore, history=False)
    return placed[0] if placed else None


def r05h(pred, gt, clicks: Sequence[Click], rng: np.random.Generator, ignore=None) -> Click | None:
    """Variant of r05 that treats every earlier click as border (not in the paper)."""
    placed = r05_points(pred, gt, clicks, rng, n_points=1, ignore=ignore, history=True)
    return placed[0] if placed else None


def _largest_8cc(mask: np.ndarray) -> np.ndarray:
    """Largest 8-connected component (bool (H, W)), ties broken as gto99's code breaks them."""
    out = np.zeros_like(mask, dtype=bool)
    found = _largest_8cc_box(mask)
    if found is not None:
        sub, top, left, _ = found
        out[top : top + sub.shape[0], left : left + sub.shape[1]] = sub
    return out


def _largest_8cc_box(mask: np.ndarray) -> tuple[np.ndarray, int, int, int] | None:
    """The largest 8-connected component as (bool box, top, left, area), or None if empty.

    gto99 takes the lowest ``cv2.connectedComponents`` label among equal sizes. cv2's default
    8-connected labelling scans 2x2 blocks in row-major order, so the winner is the component
    whose first 2x2 block comes first (not the first in pixel raster order); calling cv2 gives
    that order directly.
    """
    if not mask.any():
        return None
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    left, top, w, h, area = (int(v) for v in stats[best])
    return labels[top : top + h, left : left + w] == best, top, left, area


def _first_argmax(a: np.ndarray) -> tuple[int, int]:
    return divmod(int(np.argmax(a)), a.shape[1])


def rgto99(
    pred, gt, clicks: Sequence[Click], rng: np.random.Generator, ignore=None
) -> Click | None:
    """Centre of the largest error region, as gto99's robot (deterministic)."""
    gt, fn, fp = _prepare(pred, gt, ignore)
    fp_region = _largest_8cc_box(fp)
    fn_region = _largest_8cc_box(fn)
    if fp_region is None and fn_region is None:
        return None
    # The larger type wins; a tie goes to FP (index 0 in the reference's argmax).
    if fp_region is None or (fn_region is not None and fn_region[3] > fp_region[3]):
        region = fn_region
    else:
        region = fp_region
    sub, top, left, _ = region
    # The box holds the whole component, so the first maximum in the box is the first overall.
    dt = cv2.distanceTransform(np.pad(sub, 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    r, c = _first_argmax(exact_sq(dt[1:-1, 1:-1]))
    return _click_at(gt, top + r, left + c)


def rritm(pred, gt, clicks: Sequence[Click], rng: np.random.Generator, ignore=None) -> Click | None:
    """RITM's robot: furthest from the border of FN or of FP, clicked pixels excluded."""
    gt, fn, fp = _prepare(pred, gt, ignore)
    best: list[tuple[int, int, int]] = []  # per type: (max squared DT, row, col)
    for region in (fn, fp):
        if not region.any():
            best.append((0, 0, 0))
            continue
        dt, top, left = _dt_box(region)
        d2 = exact_sq(dt)  # exact ties decide both the argmax and the FN-vs-FP comparison
        for c in clicks:
            r, k = c.row - top, c.col - left
            if 0 <= r < d2.shape[0] and 0 <= k < d2.shape[1]:
                d2[r, k] = 0
        r, k = _first_argmax(d2)
        best.append((int(d2[r, k]), top + r, left + k))
    (fn_max, fn_r, fn_c), (fp_max, fp_r, fp_c) = best
    if fn_max <= 0 and fp_max <= 0:
        return None
    # Strict comparison: a tie goes to the negative click, as in RITM's clicker.
    if fn_max > fp_max:
        return _click_at(gt, fn_r, fn_c)
    return _click_at(gt, fp_r, fp_c)


# ----------------------------------------------------------------------------------------------
# registry

ROBOT_NAMES: tuple[str, ...] = ("r01", "r02", "r03", "r04", "r05", "rgto99", "rritm")
"""The paper's seven robots, in the paper's order."""

ROBOTS: dict[str, Robot] = {
    "r01": r01,
    "r02": r02,
    "r03": r03,
    "r04": r04,
    "r05": r05,
    "rgto99": rgto99,
    "rritm": rritm,
    "r05h": r05h,
}

RANDOM_ROBOTS: frozenset[str] = frozenset({"r01", "r02", "r03", "r04", "r05", "r05h"})
"""Robots whose clicks depend on the generator (the others are deterministic)."""


def get_robot(name: str) -> Robot:
    """The robot registered under ``name`` (one of ``ROBOT_NAMES`` or ``r05h``)."""
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; known robots: {', '.join(ROBOTS)}") from None


def robot_name(robot: Robot) -> str:
    """The registry name of ``robot``, or its ``__name__`` for a user-defined callable."""
    for name, fn in ROBOTS.items():
        if fn is robot:
            return name
    return getattr(robot, "name", getattr(robot, "__name__", type(robot).__name__))
