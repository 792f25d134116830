"""The seven clicking robots of the paper (simulated users), plus one variant.

A robot is a ``Robot``: it looks at the current binary prediction and the ground truth and
places the next click, and it describes itself (``name``, ``label``, ``random``,
``sampling_map``) so that figures draw it without knowing how it works:

    click = robot(pred, gt, clicks, rng, ignore=None)  # -> Click, or None (END)
    weights = robot.sampling_map(pred, gt, clicks, ignore=None)  # float64 (H, W)

- ``pred``, ``gt``: bool arrays of shape (H, W). ``ignore``: bool (H, W) or None; ignored pixels are
  neither error nor clickable (GrabCut's grey band).
- ``clicks``: the clicks placed so far, oldest first.
- ``rng``: a ``numpy.random.Generator``; it is the only source of randomness.
- The label of a click is the ground truth at the clicked pixel (the paper's Assumption 1).
- Every robot returns None (END of Algorithm 1) when no error pixel is left. The reference code crashes
  (r02, r04, r05) or clicks a corner (rgto99, rritm) there; we stop instead.

Semantics follow the paper author's code (commit 246b1b5), as recorded in docs/decisions.md
("The robots"):

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

Two model-aware robots bound the seven (``ENVELOPE_NAMES``, ``EnvelopeRobot``), kept apart from
them (not in ``ROBOTS``, ``ROBOT_NAMES`` or ``RANDOM_ROBOTS``):

======== ==================================================================================
rbest    of the honest candidates (the seven robots' clicks now, and 16 draws from r04's
         map, all in FN ∪ FP, labelled by the ground truth), the one whose prediction has the
         highest IoU; the model predicts them all in one batch
rworst   the same candidates, the lowest IoU
======== ==================================================================================

They are greedy, one step ahead: exact bounds of every deterministic robot at the first click,
an approximation of the envelope afterwards (a worse click now can lead to a better state
later). They set ``needs_model``: the loop (``iislib.core.loop``) passes them a ``lookahead``;
the seven never see the model (docs/decisions.md, "The envelope robots").

``get_robot(name, **kwargs)`` returns a registered robot: the ones above are ready instances
(``ROBOTS``); a name may instead be registered as a ``"module:factory"`` string, imported only
when asked for and built with ``kwargs`` (``"replay"``: ``iislib.core.human.ReplayRobot``,
which replays given clicks).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import cv2
import numpy as np
from scipy import ndimage

from iislib.core.clicks import Click

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


def border_dt_box(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
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
        dt, top, left = border_dt_box(mask)
        out[top : top + dt.shape[0], left : left + dt.shape[1]] = exact_dt(dt)
    return out


def exact_sq(dt: np.ndarray) -> np.ndarray:
    """Exact squared distances (int64) from an exact Euclidean distance transform ``dt``.

    cv2's float32 precise DT (IPP builds) differs in the last bit between pixels at exactly the
    same distance, depending on buffer alignment, geometry and threads, so a float argmax over
    tied pixels picks one from call to call. The squared distances are integers, and float32
    holds ``dt`` to far better than the 0.5 rounding needs for images up to several thousand
    pixels a side, so ``rint(dt**2)`` recovers them exactly; deterministic robots decide on them
    (docs/decisions.md, "Tie rules").
    """
    return np.rint(np.asarray(dt, dtype=np.float64) ** 2).astype(np.int64)


def exact_dt(dt: np.ndarray) -> np.ndarray:
    """The exact distances, float64, of an exact Euclidean distance transform ``dt``:
    ``sqrt(exact_sq(dt))``, the same bits whatever last bit cv2 gave each pixel. r04 and r05
    sample from these and the robots' maps show them, so that a draw or a figure never depends
    on buffer alignment (cv2's float32 values differ between calls on half of random masks)."""
    return np.sqrt(exact_sq(dt))


def _sample_proportional(weights: np.ndarray, rng: np.random.Generator) -> int:
    """Flat index drawn with probability proportional to non-negative ``weights``."""
    flat = weights.ravel()
    cdf = np.cumsum(flat)
    return _index_at(flat, cdf, rng.random() * cdf[-1])


def _index_at(flat: np.ndarray, cdf: np.ndarray, u: float) -> int:
    """The flat index whose share of the cumulative sum ``cdf`` of ``flat`` holds ``u``."""
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
# the robot interface


class Robot:
    """A simulated user: ``robot(pred, gt, clicks, rng, ignore=None) -> Click | None``.

    Attributes:
        name: the registry name; the loop derives the robot's generator from it.
        label: a short human description, for figure titles and legends.
        random: whether the clicks depend on ``rng`` (False: a function of the masks and clicks).
        revision: raised when a change moves the robot's clicks, so that results cached with
            the earlier behaviour are not read as this one's (``experiment.sweep.robot_key``).
        needs_model: True for a model-aware robot (``rbest``, ``rworst``): the loop then passes
            a ``lookahead`` keyword, a callable that maps candidate clicks to the IoU the model
            would reach after each (``iislib.core.loop.Lookahead``). The seven robots are
            model-free (False) and never receive it.

    A subclass defines ``__call__`` and ``sampling_map``. The attributes may be class attributes
    or passed to ``__init__``.
    """

    name: str = ""
    label: str = ""
    random: bool = False
    revision: int = 0
    needs_model: bool = False

    def __init__(
        self, name: str | None = None, label: str | None = None, random: bool | None = None
    ) -> None:
        if name is not None:
            self.name = name
        if label is not None:
            self.label = label
        if random is not None:
            self.random = random
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a robot needs a non-empty name, got {self.name!r}")

    def __call__(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        clicks: Sequence[Click],
        rng: np.random.Generator,
        ignore: np.ndarray | None = None,
    ) -> Click | None:
        """The next click on ``pred`` (bool (H, W)) against ``gt``, or None (END)."""
        raise NotImplementedError(f"{type(self).__name__} does not define __call__")

    def sampling_map(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        clicks: Sequence[Click] = (),
        ignore: np.ndarray | None = None,
    ) -> np.ndarray:
        """What the robot decides its next click on, float64 (H, W); all zeros at END.

        A random robot: the probability of each pixel being the next click (sums to 1).
        A deterministic robot: the score it maximises, zero outside the pixels it chooses from;
        its click is ``argmax_click(map, gt)``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not define sampling_map")

    def __repr__(self) -> str:
        return f"<robot {self.name}: {self.label}>"


def argmax_click(score: np.ndarray, gt: np.ndarray) -> Click | None:
    """The click of a deterministic robot on its ``sampling_map``: the first pixel in row-major
    order among the maxima of the exact squared distances (``exact_sq(score)``), labelled by
    ``gt``; None when the map is all zeros (END).

    The maps of rgto99 and rritm are exact Euclidean distances in float32 precision, so
    ``exact_sq`` recovers the integer squared distances they decide on (docs/decisions.md,
    "Tie rules").
    """
    score = np.asarray(score)
    if score.ndim != 2 or score.shape != np.shape(gt):
        raise ValueError(f"score has shape {score.shape} but gt has shape {np.shape(gt)}")
    sq = exact_sq(score)
    if sq.max(initial=0) <= 0:
        return None
    return _click_at(np.asarray(gt), *_first_argmax(sq))


def _normalised(w: np.ndarray) -> np.ndarray:
    return w / w.sum()


def _empty_map(gt: np.ndarray) -> np.ndarray:
    return np.zeros(gt.shape, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# the robots


class R01(Robot):
    """Uniform over the image (ignored pixels excluded), whatever the prediction."""

    name, label, random = "r01", "uniform on the image", True

    def __call__(self, pred, gt, clicks, rng, ignore=None):
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

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        gt, fn, fp = _prepare(pred, gt, ignore)
        if not (fn.any() or fp.any()):
            return _empty_map(gt)
        valid = ~_as_bool("ignore", ignore) if ignore is not None else np.ones(gt.shape, bool)
        return _normalised(valid.astype(np.float64))


class R02(Robot):
    """Uniform over the false region FN ∪ FP."""

    name, label, random = "r02", "uniform on FN ∪ FP", True

    def __call__(self, pred, gt, clicks, rng, ignore=None):
        gt, fn, fp = _prepare(pred, gt, ignore)
        false = fn | fp
        if not false.any():
            return None
        return _click_at(gt, *_uniform_in(false, rng))

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        gt, fn, fp = _prepare(pred, gt, ignore)
        false = fn | fp
        return _normalised(false.astype(np.float64)) if false.any() else _empty_map(gt)


def largest_component(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """The largest connected component of ``mask`` (bool (H, W)); ties go to the lowest label.

    ``connectivity`` 1 is 4-connectivity, labels in pixel raster order (r03's rule); 2 is
    8-connectivity, labels in cv2's 2x2-block scan order (gto99's rule, see ``_largest_8cc_box``).
    An empty mask gives an empty mask.
    """
    if connectivity not in (1, 2):
        raise ValueError(
            f"connectivity must be 1 (4-connected) or 2 (8-connected), got {connectivity!r}"
        )
    if connectivity == 2:
        out = np.zeros_like(mask, dtype=bool)
        found = _largest_8cc_box(mask)
        if found is not None:
            sub, top, left, _ = found
            out[top : top + sub.shape[0], left : left + sub.shape[1]] = sub
        return out
    labels, n = ndimage.label(mask, structure=_FOUR)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == int(np.argmax(counts))


class R03(Robot):
    """Uniform over the largest 4-connected component of FN ∪ FP."""

    name, label, random = "r03", "uniform on largest piece", True

    def __call__(self, pred, gt, clicks, rng, ignore=None):
        gt, fn, fp = _prepare(pred, gt, ignore)
        false = fn | fp
        if not false.any():
            return None
        return _click_at(gt, *_uniform_in(largest_component(false, connectivity=1), rng))

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        gt, fn, fp = _prepare(pred, gt, ignore)
        false = fn | fp
        if not false.any():
            return _empty_map(gt)
        return _normalised(largest_component(false, connectivity=1).astype(np.float64))


class R04(Robot):
    """Random, with probability proportional to the distance to the border of FN ∪ FP."""

    name, label, random = "r04", "∝ distance to border", True
    revision = 1  # 1: draws from the exact distances in float64 (2026-12-02)

    def __call__(self, pred, gt, clicks, rng, ignore=None):
        gt, fn, fp = _prepare(pred, gt, ignore)
        false = fn | fp
        if not false.any():
            return None
        dt, top, left = border_dt_box(false)
        r, c = divmod(_sample_proportional(exact_dt(dt), rng), dt.shape[1])
        return _click_at(gt, top + r, left + c)

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        gt, fn, fp = _prepare(pred, gt, ignore)
        false = fn | fp
        return _normalised(border_dt(false)) if false.any() else _empty_map(gt)


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
    gt, false = _r05_region(pred, gt, clicks, ignore, history)
    out: list[Click] = []
    for _ in range(n_points):
        if not false.any():
            break
        dt, top, left = border_dt_box(false)
        r, c = divmod(_sample_proportional(exact_dt(dt), rng), dt.shape[1])
        r, c = top + r, left + c
        out.append(_click_at(gt, r, c))
        false[r, c] = False
    return out


def _r05_region(pred, gt, clicks, ignore, history: bool) -> tuple[np.ndarray, np.ndarray]:
    """(gt, FN ∪ FP), earlier clicks removed from the region when ``history``."""
    gt, fn, fp = _prepare(pred, gt, ignore)
    false = fn | fp
    if history:
        for c in clicks:
            false[c.row, c.col] = False
    return gt, false


class R05(Robot):
    """r04 made click-aware within one interaction; at one click per step it equals r04.

    ``history=True`` (the ``r05h`` variant, not in the paper) also treats every earlier click as
    border.
    """

    name, label, random = "r05", "= r04 (1 click per step)", True
    revision = 1  # as r04
    history = False

    def __init__(self, history: bool = False) -> None:
        if history:
            super().__init__("r05h", "∝ distance, clicks = border", True)
            self.history = True
        else:
            super().__init__()

    def __call__(self, pred, gt, clicks, rng, ignore=None):
        placed = r05_points(pred, gt, clicks, rng, n_points=1, ignore=ignore, history=self.history)
        return placed[0] if placed else None

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        gt, false = _r05_region(pred, gt, clicks, ignore, self.history)
        return _normalised(border_dt(false)) if false.any() else _empty_map(gt)


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


class RGTO99(Robot):
    """Centre of the largest error region, as gto99's robot (deterministic).

    ``sampling_map``: the exact distance to the border of the chosen component (the larger of
    the largest 8-connected FN and FP components, a tie going to FP), zero elsewhere.
    """

    name, label, random = "rgto99", "centre of the largest error region", False

    def _region_dt(self, pred, gt, ignore) -> tuple[np.ndarray, np.ndarray, int, int] | None:
        """(gt, float32 DT of the chosen component's box, top, left), or None at END."""
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
        pad = np.pad(sub, 1).astype(np.uint8)
        dt = cv2.distanceTransform(pad, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        return gt, dt, top, left

    def __call__(self, pred, gt, clicks, rng, ignore=None):
        found = self._region_dt(pred, gt, ignore)
        if found is None:
            return None
        gt, dt, top, left = found
        # The box holds the whole component, so the first maximum in the box is the first overall.
        r, c = _first_argmax(exact_sq(dt))
        return _click_at(gt, top + r, left + c)

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        found = self._region_dt(pred, gt, ignore)
        if found is None:
            return _empty_map(_prepare(pred, gt, ignore)[0])
        gt, dt, top, left = found
        out = _empty_map(gt)
        out[top : top + dt.shape[0], left : left + dt.shape[1]] = exact_dt(dt)
        return out


class RRITM(Robot):
    """RITM's robot: furthest from the border of FN or of FP, clicked pixels excluded.

    ``sampling_map``: the exact distance to the border of FN, or of FP (the type the robot
    clicks), with the clicked pixels set to 0.
    """

    name, label, random = "rritm", "furthest from the FN or FP border", False

    def _decide(self, pred, gt, clicks, ignore):
        """(gt, positive, float32 DT box, exact squared DT box, top, left) of the clicked type,
        or (gt, None, ...) at END."""
        gt, fn, fp = _prepare(pred, gt, ignore)
        best = []  # per type: (max squared DT, dt, d2, top, left)
        for region in (fn, fp):
            if not region.any():
                best.append((0, None, None, 0, 0))
                continue
            dt, top, left = border_dt_box(region)
            d2 = exact_sq(dt)  # exact ties decide both the argmax and the FN-vs-FP comparison
            for c in clicks:
                r, k = c.row - top, c.col - left
                if 0 <= r < d2.shape[0] and 0 <= k < d2.shape[1]:
                    d2[r, k] = 0
            best.append((int(d2.max()), dt, d2, top, left))
        fn_best, fp_best = best
        if fn_best[0] <= 0 and fp_best[0] <= 0:
            return gt, None, None, None, 0, 0
        # Strict comparison: a tie goes to the negative click, as in RITM's clicker.
        positive = fn_best[0] > fp_best[0]
        _, dt, d2, top, left = fn_best if positive else fp_best
        return gt, positive, dt, d2, top, left

    def __call__(self, pred, gt, clicks, rng, ignore=None):
        gt, positive, _, d2, top, left = self._decide(pred, gt, clicks, ignore)
        if positive is None:
            return None
        r, k = _first_argmax(d2)
        return _click_at(gt, top + r, left + k)

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        gt, positive, dt, d2, top, left = self._decide(pred, gt, clicks, ignore)
        out = _empty_map(gt)
        if positive is not None:
            box = out[top : top + dt.shape[0], left : left + dt.shape[1]]
            box[:] = np.sqrt(d2)  # exact distances; clicked pixels are 0 in d2
        return out


r01, r02, r03, r04 = R01(), R02(), R03(), R04()
r05, r05h = R05(), R05(history=True)
rgto99, rritm = RGTO99(), RRITM()


# ----------------------------------------------------------------------------------------------
# model-aware robots: the best and the worst honest user (kept apart from the seven)

DEFAULT_CANDIDATES = 16
"""Random candidates an envelope robot draws per step, beside the seven robots' clicks."""


def r04_draws(false: np.ndarray, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``n`` pixels (row, col) of ``false`` (bool (H, W), non-empty), drawn independently with
    probability proportional to r04's weights (the exact distance to the region's border).

    One cumulative sum for all draws; each draw is the one ``_sample_proportional`` makes with
    the same uniform number.
    """
    dt, top, left = border_dt_box(false)
    flat = exact_dt(dt).ravel()
    cdf = np.cumsum(flat)
    out = []
    for u in rng.random(n) * cdf[-1]:
        r, c = divmod(_index_at(flat, cdf, u), dt.shape[1])
        out.append((top + r, left + c))
    return out


class EnvelopeRobot(Robot):
    """``rbest`` / ``rworst``: the honest click that the model turns into the highest (lowest)
    IoU, one step ahead.

    At each step the candidates are, in this fixed order: the click each of the seven robots
    (``ROBOT_NAMES``) would place in the current state, then ``n_candidates`` pixels drawn from
    r04's distance map. The random ones (r01-r05's clicks, the draws) come from this robot's
    own generator, so a trajectory does not depend on which other robots run beside it.
    Every candidate keeps Assumption 1: it lies in the false region FN ∪ FP (outside
    ``ignore``) and its label is the ground truth there; a click outside it (r01's, which
    ignores the prediction) is left out, and a pixel proposed twice is kept once, at its first
    place. The model predicts every candidate in one batch (``lookahead``, passed by the loop);
    ``rbest`` keeps the candidate with the highest IoU, ``rworst`` the lowest, the first in
    candidate order on a tie. END (None) when no error pixel is left.

    Greedy, one step ahead: at the first click this bounds each deterministic robot exactly
    (rgto99's and rritm's clicks are candidates), and every robot's first click as far as the
    candidates cover its distribution; later the envelope is an approximation, since a worse
    click now can lead to a better state later and the search looks one click ahead only.

    ``sampling_map`` is r04's map: where the random candidates come from (the choice itself
    depends on the model, which a map of the masks cannot show).
    """

    random = True
    revision = 1
    needs_model = True

    def __init__(self, best: bool, n_candidates: int = DEFAULT_CANDIDATES) -> None:
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int | np.integer):
            raise ValueError(f"n_candidates must be a whole number >= 0, got {n_candidates!r}")
        if n_candidates < 0:
            raise ValueError(f"n_candidates must be >= 0, got {n_candidates}")
        self.best = bool(best)
        self.n_candidates = int(n_candidates)
        name = "rbest" if best else "rworst"
        label = "best of the candidates (model-aware)" if best else "worst of the candidates"
        super().__init__(name, label, True)

    def cache_token(self) -> str:
        """What besides name and revision changes the clicks: the number of random candidates."""
        return f"n{self.n_candidates}"

    def candidates(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        clicks: Sequence[Click],
        rng: np.random.Generator,
        ignore: np.ndarray | None = None,
    ) -> list[Click]:
        """The honest candidates of this step, in the fixed order (empty at END)."""
        gt_, fn, fp = _prepare(pred, gt, ignore)
        false = fn | fp
        if not false.any():
            return []
        proposed = [ROBOTS[name](pred, gt, clicks, rng, ignore=ignore) for name in ROBOT_NAMES]
        points = [(c.row, c.col) for c in proposed if c is not None]
        points += r04_draws(false, self.n_candidates, rng)
        return [_click_at(gt_, r, c) for r, c in dict.fromkeys(points) if false[r, c]]

    def __call__(self, pred, gt, clicks, rng, ignore=None, lookahead=None):
        if lookahead is None:
            raise TypeError(
                f"robot {self.name!r} needs the model: the loop passes lookahead= (a callable "
                "mapping candidate clicks to IoU); run it through iislib.core.loop.run or run_many"
            )
        cands = self.candidates(pred, gt, clicks, rng, ignore=ignore)
        if not cands:
            return None
        iou = np.asarray(lookahead(cands), dtype=np.float64)
        if iou.shape != (len(cands),):
            raise ValueError(f"lookahead gave {iou.shape} scores for {len(cands)} candidates")
        # argmax/argmin return the first extreme: ties go to the earlier candidate.
        return cands[int(np.argmax(iou) if self.best else np.argmin(iou))]

    def sampling_map(self, pred, gt, clicks=(), ignore=None):
        return ROBOTS["r04"].sampling_map(pred, gt, clicks, ignore)


# ----------------------------------------------------------------------------------------------
# registry

ROBOT_NAMES: tuple[str, ...] = ("r01", "r02", "r03", "r04", "r05", "rgto99", "rritm")
"""The paper's seven robots, in the paper's order."""

ROBOTS: dict[str, Robot] = {r.name: r for r in (r01, r02, r03, r04, r05, rgto99, rritm, r05h)}
"""The robots that need no argument (the paper's seven and ``r05h``), ready to call."""

_FACTORIES: dict[str, str] = {"replay": "iislib.core.human:ReplayRobot"}
"""name -> "module:factory": robots built with keyword arguments, imported when asked for."""

ENVELOPE_NAMES: tuple[str, ...] = ("rbest", "rworst")
"""The model-aware robots (``EnvelopeRobot``): the best and the worst honest user."""

ENVELOPE_ROBOTS: dict[str, Robot] = {
    "rbest": EnvelopeRobot(best=True),
    "rworst": EnvelopeRobot(best=False),
}
"""The envelope robots with ``DEFAULT_CANDIDATES``; ``get_robot("rbest", n_candidates=N)`` for
another N. Kept out of ``ROBOTS``: they run only where the loop can hand them the model."""

RANDOM_ROBOTS: frozenset[str] = frozenset(name for name, r in ROBOTS.items() if r.random)
"""Robots of ``ROBOTS`` whose clicks depend on the generator (the others are deterministic)."""


def get_robot(name: str, /, **kwargs) -> Robot:
    """The robot registered under ``name``.

    A ready robot (``ROBOTS``) takes no ``kwargs``; a factory-registered one (``"replay"``) is
    imported now and built with them, e.g. ``get_robot("replay", clicks=[...])``, and keeps
    the name its factory gives it. ``rbest`` and ``rworst`` (``ENVELOPE_ROBOTS``) take
    ``n_candidates``.
    """
    if name in ENVELOPE_ROBOTS:
        if not kwargs:
            return ENVELOPE_ROBOTS[name]
        if set(kwargs) != {"n_candidates"}:
            raise TypeError(
                f"robot {name!r} takes only n_candidates, got {', '.join(sorted(kwargs))}"
            )
        return EnvelopeRobot(best=name == "rbest", **kwargs)
    if name in ROBOTS:
        if kwargs:
            raise TypeError(f"robot {name!r} takes no arguments, got {', '.join(sorted(kwargs))}")
        return ROBOTS[name]
    if name not in _FACTORIES:
        known = ", ".join([*ROBOTS, *ENVELOPE_ROBOTS, *_FACTORIES])
        raise ValueError(f"unknown robot {name!r}; known robots: {known}")
    module, attr = _FACTORIES[name].split(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ImportError(
            f"robot {name!r} is registered as {_FACTORIES[name]!r}, which cannot be imported: {e}"
        ) from e
    robot = factory(**kwargs)
    if not isinstance(robot, Robot):
        raise TypeError(f"{_FACTORIES[name]} returned {type(robot).__name__}, not a Robot")
    return robot


def robot_name(robot) -> str:
    """The name of ``robot``: its ``name`` (a ``Robot``), else the ``name`` or ``__name__`` of a
    user-defined callable."""
    return getattr(robot, "name", None) or getattr(robot, "__name__", type(robot).__name__)
