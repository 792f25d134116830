"""Statistics over a sweep table: does the verdict of a benchmark survive a change of robot?

Every function takes the tidy table of ``iislib.experiment.sweep.evaluate`` (one row per model x robot x
image x seed x click) or plain arrays, and returns numbers or small DataFrames. The paper's claims,
checked with these statistics, are in ``iislib.experiment.findings``.

=========================== ========================================================================
``per_image``               one value per (model, robot, image): a metric at click k, seeds averaged
``win_rate(s)``             fraction of images where model A beats, ties or loses to model B
``kendall_tau``             Kendall's tau-b of two score vectors (``scipy.stats.kendalltau``)
``model_rank_tau``          robot x robot: tau between the model rankings (means over images)
``per_image_rank_tau``      robot x robot: mean over images of the tau between per-image rankings
``image_rank_tau``          robot x robot: tau between the per-image scores of one model (which
                            images are hard), defined with a single model
``sign_flips``              robot x robot: fraction of images where sign(A - B) flips
``bootstrap_ci``            BCa bootstrap interval over images (``scipy.stats.bootstrap``);
                            ``bootstrap_means``: any statistic of means, over one or several
                            datasets (equal weights, images resampled within each); ``bootstrap_stat``:
                            any statistic
``seed_variance``           spread over seeds of a random robot's benchmark number
``robot_cost``              milliseconds per robot call
``first_divergence``        first click at which two click sequences differ
``metric_quirks``           our scores beside the reference code's for one prediction
``robot_spread``            per model: mean, range and std over robots of its benchmark number
``factor_effects``          2x2 family x procedure: main effects on the spread, bootstrap CIs
``contrast_image``          the image where two models differ most under one robot at click k
=========================== ========================================================================

``k`` is a 1-based click index; ``k=None`` means the mean over all clicks (the per-image area
under the IoU curve). Seeds are averaged per image before any comparison, so a random robot's
per-image value is its expected score under that robot.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from iislib.core.clicks import Click
from iislib.core.metrics import METRIC_NAMES, SCORE_NAMES, reference_scores, scores


def _check_metric(table: pd.DataFrame, metric: str) -> None:
    if metric not in table.columns:
        have = [m for m in SCORE_NAMES if m in table.columns]
        raise ValueError(f"unknown metric {metric!r}; the table has {', '.join(have)}")


def per_image(table: pd.DataFrame, metric: str = "iou", k: int | None = None) -> pd.Series:
    """One value per (model, robot, image): ``metric`` at click ``k`` (None: mean over clicks).

    Seeds are averaged per image. Returns a float Series indexed by (model, robot, image).
    """
    _check_metric(table, metric)
    if k is not None:
        kmax = int(table["click"].max())
        if not 1 <= k <= kmax:
            raise ValueError(f"k must be in 1..{kmax} (the table's clicks), got {k}")
        table = table[table["click"] == k]
    return table.groupby(["model", "robot", "image"])[metric].mean()


def wide(table: pd.DataFrame, metric: str, k: int | None, model: str | None = None) -> pd.DataFrame:
    """``per_image`` as a wide frame: image x (model, robot) or, for one ``model``, image x
    robot (NaN where a pair lacks an image)."""
    s = per_image(table, metric, k)
    if model is not None:
        if model not in s.index.get_level_values("model"):
            raise ValueError(f"model {model!r} is not in the table")
        return s.xs(model, level="model").unstack("robot")
    return s.unstack(["model", "robot"])


# ----------------------------------------------------------------------------------------------
# pairwise comparisons of two models


def win_rate(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> tuple[float, float, float]:
    """Fractions of items where ``a`` beats ``b`` (a > b + tol), ties, and loses.

    Args:
        a, b: float (n,) paired scores, e.g. per-image IoU of two models.
        tol: differences within ``tol`` count as ties.
    Returns:
        (wins, ties, losses), summing to 1; NaN for empty inputs.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of the same length, got {a.shape} and {b.shape}")
    if a.size == 0:
        return (np.nan, np.nan, np.nan)
    d = a - b
    wins = float(np.mean(d > tol))
    losses = float(np.mean(d < -tol))
    return (wins, 1.0 - wins - losses, losses)


