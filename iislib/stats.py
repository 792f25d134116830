"""Statistics over a sweep table: does the verdict of a benchmark survive a change of robot?

Every function takes the tidy table of ``iislib.experiment.evaluate`` (one row per model x robot x
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
``bootstrap_ci``            percentile bootstrap over images
``seed_variance``           spread over seeds of a random robot's benchmark number
``robot_cost``              milliseconds per robot call
``first_divergence``        first click at which two click sequences differ
``metric_quirks``           our scores beside the reference code's for one prediction
``robot_spread``            per model: mean, range and std over robots of its benchmark number
``factor_effects``          2x2 family x procedure: main effects on the spread, bootstrap CIs
=========================== ========================================================================

``k`` is a 1-based click index; ``k=None`` means the mean over all clicks (the per-image area
under the IoU curve). Seeds are averaged per image before any comparison, so a random robot's
per-image value is its expected score under that robot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from iislib.clicks import Click
from iislib.metrics import METRIC_NAMES, reference_scores, scores


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
    recorded as 0, are dropped) or ``iislib.notebooks.time_robots``.
    """
    t = times[times[column] > 0]
    g = t.groupby("robot", sort=False)[column]
    out = pd.DataFrame({
        "ms_mean": g.mean() * 1e3, "ms_median": g.median() * 1e3,
        "ms_p90": g.quantile(0.9) * 1e3, "calls": g.size(),
    })  # fmt: skip
    return out.reset_index()


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
        per_robot = x.mean(axis=-3)  # mean over images: (..., model, robot)
        q = np.stack([per_robot.max(-1) - per_robot.min(-1), per_robot.mean(-1)], -2)
        return np.stack([q @ sign["family"], q @ sign["procedure"]], -1)

    point = effects(a)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boot = np.stack([effects(a[i]) for i in idx])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0)
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
