"""The paper's claims, each checked on a sweep table: per dataset, and pooled over datasets.

``findings(table)`` gives one row per (claim, dataset) and, with two datasets or more, one row
per claim for the datasets pooled (``dataset == POOLED``). Each claim is reduced to a **margin**
that is positive when the claim holds, with a 95% bootstrap interval over images
(``stats.bootstrap_means``: BCa, images resampled together, so every comparison stays paired),
and ``verdict`` reads the interval.

**Pooled.** The pooled benchmark weighs each dataset equally: every mean over images is the mean
over the datasets of each dataset's own mean over its images (Berkeley, GrabCut and DAVIS count
1/3 each, whatever their 100, 50 and 345 images), and a claim's margin is computed from these
pooled means. The bootstrap resamples images within each dataset (stratified), so the interval
reflects each dataset's own sampling; a larger dataset narrows its share of the interval, it
does not outvote the others.

**Claims are registered.** ``CLAIMS`` maps a claim id to a ``Claim``: its statement, where the
paper shows it, and a ``measure(t, setup) -> Measurement`` function that, for one dataset's
rows, returns per-image arrays and the statistic of their means that makes the margin. The
bootstrap, the pooling, the verdict and the text are done here, the same for every claim. To
add one::

    def _claim_mine(t: pd.DataFrame, s: Setup) -> Measurement:
        w, missing = columns(t, s.metric, [(model, robot), ...], s.last)
        if w is None:
            return Measurement("what the margin is", missing=missing)
        return Measurement("what the margin is", parts=(Quantity("A - B", a - b),))

    register(Claim(6, "Figure X", "The statement, IoU averaged over clicks 1-{last}.", _claim_mine))

``findings(table, claims=[6])`` then checks it alone; by default every registered claim is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from iislib.core.metrics import METRIC_NAMES
from iislib.core.robots import ROBOT_NAMES
from iislib.experiment.stats import (
    bootstrap_means,
    design_contrasts,
    effects_of_means,
    spread_and_mean,
    wide,
)
from iislib.models import compact
from iislib.models.compact import DESIGN
from iislib.models.official import OFFICIAL, OFFICIAL_PAIR

FAMILY_PROCEDURE: dict[str, tuple[str, str]] = DESIGN
"""The 2x2 experiment: model name -> (architecture family, training click procedure)."""
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
POOLED = "pooled"
"""The ``dataset`` of the pooled rows."""

FINDINGS_COLUMNS: tuple[str, ...] = (
    "claim", "dataset", "figure", "statement", "quantity", "measured", "margin", "low", "high",
    "images", "verdict",
)  # fmt: skip


# ----------------------------------------------------------------------------------------------
# what a claim function returns


@dataclass(frozen=True)
class Quantity:
    """A number a claim is read from: ``stat`` of the means over images of ``values``.

    Attributes:
        label: how the text names it.
        values: float (images, *features), one row per image (e.g. image x model x robot).
        stat: the means (..., *features) -> the quantity (...), vectorised over the leading
            axes; None: the mean itself (``values`` is then (images,)).
        sign: +1 when the claim holds for a positive quantity, -1 for a negative one.
    """

    label: str
    values: np.ndarray
    stat: Callable[[np.ndarray], np.ndarray] | None = None
    sign: float = 1.0


@dataclass(frozen=True)
class Measurement:
    """A claim measured on one dataset's rows (``Claim.measure``'s result).

    Attributes:
        quantity: what the margin is, in words.
        parts: the quantities the verdict reads; the margin and its interval ends are the
            smallest (``need`` "all": the claim needs every part) or the largest ("any": one
            counterexample proves it) of the parts' signed means and interval ends.
        need: "all" or "any".
        reported: quantities given beside the parts in the text, outside the verdict.
        prefix, note: text before the parts and after everything.
        missing: what the table lacks to measure the claim (then nothing else is read).
    """

    quantity: str
    parts: tuple[Quantity, ...] = ()
    need: str = "all"
    reported: tuple[Quantity, ...] = ()
    prefix: str = ""
    note: str = ""
    missing: tuple[str, ...] | list[str] = ()

    @property
    def images(self) -> int:
        return len(self.parts[0].values) if self.parts else 0


@dataclass(frozen=True)
class Setup:
    """What a claim function is told: the ``metric`` of claims about one score, the clicks
    ``few`` (claim 1) and ``last`` (the table's last click), the ``robots`` of the spread, the
    2x2 ``design`` and the ``paper_models`` (family -> the label that plays it)."""

    metric: str
    few: int
    last: int
    robots: tuple[str, ...]
    design: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(FAMILY_PROCEDURE))
    paper_models: Mapping[str, str] = field(default_factory=lambda: dict(PAPER_MODELS))


@dataclass(frozen=True)
class Claim:
    """A registered claim: ``statement`` (``{few}`` and ``{last}`` are filled in with the clicks
    used), ``figure`` (where the paper shows it) and ``measure`` (one dataset's rows and the
    setup -> a Measurement)."""

    id: int
    figure: str
    statement: str
    measure: Callable[[pd.DataFrame, Setup], Measurement]


CLAIMS: dict[int, Claim] = {}
"""Claim id -> Claim, in the order ``findings`` checks them (``register`` adds one)."""


def register(claim: Claim) -> Claim:
    """Add ``claim`` to ``CLAIMS`` (ValueError if its id is taken by another claim)."""
    old = CLAIMS.get(claim.id)
    if old is not None and old is not claim:
        raise ValueError(f"claim {claim.id} is already registered ({old.figure})")
    CLAIMS[claim.id] = claim
    return claim


# ----------------------------------------------------------------------------------------------
# helpers of the claim functions


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


def label(metric: str) -> str:
    """A metric's name in the text (IoU, Dice, precision, ...)."""
    return {"iou": "IoU", "dice": "Dice"}.get(metric, metric)


def _fmt(ci: Sequence[float]) -> str:
    mean, low, high = ci
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def columns(
    t: pd.DataFrame, metric: str, cols: Sequence[tuple[str, str]], last: int
) -> tuple[pd.DataFrame | None, list[str]]:
    """image x ``cols`` ((model, robot)) of ``metric`` averaged over clicks 1..``last``, or
    (None, the missing pairs). Rows with a missing value are dropped."""
    w = wide(t[t["click"] <= last], metric, None)
    missing = [f"{m} under {r}" for m, r in cols if (m, r) not in w]
    if missing:
        return None, missing
    return w[list(cols)].dropna(), []


# ----------------------------------------------------------------------------------------------
# the paper's five claims


def _claim_metrics(t: pd.DataFrame, s: Setup) -> Measurement:
    """Claim 1: gto99 - ritm under their own robots, per metric, over clicks 1..few."""
    g, r = s.paper_models["gto99"], s.paper_models["ritm"]
    cols = [(g, OWN_ROBOT["gto99"]), (r, OWN_ROBOT["ritm"])]
    quantity = "smallest of: precision gto99 - ritm, Dice gto99 - ritm, recall ritm - gto99"
    diffs = {}
    for metric in ("precision", "dice", "recall", "accuracy"):
        w, missing = columns(t, metric, cols, s.few)
        if w is None:
            return Measurement(quantity, missing=missing)
        diffs[metric] = w[cols[0]] - w[cols[1]]
    d = pd.DataFrame(diffs).dropna()  # image x metric: gto99 - ritm
    # gto99 leads on precision and Dice, ritm on recall
    parts = (Quantity("precision", d["precision"].to_numpy()),
             Quantity("Dice", d["dice"].to_numpy()),
             Quantity("recall", d["recall"].to_numpy(), sign=-1.0))  # fmt: skip
    return Measurement(quantity, parts, "all", (Quantity("pixel accuracy", d["accuracy"].to_numpy()),),
                       prefix="gto99 - ritm: ",
                       note=" (pixel accuracy is not the paper's 'accuracy' and does not enter "
                            "the verdict)")  # fmt: skip


def _claim_gto99_wins(t: pd.DataFrame, s: Setup) -> Measurement:
    """Claim 2: gto99 - ritm under rgto99 and under rritm, both positive."""
    g, r = s.paper_models["gto99"], s.paper_models["ritm"]
    robots = (OWN_ROBOT["gto99"], OWN_ROBOT["ritm"])
    quantity = f"smaller of: {label(s.metric)} gto99 - ritm under rgto99, under rritm"
    w, missing = columns(t, s.metric, [(m, rb) for rb in robots for m in (g, r)], s.last)
    if w is None:
        return Measurement(quantity, missing=missing)
    parts = tuple(Quantity(f"under {rb}", (w[(g, rb)] - w[(r, rb)]).to_numpy()) for rb in robots)
    return Measurement(quantity, parts, "all", prefix=f"{label(s.metric)} gto99 - ritm: ")


def _claim_spread(t: pd.DataFrame, s: Setup) -> Measurement:
    """Claim 3: range over robots of each paper model's mean, gto99's minus ritm's."""
    models = (s.paper_models["ritm"], s.paper_models["gto99"])
    quantity = (f"spread over the {len(s.robots)} robots of the mean {label(s.metric)}, "
                "gto99 - ritm")  # fmt: skip
    w, missing = columns(t, s.metric, [(m, rb) for m in models for rb in s.robots], s.last)
    if w is None:
        return Measurement(quantity, missing=missing)
    a = w.to_numpy().reshape(len(w), len(models), len(s.robots))  # image x model x robot

    def spread_diff(m: np.ndarray) -> np.ndarray:
        q = spread_and_mean(m)  # (..., model, (spread, mean))
        return q[..., 1, 0] - q[..., 0, 0]

    reported = [Quantity(f"{what} of {m}", a, lambda x, i=i, j=j: spread_and_mean(x)[..., i, j])
                for j, what in enumerate(("spread", "mean over robots"))
                for i, m in enumerate(models)]  # fmt: skip
    reported.append(Quantity("mean over robots ritm - gto99", a,
                             lambda x: -np.diff(spread_and_mean(x)[..., 1], axis=-1)[..., 0]))  # fmt: skip
    return Measurement(quantity, (Quantity("spread gto99 - ritm", a, spread_diff),), "all",
                       tuple(reported))  # fmt: skip


def _claim_procedure(t: pd.DataFrame, s: Setup) -> Measurement:
    """Claim 4: minus the procedure effect on the spread (``stats.factor_effects``)."""
    quantity = ("minus the procedure effect on the spread over robots (ritm procedure - gto99 "
                "procedure)")  # fmt: skip
    contrasts = design_contrasts(s.design)
    cols = [(m, rb) for m in s.design for rb in s.robots]
    w, missing = columns(t, s.metric, cols, s.last)
    if w is None:
        return Measurement(quantity, missing=missing)
    a = w.to_numpy().reshape(len(w), len(s.design), len(s.robots))  # image x model x robot

    def effect(q: int, f: int) -> Callable[[np.ndarray], np.ndarray]:
        return lambda m: effects_of_means(m, contrasts)[..., q, f]

    return Measurement(
        quantity, (Quantity("procedure effect on the spread", a, effect(0, 1), sign=-1.0),),
        "all", (Quantity("family effect on the spread", a, effect(0, 0)),
                Quantity("procedure effect on the mean over robots", a, effect(1, 1))),
    )  # fmt: skip


def _claim_own_robot(t: pd.DataFrame, s: Setup) -> Measurement:
    """Claim 5: under rritm gto99 - ritm, under rgto99 ritm - gto99; at least one positive."""
    g, r = s.paper_models["gto99"], s.paper_models["ritm"]
    # (robot, the model trained with its procedure, the other model)
    cases = ((OWN_ROBOT["ritm"], r, g), (OWN_ROBOT["gto99"], g, r))
    quantity = (f"larger of: {label(s.metric)} gto99 - ritm under rritm, ritm - gto99 under "
                "rgto99")  # fmt: skip
    w, missing = columns(t, s.metric, [(m, rb) for rb, own, other in cases for m in (own, other)],
                         s.last)  # fmt: skip
    if w is None:
        return Measurement(quantity, missing=missing)
    parts = tuple(Quantity(f"under {rb}, {other} - {own} (trained with its procedure)",
                           (w[(other, rb)] - w[(own, rb)]).to_numpy())
                  for rb, own, other in cases)  # fmt: skip
    return Measurement(quantity, parts, "any", prefix=f"{label(s.metric)}: ")


PAPER_CLAIMS: tuple[Claim, ...] = tuple(register(c) for c in (
    Claim(1, "Figure 4",
          "The winner depends on the metric: under each paper's own robot (gto99 under rgto99, "
          "ritm under rritm), gto99 leads on precision and Dice while ritm leads on accuracy and "
          "recall, for few clicks (here: each metric averaged over clicks 1-{few}). The paper's "
          "'accuracy' is its code's TP/(TP+FN), i.e. recall, so the verdict uses precision, Dice "
          "and recall.", _claim_metrics),
    Claim(2, "Figure 6a",
          "Under the sophisticated robots, rgto99 and rritm, gto99 surpasses ritm in IoU "
          "(averaged over clicks 1-{last}), under each of the two.", _claim_gto99_wins),
    Claim(3, "Figures 6b and 7",
          "ritm is more robust to the clicking procedure: the spread (max - min) over the seven "
          "robots of its mean IoU (averaged over clicks 1-{last}) is smaller than gto99's. Read "
          "it with the mean over robots: a model that is poor under every robot has a small "
          "spread too.", _claim_spread),
    Claim(4, "the 2x2 experiment",
          "The training procedure shapes robustness: in the 2x2 family x procedure experiment, "
          "training with RITM's click procedure narrows the spread over the seven robots (IoU "
          "averaged over clicks 1-{last}; the procedure effect, ritm procedure minus gto99 "
          "procedure, is negative).", _claim_procedure),
    Claim(5, "Figure 6a",
          "Training with a robot does not guarantee the best score under that robot: under at "
          "least one of rritm and rgto99, the paper model trained with that robot's procedure "
          "(ritm for rritm, gto99 for rgto99) has a lower IoU (averaged over clicks 1-{last}) "
          "than the other paper model.", _claim_own_robot),
))  # fmt: skip
"""The paper's five claims (registered in ``CLAIMS`` as 1-5)."""


# ----------------------------------------------------------------------------------------------
# from measurements to rows


def _row(claim: Claim, found: Sequence[tuple[str, Measurement]], boot: dict,
         min_images: int) -> dict:  # fmt: skip
    """The findings row of ``claim`` from its measurement on one dataset, or on several
    (pooled: equal weights, images resampled within each dataset)."""
    pooled = len(found) > 1
    row = {"claim": claim.id, "quantity": found[0][1].quantity, "measured": "",
           "margin": np.nan, "low": np.nan, "high": np.nan,
           "images": sum(m.images for _, m in found)}  # fmt: skip
    missing = [(f"{ds}: " if pooled else "") + x for ds, m in found for x in m.missing]
    missing += [(f"{ds}: " if pooled else "") + "no image scored for every compared pair"
                for ds, m in found if not m.missing and m.images == 0]  # fmt: skip
    if missing:
        row.update(images=0, measured="missing from the table: "
                   + ", ".join(dict.fromkeys(missing)))  # fmt: skip
        return row
    first = found[0][1]
    for ds, m in found[1:]:
        if [q.label for q in m.parts + m.reported] != [
            q.label for q in first.parts + first.reported
        ]:
            raise ValueError(f"claim {claim.id} measures other quantities on {ds} than on "
                             f"{found[0][0]}")  # fmt: skip

    def interval(j: int, reported: bool) -> tuple[float, float, float]:
        qs = [(m.reported if reported else m.parts)[j] for _, m in found]
        point, lo, hi = bootstrap_means([q.values for q in qs], qs[0].stat, **boot)
        return float(point), float(lo), float(hi)

    cis = [interval(j, False) for j in range(len(first.parts))]
    signed = np.array([[q.sign * ci[0], *sorted(q.sign * v for v in ci[1:])]
                       for q, ci in zip(first.parts, cis, strict=True)])  # fmt: skip
    pick = np.min if first.need == "all" else np.max
    row.update(margin=float(pick(signed[:, 0])), low=float(pick(signed[:, 1])),
               high=float(pick(signed[:, 2])))  # fmt: skip
    text = [f"{q.label} {_fmt(ci)}" for q, ci in zip(first.parts, cis, strict=True)]
    text += [f"{q.label} {_fmt(interval(j, True))}" for j, q in enumerate(first.reported)]
    row["measured"] = first.prefix + "; ".join(text) + first.note
    small = {ds: m.images for ds, m in found if m.images < min_images}
    if small:
        row["measured"] += " (only " + ", ".join(
            f"{n} images" + (f" in {ds}" if pooled else "") for ds, n in small.items()
        ) + ": too few for a verdict)"  # fmt: skip
    return row


def findings(
    table: pd.DataFrame, datasets: Sequence[str] | None = None, *, metric: str = "iou",
    few_clicks: int = FEW_CLICKS, robots: Sequence[str] | None = None,
    design: dict[str, tuple[str, str]] | None = None, min_images: int = MIN_IMAGES,
    pooled: bool | None = None, claims: Sequence[int] | None = None, n_boot: int = 2000,
    level: float = 0.95, seed: int = 0, method: str = "BCa",
    paper_models: Mapping[str, str] | None = None,
) -> pd.DataFrame:  # fmt: skip
    """The paper's findings checked on a sweep table: one row per (claim, dataset), and per
    claim one for the datasets pooled.

    The paper's models are ``paper_models`` (family -> label; default ``PAPER_MODELS``: ritm ->
    ritm-compact, gto99 -> gto99-compact; ``OFFICIAL_MODELS`` for the paper's own weights,
    ``paper_models_of(models)`` picks), their own robots rritm and rgto99. Each claim is reduced to a **margin** that is positive
    when the claim holds, with a bootstrap interval over images (``stats.bootstrap_means``:
    ``method`` BCa by default, ``scipy.stats.bootstrap``; the images are resampled together,
    so every comparison stays paired); ``verdict`` turns the interval into "reproduced" (above
    0), "not reproduced" (below 0) or "these data cannot tell" (it includes 0, a model, robot
    or dataset is missing, or a dataset has fewer than ``min_images`` images).

    1. Figure 4, clicks 1..``few_clicks``, each model under its own robot: the smallest of
       precision gto99 - ritm, Dice gto99 - ritm and recall ritm - gto99 (the paper's
       "accuracy" is recall; our pixel accuracy is reported beside it, outside the verdict).
    2. Figure 6a: the smaller of ``metric`` gto99 - ritm under rgto99 and under rritm.
    3. Figures 6b and 7: gto99's spread minus ritm's, the spread being max - min over
       ``robots`` of the mean ``metric`` (as in ``stats.robot_spread``); the means are reported.
    4. The 2x2: minus the procedure effect on the spread (``stats.factor_effects``; ``design``
       defaults to ``iislib.models.compact.DESIGN``; all four models are needed).
    5. The larger of gto99 - ritm under rritm and ritm - gto99 under rgto99: positive when the
       model trained with a robot's procedure is beaten under that robot at least once.

    Claims 2-5 average ``metric`` over every click of the table (1..its last click). Seeds are
    averaged per image; images missing for one of the compared (model, robot) pairs are left
    out of that claim. Other claims can be registered (``register``, module docstring).

    **Pooled** (``dataset`` ``POOLED``; default: when two or more datasets are checked): each
    dataset weighs the same, whatever its number of images. Every mean over images is the
    mean over the datasets of each dataset's mean over its images, the margin is computed from
    these means, and the bootstrap resamples images within each dataset. A claim missing on one
    dataset, or measured there on too few images, cannot be told pooled either; the datasets'
    last clicks must agree (the pooled claims use the smallest).

    Args:
        table: a sweep table (``iislib.experiment.sweep.COLUMNS``), one settings name per dataset.
        datasets: the datasets to check (default: every one in the table); one that the table
            lacks gives "these data cannot tell" rows.
        robots: the robots of claims 3 and 4 (default: the paper's seven, ``ROBOT_NAMES``).
        claims: the claim ids to check (default: every registered claim, ``CLAIMS``).
        n_boot, level, seed, method: the bootstrap (``stats.bootstrap_means``).
    Returns:
        ``FINDINGS_COLUMNS``: claim, dataset, figure, statement, quantity (what the margin is),
        measured (the numbers behind it as text: means and intervals), margin, low, high
        (floats; NaN when not measured), images (summed over the datasets when pooled),
        verdict. Per claim, the datasets in order, then the pooled row.
    """
    needed = {"dataset", "settings", "model", "robot", "image", "seed", "click", *METRIC_NAMES}
    if not needed <= set(table.columns):
        raise ValueError(f"not a sweep table: it lacks columns {sorted(needed - set(table))}")
    if metric not in table.columns:
        raise ValueError(f"unknown metric {metric!r}; the table has {', '.join(METRIC_NAMES)}")
    if few_clicks < 1:
        raise ValueError(f"few_clicks must be at least 1, got {few_clicks}")
    ids = list(claims) if claims is not None else list(CLAIMS)
    unknown = [c for c in ids if c not in CLAIMS]
    if unknown:
        raise ValueError(f"unknown claim(s) {unknown}; registered: {list(CLAIMS)}")
    robots_ = tuple(robots) if robots is not None else tuple(ROBOT_NAMES)
    design_ = dict(design) if design is not None else dict(FAMILY_PROCEDURE)
    pm = dict(paper_models) if paper_models is not None else dict(PAPER_MODELS)
    datasets = list(datasets) if datasets is not None else list(dict.fromkeys(table["dataset"]))
    pooled = len(datasets) > 1 if pooled is None else pooled
    boot = {"n_boot": n_boot, "level": level, "seed": seed, "method": method}

    parts: dict[str, pd.DataFrame] = {}
    lasts: dict[str, int] = {}
    for ds in datasets:
        t = table[table["dataset"] == ds]
        parts[ds] = t
        if not t.empty:
            settings_ = sorted(t["settings"].unique())
            if len(settings_) > 1:
                raise ValueError(f"dataset {ds} was run with several settings {settings_}; "
                                 "check one settings name at a time")  # fmt: skip
            lasts[ds] = int(t["click"].max())

    def measure(claim: Claim, ds: str, last: int | None) -> Measurement:
        t = parts[ds]
        if t.empty:
            return Measurement("", missing=[f"dataset {ds}"])
        last = lasts[ds] if last is None else last
        setup = Setup(metric, min(few_clicks, last), last, robots_, design_, pm)
        return claim.measure(t[t["click"] <= last], setup)

    def finish(row: dict, claim: Claim, ds: str, found: Sequence[tuple[str, Measurement]],
               last: int) -> dict:  # fmt: skip
        row["verdict"] = verdict(row["low"], row["high"])
        if any(0 < m.images < min_images for _, m in found):
            row["verdict"] = VERDICTS[2]
        few = min(few_clicks, last) if last else 0
        row.update(dataset=ds, figure=claim.figure,
                   statement=claim.statement.format(few=few or "k", last=last or "K"))  # fmt: skip
        return row

    rows = []
    for cid in ids:
        claim = CLAIMS[cid]
        found = {ds: measure(claim, ds, None) for ds in datasets}
        for ds in datasets:
            row = _row(claim, [(ds, found[ds])], boot, min_images)
            rows.append(finish(row, claim, ds, [(ds, found[ds])], lasts.get(ds, 0)))
        if pooled and datasets:
            last = min(lasts.values()) if len(lasts) == len(datasets) else 0
            same = last and all(v == last for v in lasts.values())
            at = [(ds, found[ds] if same or not last else measure(claim, ds, last))
                  for ds in datasets]  # fmt: skip
            rows.append(finish(_row(claim, at, boot, min_images), claim, POOLED, at, last))
    return pd.DataFrame(rows, columns=list(FINDINGS_COLUMNS))


def describe(found: pd.DataFrame, measured: bool = True) -> str:
    """``findings``' rows as text: per claim its figure and statement, then per dataset (pooled
    last) the verdict, the margin with its interval and the images; ``measured`` adds the
    numbers behind each margin. Claims are separated by a blank line."""
    blocks = []
    for claim, rows in found.groupby("claim", sort=False):
        lines = [f"Claim {claim} ({rows['figure'].iloc[0]}). {rows['statement'].iloc[0]}"]
        for r in rows.itertuples():
            lines.append(f"  {r.dataset}: {r.verdict.upper()}. {r.quantity}: {r.margin:+.3f} "
                         f"[{r.low:+.3f}, {r.high:+.3f}], {r.images} images"
                         + (f". Measured: {r.measured}" if measured else ""))  # fmt: skip
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def side_by_side(found: pd.DataFrame) -> pd.DataFrame:
    """``findings``' rows as one row per claim and, per dataset (pooled last), the verdict, the
    margin with its interval and the interval's width (high - low), so that a reader sees what
    a larger dataset, or pooling, settled."""
    f = found.assign(width=(found["high"] - found["low"]).round(3))
    f["interval"] = [f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(m) else "not measured"
                     for m, lo, hi in zip(f["margin"], f["low"], f["high"], strict=True)]  # fmt: skip
    order = list(dict.fromkeys(f["dataset"]))
    out = f.pivot(index="claim", columns="dataset", values=["verdict", "interval", "width"])
    out = out.swaplevel(axis=1)
    cols = [(ds, v) for ds in order for v in ("verdict", "interval", "width")]
    return out[cols]


# ----------------------------------------------------------------------------------------------
# the paper's models and ours

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