def win_rates(
    table: pd.DataFrame, model_a: str, model_b: str, metric: str = "iou", k: int | None = None
) -> pd.DataFrame:
    """Per robot: the fraction of images where ``model_a`` beats, ties or loses to ``model_b``.

    Only images scored for both models under that robot count. Columns: robot, wins, ties,
    losses, images.
    """
    s = per_image(table, metric, k)
    rows = []
    for robot in table["robot"].unique():
        try:
            a = s.loc[(model_a, robot)]
            b = s.loc[(model_b, robot)]
        except KeyError:
            continue
        common = a.index.intersection(b.index)
        w, t, lo = win_rate(a[common].to_numpy(), b[common].to_numpy())
        rows.append({"robot": robot, "wins": w, "ties": t, "losses": lo, "images": len(common)})
    return pd.DataFrame(rows, columns=["robot", "wins", "ties", "losses", "images"])


def sign_flips(
    table: pd.DataFrame, model_a: str, model_b: str, metric: str = "iou", k: int | None = 5
) -> pd.DataFrame:
    """Robot x robot: fraction of images where the sign of A - B is opposite under the two robots.

    A flip is ``sign(d_r) * sign(d_s) < 0`` for the per-image differences d = A - B; an image where
    either difference is exactly 0 is not a flip. The diagonal is 0.
    """
    w = wide(table, metric, k)
    robots = [r for r in table["robot"].unique() if (model_a, r) in w and (model_b, r) in w]
    d = pd.DataFrame({r: w[(model_a, r)] - w[(model_b, r)] for r in robots})
    sign = np.sign(d.to_numpy())
    out = np.full((len(robots), len(robots)), np.nan)
    for i in range(len(robots)):
        for j in range(len(robots)):
            ok = ~np.isnan(sign[:, i]) & ~np.isnan(sign[:, j])
            if ok.any():
                out[i, j] = float(np.mean(sign[ok, i] * sign[ok, j] < 0))
    return pd.DataFrame(out, index=pd.Index(robots, name="robot"), columns=robots)


