"""Statistics over a sweep table: does the verdict of a benchmark survive a change of robot?

Every function takes the tidy table of ``iislib.experiment.sweep.evaluate`` (one row per model x robot x
image x seed x click) or plain arrays, and returns numbers or small DataFrames:

=========================== ========================================================================
``per_image``               one value per (model, robot, image): a metric at click k, seeds averaged
``win_rate(s)``             fraction of images where model A beats, ties or loses to model B
``kendall_tau``             Kendall's tau-b of two score vectors (NaN where undefined)
``model_rank_tau``          robot x robot: tau between the model rankings (means over images)
``per_image_rank_tau``      robot x robot: mean over images of the tau between per-image rankings
``image_rank_tau``          robot x robot: tau between the per-image scores of one model (which
                            images are hard), defined with a single model
``sign_flips``              robot x robot: fraction of images where sign(A - B) flips
``bootstrap_ci``            percentile bootstrap over images (``bootstrap_stat``: any statistic)
``seed_variance``           spread over seeds of a random robot's benchmark number
``robot_cost``              milliseconds per robot call
``first_divergence``        first click at which two click sequences differ
``metric_quirks``           our scores beside the reference code's for one prediction
``robot_spread``            per model: mean, range and std over robots of its benchmark number
``factor_effects``          2x2 family x procedure: main effects on the spread, bootstrap CIs
``contrast_image``          the image where two models differ most under one robot at click k
``findings``                the paper's five claims: measured margin, interval, verdict
``paper_vs_compact``        what differs between the paper's models and the compact ones
=========================== ========================================================================

``k`` is a 1-based click index; ``k=None`` means the mean over all clicks (the per-image area
under the IoU curve). Seeds are averaged per image before any comparison, so a random robot's
per-image value is its expected score under that robot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from iislib.core.clicks import Click
from iislib.core.metrics import METRIC_NAMES, reference_scores, scores
from iislib.core.robots import ROBOT_NAMES
from iislib.models import compact
from iislib.models.compact import DESIGN
from iislib.models.official import OFFICIAL, OFFICIAL_PAIR

FAMILY_PROCEDURE: dict[str, tuple[str, str]] = DESIGN
"""The 2x2 experiment: model name -> (architecture family, training click procedure)."""


def _check_metric(table: pd.DataFrame, metric: str) -> None:
    if metric not in table.columns:
        raise ValueError(f"unknown metric {metric!r}; the table has {', '.join(METRIC_NAMES)}")


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


def _wide(
    table: pd.DataFrame, metric: str, k: int | None, model: str | None = None
) -> pd.DataFrame:
    """image x (model, robot) or, for one ``model``, image x robot."""
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
    w = _wide(table, metric, k)
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
    """Kendall's tau-b of two paired score vectors (ties handled as in scipy's default).

    tau_b = (C - D) / sqrt((n0 - tx) (n0 - ty)) with C, D the concordant and discordant pairs,
    n0 = n(n-1)/2 and tx, ty the pairs tied in x or in y. NaN when fewer than two items or when
    either vector is constant (the ranking is undefined). Items where either value is NaN are
    dropped.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    n = x.size
    if n < 2:
        return float("nan")
    i, j = np.triu_indices(n, k=1)
    sx = np.sign(x[i] - x[j])
    sy = np.sign(y[i] - y[j])
    n0 = i.size
    tx = int(np.count_nonzero(sx == 0))
    ty = int(np.count_nonzero(sy == 0))
    if tx == n0 or ty == n0:
        return float("nan")
    s = float(np.sum(sx * sy))  # concordant - discordant (pairs tied in x or y give 0)
    return s / float(np.sqrt((n0 - tx) * (n0 - ty)))


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
    w = _wide(table, metric, k)
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
    w = _wide(table, metric, k, model=model)
    robots = [r for r in table["robot"].unique() if r in w]
    return _robot_matrix(robots, lambda r, q: kendall_tau(w[r].to_numpy(), w[q].to_numpy()))