# ----------------------------------------------------------------------------------------------
# rank agreement


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two paired score vectors: ``scipy.stats.kendalltau`` (variant b).

    tau_b = (C - D) / sqrt((n0 - tx) (n0 - ty)) with C, D the concordant and discordant pairs,
    n0 = n(n-1)/2 and tx, ty the pairs tied in x or in y. NaN when fewer than two items or when
    either vector is constant (the ranking is undefined; scipy is not called, so no warning).
    Items where either value is NaN are dropped.
    """
    from scipy.stats import kendalltau

    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return float("nan")
    return float(kendalltau(x, y, variant="b").statistic)


def _robot_matrix(robots: Sequence[str], cell: Callable[[str, str], float]) -> pd.DataFrame:
    out = np.array([[cell(r, s) for s in robots] for r in robots], dtype=np.float64)
    return pd.DataFrame(out, index=pd.Index(list(robots), name="robot"), columns=list(robots))


def model_rank_tau(table: pd.DataFrame, metric: str = "iou", k: int | None = None) -> pd.DataFrame:
    """Robot x robot: Kendall tau between the rankings of the models by their mean over images.

    +1: both robots order the models the same way; -1: reversed. NaN with fewer than two models.
    """
    s = per_image(table, metric, k).groupby(["model", "robot"]).mean().unstack("robot")
    robots = list(table["robot"].unique())
    return _robot_matrix(robots, lambda r, q: kendall_tau(s[r].to_numpy(), s[q].to_numpy()))


def per_image_rank_tau(
    table: pd.DataFrame, metric: str = "iou", k: int | None = None
) -> pd.DataFrame:
    """Robot x robot: mean over images of the Kendall tau between that image's model rankings.

    An image where either ranking is undefined (all models tie) is left out. NaN with fewer than
    two models. With two models the value is (agreements - flips) / (images without ties).
    """
    w = wide(table, metric, k)
    robots = list(table["robot"].unique())
    models = list(table["model"].unique())

    def cell(r: str, q: str) -> float:
        cols_r = [(m, r) for m in models if (m, r) in w]
        cols_q = [(m, q) for m in models if (m, q) in w]
        if len(cols_r) < 2 or len(cols_r) != len(cols_q):
            return float("nan")
        a, b = w[cols_r].to_numpy(), w[cols_q].to_numpy()
        taus = np.array([kendall_tau(a[i], b[i]) for i in range(a.shape[0])])
        return float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan")

    return _robot_matrix(robots, cell)


def image_rank_tau(
    table: pd.DataFrame, model: str, metric: str = "iou", k: int | None = None
) -> pd.DataFrame:
    """Robot x robot: Kendall tau between one model's per-image scores under the two robots.

    High: the robots agree on which images are easy and which are hard for this model.
    """
    w = wide(table, metric, k, model=model)
    robots = [r for r in table["robot"].unique() if r in w]
    return _robot_matrix(robots, lambda r, q: kendall_tau(w[r].to_numpy(), w[q].to_numpy()))


# ----------------------------------------------------------------------------------------------
# uncertainty: scipy.stats.bootstrap (BCa by default) over images

BOOTSTRAP_METHODS: tuple[str, ...] = ("BCa", "percentile", "basic")
"""``scipy.stats.bootstrap``'s interval methods. BCa (bias-corrected and accelerated) is the
default everywhere: its coverage is closer to the nominal level than the percentile interval's
at 50-100 images (docs/decisions.md, "Bootstrap intervals")."""
_BATCH_FLOATS = 4_000_000
"""Floats gathered per batch of resamples (32 MB), so that DAVIS-sized arrays stay small."""
DECIMALS = 12
"""Bootstrap statistics are rounded to this many decimals. BCa's bias correction counts the
resamples whose statistic is below or equal to the point estimate, and a resample can equal it
exactly (a max or min over robots that does not move, or a structured table): a last-bit
difference in how a sum was ordered (pandas, the order of the models) then moved an interval
end by up to 0.004 on a 12-image table. Rounded, the same data gives the same interval."""


def _interval(
    sizes: Sequence[int], stat: Callable[..., np.ndarray], n_out: int, n_boot: int,
    level: float, seed: int, method: str, per_resample: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(low, high), each (n_out,): the bootstrap interval of each output of ``stat``.

    ``stat(*idx)`` takes one index array per group, each shaped (..., n_g) (leading axes:
    resamples), and returns (..., n_out). Each group's indices are resampled within the group
    by ``scipy.stats.bootstrap`` (several groups: resampled independently, i.e. stratified);
    groups of one item stay fixed and ``stat`` gets them as ``[0]``. ``per_resample``: floats
    ``stat`` gathers per resample (sets scipy's batch size).
    """
    from scipy.stats import DegenerateDataWarning, bootstrap

    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"method must be one of {BOOTSTRAP_METHODS}, got {method!r}")
    free = [g for g, n in enumerate(sizes) if n >= 2]
    if not free:  # nothing to resample: every group is one fixed item
        point = np.asarray(stat(*[np.zeros(1, dtype=np.intp)] * len(sizes)), np.float64)
        return point.reshape(n_out), point.reshape(n_out)

    def full(*idx: np.ndarray) -> np.ndarray:
        lead = idx[0].shape[:-1]
        it = iter(idx)
        args = [next(it) if g in free else np.zeros((*lead, 1), dtype=np.intp)
                for g in range(len(sizes))]  # fmt: skip
        return np.round(np.asarray(stat(*args), np.float64), DECIMALS).reshape((*lead, n_out))

    data = tuple(np.arange(sizes[g]) for g in free)
    batch = max(1, _BATCH_FLOATS // max(1, per_resample))
    low, high = np.empty(n_out), np.empty(n_out)
    for c in range(n_out):
        with warnings.catch_warnings():
            # BCa is undefined on a degenerate resample distribution (e.g. equal values):
            # the percentile interval of the same resamples is used there (below)
            warnings.simplefilter("ignore", DegenerateDataWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            res = bootstrap(data, lambda *i, axis=-1, c=c: full(*i)[..., c], n_resamples=n_boot,
                            batch=batch, vectorized=True, paired=False, confidence_level=level,
                            method=method, rng=np.random.default_rng(seed))  # fmt: skip
        lo, hi = res.confidence_interval
        if not (np.isfinite(lo) and np.isfinite(hi)):
            alpha = (1 - level) / 2
            lo, hi = np.quantile(res.bootstrap_distribution, [alpha, 1 - alpha])
        low[c], high[c] = lo, hi
    return low, high


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def bootstrap_means(
    groups: Sequence[np.ndarray], stat: Callable[[np.ndarray], np.ndarray] | None = None,
    n_boot: int = 2000, level: float = 0.95, seed: int = 0, method: str = "BCa",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """A statistic of means over images, with a bootstrap interval that resamples the images.

    The mean is taken over each group's images (axis 0), then over the groups with **equal
    weights**: with groups = datasets, each dataset weighs 1/len(groups), whatever its number
    of images. The interval comes from ``scipy.stats.bootstrap`` (``method``; BCa by default):
    the images are resampled within each group, independently from group to group (a
    stratified bootstrap), and the values of one image stay together (paired across models,
    robots, metrics).

    Args:
        groups: float arrays (n_g, *features), the same features in each (e.g. image x model x
            robot); n_g >= 1.
        stat: maps the means (..., *features) to the statistic (..., *out), vectorised over the
            leading axes (default: the means themselves).
        n_boot: bootstrap resamples; level: coverage in (0, 1); seed: the resampling seed.
    Returns:
        (point, low, high): float64 arrays shaped like the statistic (0-d for a scalar). A
        statistic whose resamples all agree (e.g. equal values, or one image) has a zero-width
        interval.
    """
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    if not arrays or any(a.ndim == 0 or a.shape[0] == 0 for a in arrays):
        shapes = [a.shape for a in arrays]
        raise ValueError(f"every group needs at least one image on axis 0, got shapes {shapes}")
    if len({a.shape[1:] for a in arrays}) > 1:
        raise ValueError(f"the groups' features differ: {[a.shape[1:] for a in arrays]}")
    _check_level(level)
    stat = stat if stat is not None else (lambda m: m)

    def of(*idx: np.ndarray) -> np.ndarray:
        means = sum(a[i].mean(axis=i.ndim - 1) for a, i in zip(arrays, idx, strict=True))
        return np.asarray(stat(means / len(arrays)), np.float64)

    point = np.asarray(np.round(of(*[np.arange(len(a)) for a in arrays]), DECIMALS))
    per_resample = sum(a.size for a in arrays)
    low, high = _interval([len(a) for a in arrays], of, point.size, n_boot, level, seed, method,
                          per_resample)  # fmt: skip
    return point, low.reshape(point.shape), high.reshape(point.shape)


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
    method: str = "BCa",
) -> tuple[float, float, float]:  # fmt: skip
    """Mean of ``values`` and its bootstrap confidence interval (resampling items; BCa).

    Args:
        values: float (n,), one value per image.
        n_boot: bootstrap resamples.
        level: coverage of the interval, in (0, 1).
        seed: seed of the resampling generator (results are reproducible).
        method: ``scipy.stats.bootstrap``'s method (``BOOTSTRAP_METHODS``).
    Returns:
        (mean, low, high); NaN for empty input. One value, or equal values, give a zero-width
        interval.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    _check_level(level)
    if v.size == 0:
        return (float("nan"),) * 3
    point, lo, hi = bootstrap_means([v], None, n_boot, level, seed, method)
    return (float(point), float(lo), float(hi))


def bootstrap_stat(
    values: np.ndarray, stat: Callable[[np.ndarray], np.ndarray | float], n_boot: int = 2000,
    level: float = 0.95, seed: int = 0, method: str = "BCa",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Any statistic of per-image values with a bootstrap interval over images (BCa).

    For a statistic of means, ``bootstrap_means`` is faster (vectorised); this one calls
    ``stat`` once per resample.

    Args:
        values: array whose axis 0 is the image (e.g. image x model x robot); the images are
            resampled together, so paired values stay paired.
        stat: maps an array shaped like ``values`` to a float or an array (the same shape for
            every resample).
    Returns:
        (point, low, high): ``stat(values)`` and the interval, each a float64 array shaped like
        the statistic (0-d for a scalar).
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 0 or a.shape[0] == 0:
        raise ValueError(f"values need at least one image on axis 0, got shape {a.shape}")
    _check_level(level)
    point = np.asarray(np.round(np.asarray(stat(a), dtype=np.float64), DECIMALS))

    def of(idx: np.ndarray) -> np.ndarray:
        rows = idx.reshape(-1, idx.shape[-1])
        out = [np.asarray(stat(a[i]), dtype=np.float64) for i in rows]
        return np.stack(out).reshape((*idx.shape[:-1], *point.shape))

    low, high = _interval([len(a)], of, point.size, n_boot, level, seed, method, a.size)
    return point, low.reshape(point.shape), high.reshape(point.shape)


def bootstrap_curves(
    curves: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
    method: str = "BCa",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Mean curve over images and a pointwise bootstrap band (images resampled together; BCa).

    Args:
        curves: float (n_images, n_clicks).
    Returns:
        (mean, low, high), each float (n_clicks,).
    """
    a = np.asarray(curves, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"expected curves of shape (n_images, n_clicks), got {a.shape}")
    return bootstrap_means([a], None, n_boot, level, seed, method)


def bootstrap_table(
    table: pd.DataFrame, metric: str = "iou", k: int | None = None, n_boot: int = 2000,
    level: float = 0.95, seed: int = 0, method: str = "BCa",
) -> pd.DataFrame:  # fmt: skip
    """Per (model, robot): mean over images of ``metric`` at ``k`` with its bootstrap interval
    (``bootstrap_ci``)."""
    s = per_image(table, metric, k)
    rows = []
    for (model, robot), block in s.groupby(level=["model", "robot"], sort=False):
        m, lo, hi = bootstrap_ci(block.to_numpy(), n_boot, level, seed, method)
        rows.append({"model": model, "robot": robot, "mean": m, "low": lo, "high": hi,
                     "images": block.size})  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "robot", "mean", "low", "high", "images"])


def bootstrap_difference(
    table: pd.DataFrame, model_a: str, model_b: str, metric: str = "iou", k: int | None = None,
    n_boot: int = 2000, level: float = 0.95, seed: int = 0, method: str = "BCa",
) -> pd.DataFrame:  # fmt: skip
    """Per robot: mean over images of A - B (paired) with its bootstrap interval."""
    w = wide(table, metric, k)
    rows = []
    for robot in table["robot"].unique():
        if (model_a, robot) not in w or (model_b, robot) not in w:
            continue
        d = (w[(model_a, robot)] - w[(model_b, robot)]).dropna().to_numpy()
        m, lo, hi = bootstrap_ci(d, n_boot, level, seed, method)
        rows.append({"robot": robot, "mean": m, "low": lo, "high": hi, "images": d.size})
    return pd.DataFrame(rows, columns=["robot", "mean", "low", "high", "images"])


def seed_variance(table: pd.DataFrame, metric: str = "iou", k: int | None = None) -> pd.DataFrame:
    """Per (model, robot): how much the benchmark number moves when only the seed changes.

    Columns: seeds (count), mean (over seeds of the image mean), std_between (std over seeds of
    the image mean, ddof=1: the seed-to-seed spread of the reported number) and std_per_image
    (mean over images of the per-image std over seeds). Deterministic robots give 0.
    """
    _check_metric(table, metric)
    t = table[table["click"] == k] if k is not None else table
    per_seed_image = t.groupby(["model", "robot", "seed", "image"])[metric].mean()
    rows = []
    for (model, robot), block in per_seed_image.groupby(level=["model", "robot"], sort=False):
        by_seed = block.groupby(level="seed").mean()
        per_img = block.groupby(level="image").std(ddof=1)
        rows.append({
            "model": model, "robot": robot, "seeds": by_seed.size, "mean": float(by_seed.mean()),
            "std_between": float(by_seed.std(ddof=1)) if by_seed.size > 1 else float("nan"),
            "std_per_image": float(per_img.mean()) if by_seed.size > 1 else float("nan"),
        })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["model", "robot", "seeds", "mean", "std_between", "std_per_image"]
    )