# ----------------------------------------------------------------------------------------------
# uncertainty


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile bootstrap confidence interval (resampling items).

    Args:
        values: float (n,), one value per image.
        n_boot: bootstrap resamples.
        level: coverage of the interval, in (0, 1).
        seed: seed of the resampling generator (results are reproducible).
    Returns:
        (mean, low, high); NaN for empty input. One value gives a zero-width interval.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if v.size == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (float(v.mean()), float(lo), float(hi))


def bootstrap_stat(
    values: np.ndarray, stat: Callable[[np.ndarray], np.ndarray | float], n_boot: int = 2000,
    level: float = 0.95, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Any statistic of per-image values with a percentile bootstrap interval over images.

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
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    point = np.asarray(stat(a), dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boot = np.stack([np.asarray(stat(a[i]), dtype=np.float64) for i in idx])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
    return point, lo, hi


def bootstrap_curves(
    curves: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean curve over images and a pointwise bootstrap band (images resampled together).

    Args:
        curves: float (n_images, n_clicks).
    Returns:
        (mean, low, high), each float (n_clicks,).
    """
    a = np.asarray(curves, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"expected curves of shape (n_images, n_clicks), got {a.shape}")
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.shape[0], size=(n_boot, a.shape[0]))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha], axis=0)
    return a.mean(axis=0), lo, hi


def bootstrap_table(
    table: pd.DataFrame, metric: str = "iou", k: int | None = None, n_boot: int = 2000,
    level: float = 0.95, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Per (model, robot): mean over images of ``metric`` at ``k`` with its bootstrap interval."""
    s = per_image(table, metric, k)
    rows = []
    for (model, robot), block in s.groupby(level=["model", "robot"], sort=False):
        m, lo, hi = bootstrap_ci(block.to_numpy(), n_boot, level, seed)
        rows.append({"model": model, "robot": robot, "mean": m, "low": lo, "high": hi,
                     "images": block.size})  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "robot", "mean", "low", "high", "images"])


def bootstrap_difference(
    table: pd.DataFrame, model_a: str, model_b: str, metric: str = "iou", k: int | None = None,
    n_boot: int = 2000, level: float = 0.95, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Per robot: mean over images of A - B (paired) with its bootstrap interval."""
    w = _wide(table, metric, k)
    rows = []
    for robot in table["robot"].unique():
        if (model_a, robot) not in w or (model_b, robot) not in w:
            continue
        d = (w[(model_a, robot)] - w[(model_b, robot)]).dropna().to_numpy()
        m, lo, hi = bootstrap_ci(d, n_boot, level, seed)
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


def _spread_and_mean(x: np.ndarray) -> np.ndarray:
    """x: (..., image, model, robot) -> (..., model, 2): the range over robots and the mean over
    robots of each model's mean over images."""
    per_robot = x.mean(axis=-3)
    return np.stack([per_robot.max(-1) - per_robot.min(-1), per_robot.mean(-1)], -1)


def factor_effects(
    table: pd.DataFrame, design: dict[str, tuple[str, str]], metric: str = "iou",
    k: int | None = None, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """Main effects of architecture family and training procedure on the robot spread.

    ``design`` maps each of four models to (family, procedure), a full 2x2 (families "ritm" and
    "gto99", procedures likewise). For the spread over robots (max - min of the mean over
    images) and for the mean over robots, the effect of a factor is the mean over the two models
    with level "ritm" minus the mean over the two with level "gto99"; the interval resamples
    images (the same images for every model and robot). A negative family effect on the spread
    means the ritm architecture is less robot-dependent; a negative procedure effect means
    training with RITM's clicks makes a model less robot-dependent.

    Returns rows (quantity in {spread, mean}, factor in {family, procedure}) with columns
    effect, low, high, images.
    """
    models = list(design)
    levels = {f: {design[m][i] for m in models} for i, f in enumerate(("family", "procedure"))}
    if len(models) != 4 or any(v != {"ritm", "gto99"} for v in levels.values()):
        raise ValueError(f"design must be a full 2x2 over ritm/gto99, got {design}")
    w = _wide(table, metric, k)
    robots = sorted(table["robot"].unique())
    missing = [m for m in models if not all((m, r) in w for r in robots)]
    if missing:
        raise ValueError(f"the table lacks models {missing} under some of the robots {robots}")
    w = w[[(m, r) for m in models for r in robots]].dropna()
    a = w.to_numpy().reshape(len(w), len(models), len(robots))  # image x model x robot
    sign = {f: np.array([1.0 if design[m][i] == "ritm" else -1.0 for m in models]) / 2
            for i, f in enumerate(("family", "procedure"))}  # fmt: skip

    def effects(x: np.ndarray) -> np.ndarray:
        """x: (..., image, model, robot) -> (..., quantity, factor)."""
        q = np.moveaxis(_spread_and_mean(x), -1, -2)  # (..., quantity, model)
        return np.stack([q @ sign["family"], q @ sign["procedure"]], -1)

    point, lo, hi = bootstrap_stat(a, effects, n_boot, level, seed)
    rows = [{"quantity": q, "factor": f, "effect": point[i, j], "low": lo[i, j],
             "high": hi[i, j], "images": len(a)}
            for i, q in enumerate(("spread", "mean"))
            for j, f in enumerate(("family", "procedure"))]  # fmt: skip
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


# ----------------------------------------------------------------------------------------------
# the paper's findings, each checked on a sweep table

VERDICTS: tuple[str, str, str] = ("reproduced", "not reproduced", "these data cannot tell")
PAPER_MODELS: dict[str, str] = {"ritm": "ritm-compact", "gto99": "gto99-compact"}
"""The compact stand-ins of the paper's two models: family -> model label in the table."""
OFFICIAL_MODELS: dict[str, str] = dict(OFFICIAL_PAIR)
"""The paper's own two models (official weights): family -> model label in the table."""


def paper_models_of(models: Sequence[str]) -> dict[str, str]:
    """The pair that plays the paper's models among ``models``: the official pair when both
    are there, else the compact stand-ins (``PAPER_MODELS``)."""
    return OFFICIAL_MODELS if set(OFFICIAL_MODELS.values()) <= set(models) else PAPER_MODELS


OWN_ROBOT: dict[str, str] = {"ritm": "rritm", "gto99": "rgto99"}
"""Each paper's own robot, which mimics the click procedure its model was trained with."""
FEW_CLICKS = 5
"""Claim 1 is about "few clicks": each metric is averaged over clicks 1..FEW_CLICKS."""
MIN_IMAGES = 10
"""With fewer images a finding gets "these data cannot tell" whatever its interval: a
bootstrap over a handful of images gives intervals too narrow to trust."""

CLAIMS: dict[int, tuple[str, str]] = {
    1: ("The winner depends on the metric: under each paper's own robot (gto99 under rgto99, "
        "ritm under rritm), gto99 leads on precision and Dice while ritm leads on accuracy and "
        "recall, for few clicks (here: each metric averaged over clicks 1-{few}). The paper's "
        "'accuracy' is its code's TP/(TP+FN), i.e. recall, so the verdict uses precision, Dice "
        "and recall.", "Figure 4"),
    2: ("Under the sophisticated robots, rgto99 and rritm, gto99 surpasses ritm in IoU (averaged "
        "over clicks 1-{last}), under each of the two.", "Figure 6a"),
    3: ("ritm is more robust to the clicking procedure: the spread (max - min) over the seven "
        "robots of its mean IoU (averaged over clicks 1-{last}) is smaller than gto99's. Read "
        "it with the mean over robots: a model that is poor under every robot has a small "
        "spread too.", "Figures 6b and 7"),
    4: ("The training procedure shapes robustness: in the 2x2 family x procedure experiment, "
        "training with RITM's click procedure narrows the spread over the seven robots (IoU "
        "averaged over clicks 1-{last}; the procedure effect, ritm procedure minus gto99 "
        "procedure, is negative).", "the 2x2 experiment"),
    5: ("Training with a robot does not guarantee the best score under that robot: under at "
        "least one of rritm and rgto99, the paper model trained with that robot's procedure "
        "(ritm for rritm, gto99 for rgto99) has a lower IoU (averaged over clicks 1-{last}) "
        "than the other paper model.", "Figure 6a"),
}  # fmt: skip
"""Claim id -> (statement, where the paper shows it). ``{few}`` and ``{last}`` are filled in
with the clicks actually used (``{last}``: the table's last click)."""

FINDINGS_COLUMNS: tuple[str, ...] = (
    "claim", "dataset", "figure", "statement", "quantity", "measured", "margin", "low", "high",
    "images", "verdict",
)  # fmt: skip


def verdict(low: float, high: float, tol: float = 1e-12) -> str:
    """The verdict on a margin that is positive when a claim holds, from its interval.

    "reproduced" when the whole interval is above 0, "not reproduced" when it is below 0,
    "these data cannot tell" when it includes 0 or is NaN. Ends within ``tol`` of 0 count as
    0 (rounding must not decide a verdict).
    """
    if not (np.isfinite(low) and np.isfinite(high)):
        return VERDICTS[2]
    if low > tol:
        return VERDICTS[0]
    if high < -tol:
        return VERDICTS[1]
    return VERDICTS[2]


def _label(metric: str) -> str:
    return {"iou": "IoU", "dice": "Dice"}.get(metric, metric)


def _fmt(ci: Sequence[float]) -> str:
    mean, low, high = ci
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def _columns(
    t: pd.DataFrame, metric: str, cols: Sequence[tuple[str, str]], last: int
) -> tuple[pd.DataFrame | None, list[str]]:
    """image x ``cols`` ((model, robot)) of ``metric`` averaged over clicks 1..``last``, or
    (None, the missing pairs). Rows with a missing value are dropped."""
    w = _wide(t[t["click"] <= last], metric, None)
    missing = [f"{m} under {r}" for m, r in cols if (m, r) not in w]
    if missing:
        return None, missing
    return w[list(cols)].dropna(), []


def _finding(claim: int, quantity: str, missing: Sequence[str] = ()) -> dict:
    """A findings row without numbers yet ("these data cannot tell" if ``missing``)."""
    row = {"claim": claim, "quantity": quantity, "measured": "", "margin": np.nan,
           "low": np.nan, "high": np.nan, "images": 0}  # fmt: skip
    if missing:
        row["measured"] = "missing from the table: " + ", ".join(dict.fromkeys(missing))
    return row


def _margin(row: dict, a: np.ndarray, stat: Callable[[np.ndarray], float], boot: dict) -> None:
    """Fill ``row``'s margin ``stat(a)`` (positive when the claim holds) and its interval."""
    point, lo, hi = bootstrap_stat(a, stat, **boot)
    row.update(margin=float(point), low=float(lo), high=float(hi), images=len(a))


def _parts(row: dict, parts: dict[str, tuple[np.ndarray, float]], need: str, boot: dict) -> str:
    """Fill ``row`` from a claim made of parts; return the parts as text.

    ``parts``: name -> (per-image values (images,), sign); sign * value is positive when the
    part holds. ``need`` "all": the claim holds when every part does, so margin, low and high
    are the smallest of the parts' signed means and interval ends (reproduced when every
    part's interval is above 0, not reproduced when one is below 0); "any": the largest (a
    claim that one counterexample proves). The text gives each part unsigned: mean [interval].
    """
    cis = {name: bootstrap_ci(v, **boot) for name, (v, _) in parts.items()}
    signed = np.array([sorted(sign * c for c in cis[name][1:])
                       for name, (_, sign) in parts.items()])  # fmt: skip
    means = np.array([sign * cis[name][0] for name, (_, sign) in parts.items()])
    pick = np.min if need == "all" else np.max
    row.update(margin=float(pick(means)), low=float(pick(signed[:, 0])),
               high=float(pick(signed[:, 1])),
               images=len(next(iter(parts.values()))[0]))  # fmt: skip
    return "; ".join(f"{name} {_fmt(ci)}" for name, ci in cis.items())


def _claim_metrics(t: pd.DataFrame, few: int, boot: dict, pm: Mapping[str, str]) -> dict:
    """Claim 1: gto99 - ritm under their own robots, per metric, over clicks 1..few."""
    g, r = pm["gto99"], pm["ritm"]
    cols = [(g, OWN_ROBOT["gto99"]), (r, OWN_ROBOT["ritm"])]
    quantity = "smallest of: precision gto99 - ritm, Dice gto99 - ritm, recall ritm - gto99"
    diffs = {}
    for metric in ("precision", "dice", "recall", "accuracy"):
        w, missing = _columns(t, metric, cols, few)
        if w is None:
            return _finding(1, quantity, missing)
        diffs[metric] = w[cols[0]] - w[cols[1]]
    d = pd.DataFrame(diffs).dropna()  # image x metric: gto99 - ritm
    row = _finding(1, quantity)
    # gto99 leads on precision and Dice, ritm on recall
    parts = {"precision": (d["precision"].to_numpy(), 1.0), "Dice": (d["dice"].to_numpy(), 1.0),
             "recall": (d["recall"].to_numpy(), -1.0)}  # fmt: skip
    text = _parts(row, parts, "all", boot)
    acc = _fmt(bootstrap_ci(d["accuracy"].to_numpy(), **boot))
    row["measured"] = (f"gto99 - ritm: {text} (pixel accuracy {acc} is not the paper's "
                       "'accuracy' and does not enter the verdict)")  # fmt: skip
    return row


def _claim_gto99_wins(t: pd.DataFrame, last: int, metric: str, boot: dict,
                      pm: Mapping[str, str]) -> dict:  # fmt: skip
    """Claim 2: gto99 - ritm under rgto99 and under rritm, both positive."""
    g, r = pm["gto99"], pm["ritm"]
    robots = (OWN_ROBOT["gto99"], OWN_ROBOT["ritm"])
    quantity = f"smaller of: {_label(metric)} gto99 - ritm under rgto99, under rritm"
    w, missing = _columns(t, metric, [(m, rb) for rb in robots for m in (g, r)], last)
    if w is None:
        return _finding(2, quantity, missing)
    row = _finding(2, quantity)
    parts = {f"under {rb}": ((w[(g, rb)] - w[(r, rb)]).to_numpy(), 1.0) for rb in robots}
    row["measured"] = f"{_label(metric)} gto99 - ritm: " + _parts(row, parts, "all", boot)
    return row


def _claim_own_robot(t: pd.DataFrame, last: int, metric: str, boot: dict,
                     pm: Mapping[str, str]) -> dict:  # fmt: skip
    """Claim 5: under rritm gto99 - ritm, under rgto99 ritm - gto99; at least one positive."""
    g, r = pm["gto99"], pm["ritm"]
    # (robot, the model trained with its procedure, the other model)
    cases = ((OWN_ROBOT["ritm"], r, g), (OWN_ROBOT["gto99"], g, r))
    quantity = f"larger of: {_label(metric)} gto99 - ritm under rritm, ritm - gto99 under rgto99"
    w, missing = _columns(t, metric, [(m, rb) for rb, own, other in cases for m in (own, other)],
                          last)  # fmt: skip
    if w is None:
        return _finding(5, quantity, missing)
    row = _finding(5, quantity)
    parts = {f"under {rb}, {other} - {own} (trained with its procedure)":
             ((w[(other, rb)] - w[(own, rb)]).to_numpy(), 1.0) for rb, own, other in cases}  # fmt: skip
    row["measured"] = f"{_label(metric)}: " + _parts(row, parts, "any", boot)
    return row


def _claim_spread(t: pd.DataFrame, last: int, metric: str, robots: Sequence[str],
                  boot: dict, pm: Mapping[str, str]) -> dict:  # fmt: skip
    """Claim 3: range over robots of each paper model's mean, gto99's minus ritm's."""
    models = (pm["ritm"], pm["gto99"])
    row = _finding(3, f"spread over the {len(robots)} robots of the mean {_label(metric)}, "
                      "gto99 - ritm")  # fmt: skip
    w, missing = _columns(t, metric, [(m, rb) for m in models for rb in robots], last)
    if w is None:
        return _finding(3, row["quantity"], missing)
    a = w.to_numpy().reshape(len(w), len(models), len(robots))  # image x model x robot
    _margin(row, a, lambda x: float(np.diff(_spread_and_mean(x)[:, 0])[0]), boot)
    q = _spread_and_mean(a)  # model x (spread, mean)
    std = a.mean(axis=0).std(axis=1)
    dm = bootstrap_ci(a[:, 0].mean(axis=1) - a[:, 1].mean(axis=1), **boot)
    row["measured"] = (
        "; ".join(f"{m}: spread {q[i, 0]:.3f}, std {std[i]:.3f}, mean {q[i, 1]:.3f}"
                  for i, m in enumerate(models))
        + f"; spread gto99 - ritm {_fmt((row['margin'], row['low'], row['high']))}; mean over "
        f"robots ritm - gto99 {_fmt(dm)}"
    )  # fmt: skip
    return row


def _claim_procedure(t: pd.DataFrame, last: int, metric: str, robots: Sequence[str],
                     design: dict[str, tuple[str, str]], boot: dict) -> dict:  # fmt: skip
    """Claim 4: minus the procedure effect on the spread (``factor_effects``)."""
    row = _finding(4, "minus the procedure effect on the spread over robots (ritm procedure - "
                      "gto99 procedure)")  # fmt: skip
    cols = [(m, rb) for m in design for rb in robots]
    w, missing = _columns(t, metric, cols, last)
    if w is None:
        return _finding(4, row["quantity"], missing)
    sub = t[t["model"].isin(list(design)) & t["robot"].isin(list(robots)) & (t["click"] <= last)]
    e = factor_effects(sub, design, metric, None, **boot).set_index(["quantity", "factor"])
    eff, lo, hi = e.loc[("spread", "procedure"), ["effect", "low", "high"]]
    row.update(margin=-float(eff), low=-float(hi), high=-float(lo), images=int(len(w)))
    fam = e.loc[("spread", "family")]
    mean = e.loc[("mean", "procedure")]
    row["measured"] = (
        f"procedure effect on the spread {_fmt((eff, lo, hi))}; family effect on the spread "
        f"{_fmt(fam[['effect', 'low', 'high']])}; procedure effect on the mean over robots "
        f"{_fmt(mean[['effect', 'low', 'high']])}"
    )
    return row


def findings(
    table: pd.DataFrame, datasets: Sequence[str] | None = None, *, metric: str = "iou",
    few_clicks: int = FEW_CLICKS, robots: Sequence[str] | None = None,
    design: dict[str, tuple[str, str]] | None = None, min_images: int = MIN_IMAGES,
    n_boot: int = 2000, level: float = 0.95, seed: int = 0,
    paper_models: Mapping[str, str] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The paper's five findings checked on a sweep table: one row per (claim, dataset).

    The paper's models are ``paper_models`` (family -> label; default ``PAPER_MODELS``: ritm ->
    ritm-compact, gto99 -> gto99-compact; ``OFFICIAL_MODELS`` for the paper's own weights,
    ``paper_models_of(models)`` picks), their own robots rritm and rgto99. Each claim is reduced to a **margin** that is positive
    when the claim holds, with a percentile bootstrap interval over images (the images are
    resampled together, so every comparison stays paired); ``verdict`` turns the interval
    into "reproduced" (above 0), "not reproduced" (below 0) or "these data cannot tell" (it
    includes 0, a model, robot or dataset is missing, or fewer than ``min_images`` images).

    1. Figure 4, clicks 1..``few_clicks``, each model under its own robot: the smallest of
       precision gto99 - ritm, Dice gto99 - ritm and recall ritm - gto99 (the paper's
       "accuracy" is recall; our pixel accuracy is reported beside it, outside the verdict).
    2. Figure 6a: the smaller of ``metric`` gto99 - ritm under rgto99 and under rritm.
    3. Figures 6b and 7: gto99's spread minus ritm's, the spread being max - min over
       ``robots`` of the mean ``metric`` (as in ``robot_spread``); the means are reported.
    4. The 2x2: minus the procedure effect on the spread (``factor_effects``; ``design``
       defaults to ``iislib.models.compact.DESIGN``; all four models are needed).
    5. The larger of gto99 - ritm under rritm and ritm - gto99 under rgto99: positive when the
       model trained with a robot's procedure is beaten under that robot at least once.

    Claims 2-5 average ``metric`` over every click of the table (1..its last click). Seeds are
    averaged per image; images missing for one of the compared (model, robot) pairs are left
    out of that claim.

    Args:
        table: a sweep table (``iislib.experiment.sweep.COLUMNS``), one settings name per dataset.
        datasets: the datasets to check (default: every one in the table); one that the table
            lacks gives five "these data cannot tell" rows.
        robots: the robots of claims 3 and 4 (default: the paper's seven, ``ROBOT_NAMES``).
    Returns:
        ``FINDINGS_COLUMNS``: claim (1-5), dataset, figure, statement, quantity (what the
        margin is), measured (the numbers behind it as text: means and 95% intervals), margin,
        low, high (floats; NaN when not measured), images, verdict.
    """
    needed = {"dataset", "settings", "model", "robot", "image", "seed", "click", *METRIC_NAMES}
    if not needed <= set(table.columns):
        raise ValueError(f"not a sweep table: it lacks columns {sorted(needed - set(table))}")
    _check_metric(table, metric)
    if few_clicks < 1:
        raise ValueError(f"few_clicks must be at least 1, got {few_clicks}")
    robots = list(robots) if robots is not None else list(ROBOT_NAMES)
    design = dict(design) if design is not None else dict(FAMILY_PROCEDURE)
    pm = dict(paper_models) if paper_models is not None else PAPER_MODELS
    datasets = list(datasets) if datasets is not None else list(dict.fromkeys(table["dataset"]))
    boot = {"n_boot": n_boot, "level": level, "seed": seed}
    rows = []
    for ds in datasets:
        t = table[table["dataset"] == ds]
        if t.empty:
            found = [_finding(c, "", [f"dataset {ds}"]) for c in CLAIMS]
            last = few = 0
        else:
            settings_ = sorted(t["settings"].unique())
            if len(settings_) > 1:
                raise ValueError(f"dataset {ds} was run with several settings {settings_}; "
                                 "check one settings name at a time")  # fmt: skip
            last = int(t["click"].max())
            few = min(few_clicks, last)
            found = [
                _claim_metrics(t, few, boot, pm),
                _claim_gto99_wins(t, last, metric, boot, pm),
                _claim_spread(t, last, metric, robots, boot, pm),
                _claim_procedure(t, last, metric, robots, design, boot),
                _claim_own_robot(t, last, metric, boot, pm),
            ]
        for row in found:
            statement, figure = CLAIMS[row["claim"]]
            row["verdict"] = verdict(row["low"], row["high"])
            if 0 < row["images"] < min_images:
                row["verdict"] = VERDICTS[2]
                row["measured"] += f" (only {row['images']} images: too few for a verdict)"
            row.update(dataset=ds, figure=figure,
                       statement=statement.format(few=few or "k", last=last or "K"))  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows, columns=list(FINDINGS_COLUMNS))


PAPER_SETUP: dict[str, dict[str, str]] = {
    "ritm": {
        "network": "HRNet-18 + OCR, IT-M (sbd_h18_itermask.pth, a 38.8 MB file)",
        "training data": "SBD",
        "training": "crops 320x480, batch 28, 220 epochs",
    },
    "gto99": {
        "network": "ResNet-50 GN+WS with guided filter (InterSegSynthFT.pth, a 144 MB file)",
        "training data": "synthetic pre-training, then SBD",
        "training": "not published (the training code was not released)",
    },
}
"""The paper's two models as the reference implementations describe them (one reading of the
public code; see the project's reference notes)."""


_SET_NAMES = {"horses": "Weizmann horses", "bsds": "BSDS500"}


def paper_vs_compact(models: dict[str, str] | None = None) -> pd.DataFrame:
    """What differs between the paper's models and the compact stand-ins this table measures.

    Rows (family, aspect) for network, training data and training; columns ``paper``
    (``PAPER_SETUP``) and ``here`` (read from the shipped weights' training config, so it
    follows a retraining; "no shipped weights" when absent). ``models``: family -> compact
    model (default ``PAPER_MODELS``).
    """

    rows = []
    for family, name in (models or PAPER_MODELS).items():
        if compact.shipped_weights(name).is_file():
            c = compact.training_config(name)
            r = c.get("recipe", {})
            here = {
                "network": f"{name}: {c.get('parameters', 0):,} parameters",
                "training data": ", ".join(_SET_NAMES.get(x, x) for x in c.get("sets", []))
                + " (never a benchmark image)",
                "training": f"crops {r.get('crop')}x{r.get('crop')}, batch {r.get('batch_size')}, "
                            f"{r.get('steps')} steps (recipe {c.get('recipe_name', '?')})",
            }  # fmt: skip
        else:
            here = dict.fromkeys(PAPER_SETUP[family], f"{name}: no shipped weights")
        for aspect, paper in PAPER_SETUP[family].items():
            rows.append({"family": family, "aspect": aspect, "paper": paper,
                         "here": here[aspect]})  # fmt: skip
    return pd.DataFrame(rows).set_index(["family", "aspect"])


def own_protocol_noc(table: pd.DataFrame) -> pd.DataFrame:
    """NoC of the official models in ``table`` beside the numbers their README publishes.

    ``table``: sweeps of official models (``iislib.models.official``), each under its paper's
    own protocol (settings ``ritm`` with rritm, ``gto99`` with rgto99; ``paper.own_protocol``
    requests them). One row per (dataset, model, robot): images, clicks, settings, NoC@85 and
    NoC@90 measured (RITM's rule: a failure counts max_clicks) and published (NaN where the
    README gives none), and the difference. Models that are not official are left out.
    """
    from iislib.core.metrics import noc

    cols = ["dataset", "model", "settings", "robot", "images", "clicks", "NoC@85",
            "published NoC@85", "NoC@90", "published NoC@90"]  # fmt: skip
    rows = []
    t = table[table["model"].isin(list(OFFICIAL))]
    for (ds, model, settings, robot), g in t.groupby(["dataset", "model", "settings", "robot"]):
        curves = g.pivot_table(index=["image", "seed"], columns="click", values="iou").to_numpy()
        row = {"dataset": ds, "model": model, "settings": settings, "robot": robot,
               "images": len(curves), "clicks": curves.shape[1]}  # fmt: skip
        for k, thr in (("NoC@85", 0.85), ("NoC@90", 0.90)):
            row[k] = float(noc(curves, thr).mean())
            row[f"published {k}"] = OFFICIAL[model].published.get((ds, k), np.nan)
        rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    for k in ("NoC@85", "NoC@90"):
        out[f"{k} - published"] = out[k] - out[f"published {k}"]
    return out