# ----------------------------------------------------------------------------------------------
# robots and single predictions


def robot_cost(times: pd.DataFrame, column: str = "robot_seconds") -> pd.DataFrame:
    """Milliseconds per robot call: mean, median and 90th percentile per robot.

    ``times`` has columns ``robot`` and ``column`` (seconds), e.g. a sweep table (steps after END,
    recorded as 0, are dropped) or ``iislib.apps.paper.time_robots``.
    """
    t = times[times[column] > 0]
    g = t.groupby("robot", sort=False)[column]
    out = pd.DataFrame({
        "ms_mean": g.mean() * 1e3, "ms_median": g.median() * 1e3,
        "ms_p90": g.quantile(0.9) * 1e3, "calls": g.size(),
    })  # fmt: skip
    return out.reset_index()


def contrast_image(
    table: pd.DataFrame, model_a: str, model_b: str, robot: str, k: int, metric: str = "iou",
    positive: bool = False,
) -> str:  # fmt: skip
    """The image where ``model_a`` and ``model_b`` differ most in ``metric`` at click ``k``
    under ``robot`` (largest absolute difference, seeds averaged; ties: the first image in the
    table's order).

    ``positive``: only images where at least one of the first ``k`` clicks of both models is
    positive (as the paper's Figure 9, which shows what a model makes of a positive click).
    Raises ValueError when the table has no image scored for both models under ``robot``.
    """
    s = per_image(table, metric, k)
    for m in (model_a, model_b):
        if (m, robot) not in s.index.droplevel("image"):
            raise ValueError(f"the table has no {m} under {robot}")
    a, b = s.loc[(model_a, robot)], s.loc[(model_b, robot)]
    d = (a - b).dropna().abs()
    if positive:
        t = table[(table["robot"] == robot) & table["model"].isin([model_a, model_b])
                  & (table["click"] <= k)]  # fmt: skip
        both = t.groupby(["image", "model"])["positive"].max().unstack("model")
        ok = both[(both == 1).all(axis=1)].index
        d = d[d.index.isin(ok)]
    if d.empty:
        extra = " with a positive click among the first clicks" if positive else ""
        raise ValueError(f"no image scored for both {model_a} and {model_b} under {robot}{extra}")
    order = list(dict.fromkeys(table["image"]))
    d = d.reindex(sorted(d.index, key=order.index))
    return str(d.idxmax())


def first_divergence(a: Sequence[Click], b: Sequence[Click]) -> int | None:
    """The first 1-based click index at which two click sequences differ, None if never.

    A sequence that ends while the other goes on differs at the next click.
    """
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if tuple(x) != tuple(y):
            return i + 1
    if len(a) != len(b):
        return min(len(a), len(b)) + 1
    return None


def metric_quirks(pred: np.ndarray, gt: np.ndarray) -> pd.DataFrame:
    """Our six scores beside the paper author's code (``metrics.reference_scores``).

    The reference's "accuracy" is TP/(TP+FN) (= recall) and its Dice equals its F-score; it gives
    NaN where it divides by zero. Index: metric; columns: ours, reference, same.
    """
    ours = scores(np.asarray(pred, bool), np.asarray(gt, bool)).as_dict()
    ref = reference_scores(np.asarray(pred, bool), np.asarray(gt, bool))
    df = pd.DataFrame({"ours": ours, "reference": ref}).loc[list(METRIC_NAMES)]
    df["same"] = np.isclose(df["ours"], df["reference"], rtol=0, atol=1e-12)
    df.index.name = "metric"
    return df


def pairwise_summary(
    table: pd.DataFrame, metric: str = "iou", k: int | None = None, n_boot: int = 2000,
    level: float = 0.95, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """For every pair of models (A, B) and robot: win/tie/loss shares and the mean difference
    A - B with its paired bootstrap interval. Empty (and says why) with fewer than two models."""
    models = list(dict.fromkeys(table["model"]))
    cols = ["model_a", "model_b", "robot", "wins", "ties", "losses", "diff", "low", "high",
            "images"]  # fmt: skip
    if len(models) < 2:
        print(f"pairwise comparisons need two models; the table has only {models}")
        return pd.DataFrame(columns=cols)
    frames = []
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            w = win_rates(table, a, b, metric, k)
            d = bootstrap_difference(table, a, b, metric, k, n_boot, level, seed)
            d = d.rename(columns={"mean": "diff"}).drop(columns="images")
            m = w.merge(d, on="robot")
            m.insert(0, "model_b", b)
            m.insert(0, "model_a", a)
            frames.append(m[cols])
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------------------------
# the 2x2 experiment: architecture family x training click procedure


def robot_spread(
    table: pd.DataFrame, metric: str = "iou", k: int | None = None
) -> pd.DataFrame:  # fmt: skip
    """Per model: how much its benchmark number depends on the robot.

    Returns one row per model: ``mean`` (over robots of the mean over images), ``spread``
    (max - min over robots) and ``std`` (over robots) of ``metric`` at ``k`` (None: mean over
    clicks). A robust model has a small spread.
    """
    m = per_image(table, metric, k).groupby(["model", "robot"]).mean().unstack("robot")
    out = pd.DataFrame({"mean": m.mean(axis=1), "spread": m.max(axis=1) - m.min(axis=1),
                        "std": m.std(axis=1, ddof=0)})  # fmt: skip
    out.index.name = "model"
    return out.reset_index()


def spread_and_mean(means: np.ndarray) -> np.ndarray:
    """means: (..., model, robot), each model's mean over images under each robot ->
    (..., model, 2): the range (max - min) over robots and the mean over robots."""
    m = np.asarray(means, dtype=np.float64)
    return np.stack([m.max(-1) - m.min(-1), m.mean(-1)], -1)


FACTORS: tuple[str, str] = ("family", "procedure")


def design_contrasts(design: dict[str, tuple[str, str]]) -> np.ndarray:
    """(model, factor) weights of a full 2x2 ``design`` (model -> (family, procedure), levels
    "ritm" and "gto99"): +1/2 for the "ritm" level, -1/2 for "gto99", models in ``design``'s
    order. ValueError for anything but a full 2x2."""
    models = list(design)
    levels = [{design[m][i] for m in models} for i in range(len(FACTORS))]
    if (
        len(models) != 4
        or any(v != {"ritm", "gto99"} for v in levels)
        or len({design[m] for m in models}) != 4
    ):
        raise ValueError(f"design must be a full 2x2 over ritm/gto99, got {design}")
    return np.array([[0.5 if design[m][i] == "ritm" else -0.5 for i in range(len(FACTORS))]
                     for m in models])  # fmt: skip


def effects_of_means(means: np.ndarray, contrasts: np.ndarray) -> np.ndarray:
    """means: (..., model, robot) in the design's model order -> (..., quantity, factor): the
    main effect of each factor (``contrasts``, from ``design_contrasts``) on the spread over
    robots (quantity 0) and on the mean over robots (quantity 1)."""
    q = np.moveaxis(spread_and_mean(means), -1, -2)  # (..., quantity, model)
    return q @ contrasts


def factor_effects(
    table: pd.DataFrame, design: dict[str, tuple[str, str]], metric: str = "iou",
    k: int | None = None, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
    method: str = "BCa",
) -> pd.DataFrame:  # fmt: skip
    """Main effects of architecture family and training procedure on the robot spread.

    ``design`` maps each of four models to (family, procedure), a full 2x2 (families "ritm" and
    "gto99", procedures likewise). For the spread over robots (max - min of the mean over
    images) and for the mean over robots, the effect of a factor is the mean over the two models
    with level "ritm" minus the mean over the two with level "gto99"; the interval resamples
    images (the same images for every model and robot; ``bootstrap_means``). A negative family
    effect on the spread means the ritm architecture is less robot-dependent; a negative
    procedure effect means training with RITM's clicks makes a model less robot-dependent.

    Returns rows (quantity in {spread, mean}, factor in {family, procedure}) with columns
    effect, low, high, images.
    """
    contrasts = design_contrasts(design)
    models = list(design)
    w = wide(table, metric, k)
    robots = sorted(table["robot"].unique())
    missing = [m for m in models if not all((m, r) in w for r in robots)]
    if missing:
        raise ValueError(f"the table lacks models {missing} under some of the robots {robots}")
    w = w[[(m, r) for m in models for r in robots]].dropna()
    a = w.to_numpy().reshape(len(w), len(models), len(robots))  # image x model x robot
    point, lo, hi = bootstrap_means([a], lambda m: effects_of_means(m, contrasts), n_boot, level,
                                    seed, method)  # fmt: skip
    rows = [{"quantity": q, "factor": f, "effect": point[i, j], "low": lo[i, j],
             "high": hi[i, j], "images": len(a)}
            for i, q in enumerate(("spread", "mean"))
            for j, f in enumerate(FACTORS)]  # fmt: skip
    return pd.DataFrame(rows)


def factor_verdict(effects: pd.DataFrame) -> str:
    """One sentence on which factor moves the robot spread, from ``factor_effects``."""
    s = effects[effects["quantity"] == "spread"].set_index("factor")
    parts = []
    for f, name in (
        ("family", "the ritm architecture"),
        ("procedure", "training with RITM's clicks"),
    ):
        e, lo, hi = s.loc[f, ["effect", "low", "high"]]
        if lo > 0:
            parts.append(f"{name} widens the spread over robots by {e:.3f} [{lo:.3f}, {hi:.3f}]")
        elif hi < 0:
            parts.append(
                f"{name} narrows the spread over robots by {-e:.3f} [{-hi:.3f}, {-lo:.3f}]"
            )
        else:
            parts.append(f"{name} changes the spread by {e:+.3f}, an interval [{lo:.3f}, {hi:.3f}] "
                         "that includes 0")  # fmt: skip
    return "; ".join(parts) + "."
