"""One function per figure of the paper and of the notebooks; each returns a matplotlib Figure.

Figures built from a sweep table (``iislib.experiment.sweep.evaluate``):

=========================== ====================================================================
``fig4``                    six metrics vs clicks, each model under its own paper's robot
``fig6a``                   IoU vs clicks, every model under both deterministic robots (swap)
``fig6b``                   IoU vs clicks under the five random robots, bootstrap bands
``fig7``                    every metric (Boundary IoU included) x every robot x every model
``fig_iou_distribution``    per-image IoU at click k, one box per model x robot
``fig_metric_quirks``       our pixel accuracy beside the reference code's "accuracy" (= recall)
``fig_ci``                  mean IoU at click k with bootstrap intervals over images
``fig_win_rates``           per robot, how often model A beats model B (None: < 2 models)
``fig_sign_flips``          robot x robot, images whose A - B sign flips (None: < 2 models)
``fig_model_rank_tau``      robot x robot Kendall tau of model rankings (None: < 2 models)
``fig_image_rank_tau``      robot x robot Kendall tau of per-image scores, per model
``fig_seed_variance``       one curve per seed for each random robot
``fig_family_procedure``    the 2x2 family x training-procedure experiment (None: not registered)
``fig_envelope``            per model, the band from rworst to rbest with the seven robots inside
=========================== ====================================================================

Figures built from an ``Episode`` (one image, a few trajectories with their probability maps):
``fig_robot_maps`` (what each robot would do next), ``fig_robot_divergence`` (rgto99 vs rritm),
``fig_qualitative`` (rows of input, prediction and error map), and the paper's qualitative
figures, each with its own robot and click count (``QUALITATIVE``): ``fig5`` (4 clicks of
rgto99), ``fig8`` (20 clicks of r01, the same places for every model) and ``fig9`` (2 clicks of
r01). ``qualitative_image`` picks the image of Figures 8 and 9 from a sweep: where the two
paper models differ most in that setting. ``fig_robot_cost``: milliseconds per robot call.

Every figure carries its caption (dataset, images, settings, models, robots) as a small title.
Functions that need two models, or models that are not registered, return None and print why.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from iislib.core.clicks import Click
from iislib.core.loop import Trajectory, make_rng
from iislib.core.metrics import METRIC_NAMES, SCORE_NAMES
from iislib.core.robots import RANDOM_ROBOTS, ROBOT_NAMES, ROBOTS, Robot, get_robot
from iislib.drawing import plots
from iislib.experiment import envelope, findings, stats
from iislib.experiment.sweep import summary

Key = tuple[str, str]
"""(model label, robot name)."""

DETERMINISTIC_ROBOTS: tuple[str, ...] = tuple(r for r in ROBOT_NAMES if not ROBOTS[r].random)
"""The paper's deterministic robots (rgto99, rritm)."""
PAPER_RANDOM_ROBOTS: tuple[str, ...] = tuple(r for r in ROBOT_NAMES if ROBOTS[r].random)
"""The paper's random robots (r01..r05)."""


NOTEBOOK_FIGURES: dict[str, tuple[str, ...]] = {
    "01_robots": ("robots_maps_first_click", "robots_maps", "robots_divergence", "robots_cost"),
    "02_qualitative": ("fig5", "fig8", "fig9"),
    "03_quantitative": ("fig4", "fig6a", "iou_distribution", "metric_quirks"),
    "04_robustness": ("fig6b", "fig7", "robustness_ci", "robustness_image_rank_tau",
                      "robustness_seed_variance", "envelope"),
    "06_you_click": ("you_click", "you_click_verdict"),
}  # fmt: skip
"""Figure files (stem; .png and .pdf) each notebook always writes. With two or more models 04
also writes robustness_win_rates, robustness_sign_flips and robustness_model_rank_tau, and with
the four 2x2 models registered, family_procedure."""

P = ParamSpec("P")
R = TypeVar("R")

WINS, TIES, LOSSES = "#006BA4", "#ABABAB", "#C85200"


# ----------------------------------------------------------------------------------------------
# model families and captions


def own_robots(model: str) -> list[str]:
    """The robot(s) of a model's own paper: rritm for ritm*, rgto99 for gto99*, else both."""
    if model.startswith("ritm"):
        return ["rritm"]
    if model.startswith("gto99"):
        return ["rgto99"]
    return list(DETERMINISTIC_ROBOTS)


def own_pairs(models: Sequence[str]) -> list[Key]:
    """(model, robot) for every model under its own robot(s)."""
    return [(m, r) for m in models for r in own_robots(m)]


def model_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair of distinct models, in the given order."""
    models = list(dict.fromkeys(models))
    return [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]


def _wrap(text: str, width: int = 150) -> str:
    return "\n".join(textwrap.wrap(text, width))


def finish(fig: Figure, caption: str) -> Figure:
    """Put ``caption`` on top of ``fig`` in small type (wrapped, so it never leaves the page)."""
    width = int(fig.get_figwidth() * 22)
    fig.suptitle(_wrap(caption, width), fontsize=5.5, color="0.25")
    return fig


def _integer_clicks(fig: Figure, nbins: int | str = "auto") -> Figure:
    """Whole numbers on every x axis labelled with clicks (no 'click 2.5')."""

    for ax in fig.axes:
        if "click" in ax.get_xlabel():
            ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True))
    return fig


def _caption(table: pd.DataFrame, extra: str = "") -> str:
    return plots.caption(table, extra)


def _subset(table: pd.DataFrame, pairs: Sequence[Key]) -> pd.DataFrame:
    keys = pd.MultiIndex.from_frame(table[["model", "robot"]])
    return table[keys.isin(list(pairs))]


def _models(table: pd.DataFrame) -> list[str]:
    return list(table["model"].unique())


def styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Build the whole figure inside the paper style (titles and labels set after the axes
    exist read the rcParams at that moment)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with plots.paper_style():
            return fn(*args, **kwargs)

    return wrapper


def _skip(reason: str) -> None:
    print(f"skipped: {reason}")


# ----------------------------------------------------------------------------------------------
# episodes: one image, a few trajectories with their probability maps


@dataclass
class Episode:
    """One prepared image and the trajectories of some (model, robot) pairs on it.

    Attributes:
        name: image name (file stem).
        dataset, settings: names, for captions.
        image: the image as the model saw it: uint8 (H, W, 3) or float32 in [0, 1].
        gt: bool (H, W). ignore: bool (H, W) or None.
        threshold: the binarisation threshold of the settings.
        trajs: (model, robot) -> Trajectory with ``probs`` (K, H, W).
    """

    name: str
    dataset: str
    settings: str
    image: np.ndarray
    gt: np.ndarray
    ignore: np.ndarray | None
    threshold: float
    trajs: dict[Key, Trajectory] = field(default_factory=dict)

    @property
    def max_clicks(self) -> int:
        return max(t.max_clicks for t in self.trajs.values())

    def prob(self, key: Key, k: int) -> np.ndarray:
        """float32 (H, W) probability after ``k`` clicks (zeros for k = 0)."""
        t = self.trajs[key]
        if k == 0:
            return np.zeros(self.gt.shape, np.float32)
        if t.probs is None:
            raise ValueError(f"trajectory {key} was run without keep_probs=True")
        return t.probs[min(k, t.max_clicks) - 1]

    def pred(self, key: Key, k: int) -> np.ndarray:
        """bool (H, W) prediction after ``k`` clicks."""
        return self.prob(key, k) > self.threshold

    def clicks(self, key: Key, k: int) -> list[Click]:
        """The first ``k`` clicks of a trajectory."""
        return list(self.trajs[key].clicks[:k])

    def caption(self, extra: str = "", keys: Sequence[Key] | None = None) -> str:
        """The caption of a figure that shows ``keys`` (default: every trajectory)."""
        keys = list(keys) if keys is not None else list(self.trajs)
        t = pd.DataFrame({"dataset": self.dataset, "image": self.name, "settings": self.settings,
                          "model": [m for m, _ in keys], "robot": [r for _, r in keys],
                          "seed": 0})  # fmt: skip
        return plots.caption(t, f"image {self.name}" + (f"; {extra}" if extra else ""))


# ----------------------------------------------------------------------------------------------
# what a robot looks at (each robot's ``sampling_map``)


def _show_image(ax: Axes, image: np.ndarray, gt: np.ndarray | None = None) -> None:
    img = np.asarray(image, dtype=np.float32)
    ax.imshow(img / 255.0 if img.max() > 1.0 else img, interpolation="nearest")
    if gt is not None:
        ax.contour(gt, levels=[0.5], colors="yellow", linewidths=0.7)
    ax.set_axis_off()


def _false_rgb(image: np.ndarray, pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    img = (img / 255.0 if img.max() > 1.0 else img) * 0.45
    img[gt & ~pred] = [0.9, 0.1, 0.1]  # FN red
    img[pred & ~gt] = [0.1, 0.4, 1.0]  # FP blue
    return img


@styled
def fig_robot_maps(
    ep: Episode, k: int, key: Key | None = None, robots: Sequence[str | Robot] = ROBOT_NAMES,
    samples: int = 30, seed: int = 0,
) -> Figure:  # fmt: skip
    """What every robot (a name or a ``Robot``) would do after ``k`` clicks of trajectory ``key``.

    First panel: the image, the ground-truth contour (yellow), the false region (FN red, FP
    blue) and the clicks so far. Then each robot's ``sampling_map``: for a random robot, the
    probability map it samples from, with ``samples`` clicks actually drawn by the robot (white
    dots), titled with its label; for a deterministic robot, the score it maximises and the
    click it places (star).
    """
    robots = [get_robot(r) if isinstance(r, str) else r for r in robots]
    key = key or next(iter(ep.trajs))
    pred, clicks = ep.pred(key, k), ep.clicks(key, k)
    n = 1 + len(robots)
    ncols = 4
    nrows = int(np.ceil(n / ncols))
    fig, axes = plots.new_figure(nrows, ncols, size=(6.9, 1.95 * nrows + 0.45))
    ax = axes.flat[0]
    ax.imshow(_false_rgb(ep.image, pred, ep.gt), interpolation="nearest")
    ax.contour(ep.gt, levels=[0.5], colors="yellow", linewidths=0.7)
    plots.draw_clicks(ax, clicks)
    ax.set_title(f"false region after {k} click{'s' if k != 1 else ''}\nFN red, FP blue")
    ax.set_axis_off()
    rng = make_rng(seed, ep.name, "maps")
    for ax, robot in zip(axes.flat[1:], robots, strict=False):
        ax.set_axis_off()
        weights = robot.sampling_map(pred, ep.gt, clicks, ep.ignore)
        if robot.random:
            ax.imshow(weights, cmap="magma", interpolation="nearest", vmin=0,
                      vmax=max(weights.max(), 1e-12))  # fmt: skip
            draws = [robot(pred, ep.gt, clicks, rng, ignore=ep.ignore) for _ in range(samples)]
            draws = [c for c in draws if c is not None]
            if draws:
                ax.scatter([c.col for c in draws], [c.row for c in draws], s=3, c="white",
                           linewidths=0)  # fmt: skip
            ax.set_title(f"{robot.name}\n{robot.label}")
        else:
            ax.imshow(weights, cmap="viridis", interpolation="nearest")
            click = robot(pred, ep.gt, clicks, make_rng(0), ignore=ep.ignore)
            if click is not None:
                ax.scatter([click.col], [click.row], marker="*", s=90,
                           c=plots.POSITIVE if click.positive else plots.NEGATIVE,
                           edgecolors="white", linewidths=0.6, zorder=3)  # fmt: skip
                kind = "positive" if click.positive else "negative"
                ax.set_title(
                    f"{robot.name}: maximum → {kind}\nclick at (row {click.row}, col {click.col})"
                )
            else:
                ax.set_title(f"{robot.name}\nEND (no error left)")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return finish(fig, ep.caption(f"prediction of {key[0]} after {k} clicks of {key[1]}"))


@styled
def fig_robot_divergence(ep: Episode, k: int, keys: Sequence[Key] | None = None) -> Figure:
    """The same model driven by different robots: clicks and prediction at ``k``, IoU curves.

    The IoU panel marks ``k`` and the first click where the first two trajectories differ.
    """
    keys = list(keys) if keys is not None else list(ep.trajs)
    fig, axes = plots.new_figure(1, len(keys) + 1, size=(6.9, 2.6))
    for ax, key in zip(axes[0], keys, strict=False):
        plots.show_overlay(ax, ep.image, ep.prob(key, k), ep.clicks(key, k), ep.threshold)
        iou = ep.trajs[key].iou[k - 1] if k >= 1 else 0.0
        ax.set_title(f"{key[0]} / {key[1]}\nclick {k}, IoU {iou:.2f}")
    ax = axes[0, -1]
    colors = plots.robot_colors([r for _, r in keys])
    for i, key in enumerate(keys):
        t = ep.trajs[key]
        x = np.arange(1, t.max_clicks + 1)
        ax.plot(x, t.iou, plots.LINESTYLES[i % 4], color=colors[key[1]], label=f"{key[1]}")
    ax.axvline(k, color="0.5", lw=0.8)
    first = stats.first_divergence(ep.trajs[keys[0]].clicks, ep.trajs[keys[1]].clicks) if len(
        keys) > 1 else None  # fmt: skip
    if first is not None:
        ax.axvline(first, color="0.2", lw=0.8, ls=":")
        ax.text(
            0.03,
            0.97,
            f"first different click: {first}",
            transform=ax.transAxes,
            fontsize=6,
            va="top",
        )
    ax.set_xlabel("number of clicks")
    ax.set_ylabel("IoU")
    ax.set_ylim(0, 1)
    plots.click_axis(ax, ep.max_clicks)
    ax.legend(frameon=False, loc="lower right")
    _integer_clicks(fig)
    return finish(fig, ep.caption())


@styled
def fig_robot_cost(cost: pd.DataFrame, caption: str = "") -> Figure:
    """Milliseconds per robot call (``stats.robot_cost``): median bar, 90th percentile tick."""
    fig, axes = plots.new_figure(size=(4.0, 2.4))
    ax = axes[0, 0]
    y = np.arange(len(cost))
    colors = plots.robot_colors(list(cost["robot"]))
    ax.barh(y, cost["ms_median"], color=[colors[r] for r in cost["robot"]])
    ax.plot(cost["ms_p90"], y, "|", color="k", ms=8, label="90th percentile")
    ax.set_yticks(y, cost["robot"])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per click (median; log scale)")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(0, -0.25), fontsize=6)
    return finish(fig, caption)


# ----------------------------------------------------------------------------------------------
# qualitative panels (the paper's Figures 5, 8 and 9)


QUALITATIVE: dict[str, tuple[str, int]] = {"fig5": ("rgto99", 4), "fig8": ("r01", 20),
                                           "fig9": ("r01", 2)}  # fmt: skip
"""The paper's qualitative figures: name -> (robot, clicks shown). Figure 5: 4 clicks of the gto99
procedure; Figure 8: 20 random clicks, the same for both models; Figure 9: 2 random clicks."""

QUALITATIVE_NOTES: dict[str, str] = {
    "fig5": "each model after 4 clicks of rgto99 (gto99's click procedure)",
    "fig8": ("20 clicks of r01 (uniform over the image), at the same places for every model: "
             "r01 ignores the prediction and its generator depends on the seed, image and robot "
             "only. In the paper one model does terribly and the other terrifically"),
    "fig9": ("2 clicks of r01 (uniform over the image). In the paper one model keeps the "
             "symmetry around the positive click and the other does not"),
}  # fmt: skip


def qualitative_pairs(models: Sequence[str], figure: str) -> list[Key]:
    """(model, robot) for every model under the robot of ``figure`` (``QUALITATIVE``)."""
    if figure not in QUALITATIVE:
        raise ValueError(f"unknown qualitative figure {figure!r}; known: {sorted(QUALITATIVE)}")
    return [(m, QUALITATIVE[figure][0]) for m in dict.fromkeys(models)]


def contrast_pair(models: Sequence[str]) -> tuple[str, str] | None:
    """The two models a qualitative figure contrasts: the paper's pair (the official one,
    ritm-sbd-h18 and gto99-synthft, else the compact one, ritm-compact and gto99-compact) when
    both are there, else the first two models, None with fewer."""
    models = list(dict.fromkeys(models))
    pair = findings.paper_models_of(models)
    paper = (pair["ritm"], pair["gto99"])
    if all(m in models for m in paper):
        return paper
    return (models[0], models[1]) if len(models) >= 2 else None


def qualitative_image(table: pd.DataFrame, figure: str) -> str:
    """The image of the paper's Figure 8 or 9 (or 5): where the two contrasted models
    (``contrast_pair``) differ most in IoU under the figure's robot at its click count.

    ``table`` is a sweep with that robot (its clicks are clipped to the table's last click).
    Figure 9 prefers images with a positive click among the first two (the paper's case); when
    there is none it says so and takes any image. With fewer than two models the first image of
    the table is returned, with a printed reason.
    """
    if figure not in QUALITATIVE:
        raise ValueError(f"unknown qualitative figure {figure!r}; known: {sorted(QUALITATIVE)}")
    robot, k = QUALITATIVE[figure]
    t = table[table["robot"] == robot]
    if t.empty:
        raise ValueError(f"{figure} needs a sweep with {robot}; the table has "
                         f"{sorted(table['robot'].unique())}")  # fmt: skip
    k = min(k, int(t["click"].max()))
    pair = contrast_pair(_models(t))
    if pair is None:
        first = str(t["image"].iloc[0])
        print(f"{figure}: one model only ({_models(t)}), nothing to contrast: image {first}")
        return first
    if figure == "fig9":
        try:
            return stats.contrast_image(t, *pair, robot, k, positive=True)
        except ValueError as e:
            print(f"{figure}: {e}; taking the largest difference without one")
    return stats.contrast_image(t, *pair, robot, k)


def _keys_under(ep: Episode, robot: str, keys: Sequence[Key] | None, figure: str) -> list[Key]:
    if keys is not None:
        return list(keys)
    keys = [key for key in ep.trajs if key[1] == robot]
    if not keys:
        raise ValueError(f"{figure} shows {robot}, but the episode has only {list(ep.trajs)}; "
                         f"run it with pairs=figures.qualitative_pairs(models, {figure!r})")  # fmt: skip
    return keys


def _same_clicks_note(ep: Episode, keys: Sequence[Key], k: int) -> str:
    """Whether the first ``k`` clicks of every trajectory are the same (r01's promise)."""
    first = [stats.first_divergence(ep.clicks(keys[0], k), ep.clicks(key, k)) for key in keys[1:]]
    first = [f for f in first if f is not None]
    if not first:
        return f"the {k} clicks are the same in every row"
    return (f"the clicks differ from click {min(first)} on (a model with no error left ends "
            "the sequence)")  # fmt: skip


@styled
def fig_qualitative(
    ep: Episode, k: int, keys: Sequence[Key] | None = None, extra: str = ""
) -> Figure:  # fmt: skip
    """One row per (model, robot): input, thresholded prediction with clicks, TP/TN/FP/FN map.

    Clicks: green positive, red negative, larger = more recent. Confusion map: TP white,
    TN black, FP blue, FN red, soft predictions in between (the probability, not its threshold).
    ``extra`` is added to the caption.
    """
    keys = list(keys) if keys is not None else list(ep.trajs)
    k = int(np.clip(k, 1, ep.max_clicks))
    fig, axes = plots.new_figure(len(keys), 3, size=(5.4, 1.85 * len(keys) + 0.5))
    for row, key in zip(axes, keys, strict=True):
        prob, clicks = ep.prob(key, k), ep.clicks(key, k)
        _show_image(row[0], ep.image, ep.gt)
        row[0].set_title(f"{key[0]} / {key[1]}\ninput, object outlined")
        plots.show_overlay(row[1], ep.image, prob, clicks, ep.threshold)
        n_pos = sum(c.positive for c in clicks)
        row[1].set_title(f"prediction after {_plural(len(clicks), 'click')} ({n_pos}+, "
                         f"{len(clicks) - n_pos}−)\nIoU {ep.trajs[key].iou[k - 1]:.2f}")  # fmt: skip
        plots.show_confusion(row[2], prob, ep.gt, clicks, ep.ignore)
        row[2].set_title("TP white, TN black\nFP blue, FN red")
    return finish(fig, ep.caption(extra, keys))


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _paper_qualitative(figure: str, ep: Episode, k: int | None, keys: Sequence[Key] | None
                       ) -> Figure:  # fmt: skip
    robot, default_k = QUALITATIVE[figure]
    keys = _keys_under(ep, robot, keys, figure)
    k = int(np.clip(default_k if k is None else k, 1, ep.max_clicks))
    note = QUALITATIVE_NOTES[figure]
    if robot == "r01" and len(keys) > 1:
        note += f"; {_same_clicks_note(ep, keys, k)}"
    if k != default_k:
        note += f" (shown after {_plural(k, 'click')}: this run has only {ep.max_clicks})"
    return fig_qualitative(ep, k, keys, extra=note)


def fig5(ep: Episode, k: int | None = None, keys: Sequence[Key] | None = None) -> Figure:
    """The paper's Figure 5: every model after ``k`` (default 4) clicks of rgto99.

    ``ep`` needs trajectories under rgto99 (``qualitative_pairs(models, "fig5")``).
    """
    return _paper_qualitative("fig5", ep, k, keys)


def fig8(ep: Episode, k: int | None = None, keys: Sequence[Key] | None = None) -> Figure:
    """The paper's Figure 8: every model after ``k`` (default 20) clicks of r01, at the same
    places for every model (the caption says whether they are)."""
    return _paper_qualitative("fig8", ep, k, keys)


def fig9(ep: Episode, k: int | None = None, keys: Sequence[Key] | None = None) -> Figure:
    """The paper's Figure 9: every model after ``k`` (default 2) clicks of r01."""
    return _paper_qualitative("fig9", ep, k, keys)


# ----------------------------------------------------------------------------------------------
# curves over clicks


@styled
def fig4(
    table: pd.DataFrame, metrics: Sequence[str] = METRIC_NAMES, few_clicks: int = findings.FEW_CLICKS
) -> Figure:  # fmt: skip
    """Six metrics vs clicks, each model under its own paper's robot (ritm* under rritm, gto99*
    under rgto99, any other model under both). A grey band marks clicks 1..``few_clicks``,
    the "few clicks" of the paper's claim that the winner depends on the metric."""
    sub = _subset(table, own_pairs(_models(table)))
    if sub.empty:
        raise ValueError("the table has no (model, own robot) pair: include rgto99 and/or rritm")
    fig = _integer_clicks(plots.fig_metric_grid(sub, metrics))
    few = min(few_clicks, int(sub["click"].max()))
    for ax in fig.axes:
        if ax.get_visible() and ax.get_lines():
            ax.axvspan(1, few, color="0.9", lw=0, zorder=0)
    return finish(fig, _caption(sub, (
        "Each model under its own paper's robot. Grey band: clicks 1-"
        f"{few}, the few clicks over which the paper finds gto99 ahead on precision and Dice and "
        "ritm ahead on accuracy and recall (the paper's 'accuracy' is recall; ours is pixel "
        "accuracy)")))  # fmt: skip


@styled
def fig6a(table: pd.DataFrame, metric: str = "iou") -> Figure:
    """``metric`` vs clicks for every model under both deterministic robots (rgto99, rritm)."""
    sub = table[table["robot"].isin(DETERMINISTIC_ROBOTS)]
    if sub.empty:
        raise ValueError("the table has neither rgto99 nor rritm")
    fig = _integer_clicks(plots.fig_metric_curves(sub, metric))
    return finish(fig, _caption(sub, (
        "Every model under both deterministic robots; colour: robot, line style: model. The "
        "paper finds gto99's curve above ritm's under both robots, even under rritm, the robot "
        "of ritm's own training procedure")))  # fmt: skip


def _band_curves(ax: Axes, table: pd.DataFrame, metric: str, n_boot: int, level: float) -> None:
    colors = plots.robot_colors(list(table["robot"].unique()))
    for mi, model in enumerate(_models(table)):
        for robot in table["robot"].unique():
            t = table[(table["model"] == model) & (table["robot"] == robot)]
            if t.empty:
                continue
            a = t.groupby(["image", "click"])[metric].mean().unstack("click")
            mean, lo, hi = stats.bootstrap_curves(a.to_numpy(), n_boot, level)
            x = a.columns.to_numpy()
            ax.fill_between(x, lo, hi, color=colors[robot], alpha=0.15, lw=0)
            ax.plot(x, mean, plots.LINESTYLES[mi % 4], color=colors[robot], alpha=0.9,
                    label=f"{model} / {robot}")  # fmt: skip
    ax.set_xlabel("number of clicks")
    ax.set_ylabel(f"mean {plots.METRIC_LABELS.get(metric, metric)}")
    plots.click_axis(ax, table["click"].max())


@styled
def fig6b(
    table: pd.DataFrame, metric: str = "iou", n_boot: int = 1000, level: float = 0.95
) -> Figure:
    """``metric`` vs clicks under the paper's five random robots, with bootstrap bands: one
    panel per model (shared y), so the width of a model's fan of curves is its dependence on
    the robot; each title gives that spread (max - min over the robots of the mean over
    clicks, ``stats.robot_spread``) and the mean."""
    sub = table[table["robot"].isin(PAPER_RANDOM_ROBOTS)]
    if sub.empty:
        raise ValueError("the table has none of the random robots r01..r05")
    models = _models(sub)
    robots = list(sub["robot"].unique())
    fig, axes = plots.new_figure(1, len(models), size=(min(6.9, 2.4 * len(models) + 0.6), 3.0),
                                 sharey=True)  # fmt: skip
    spread = stats.robot_spread(sub, metric).set_index("model")
    for ax, model in zip(axes[0], models, strict=True):
        _band_curves(ax, sub[sub["model"] == model], metric, n_boot, level)
        ax.set_title(f"{model}\nspread {spread.loc[model, 'spread']:.2f}, "
                     f"mean {spread.loc[model, 'mean']:.2f}")  # fmt: skip
        if ax is not axes[0, 0]:
            ax.set_ylabel("")

    plots.robot_legend(fig, robots)
    _integer_clicks(fig, nbins=5)
    return finish(fig, _caption(sub, (
        f"Bands: {level:.0%} bootstrap interval over images. Titles: the spread (max - min) and "
        f"the mean over these {len(robots)} robots of the mean "
        f"{plots.METRIC_LABELS.get(metric, metric)} over clicks. The paper finds ritm's fan "
        "narrower (more robust to the clicking procedure)")))  # fmt: skip


@styled
def fig_envelope(table: pd.DataFrame, metric: str = "iou") -> Figure | None:
    """The oracle envelope: one panel per model (shared y), the band from the mean under rworst
    to the mean under rbest (the worst and the best honest user, greedy one step ahead), with
    the seven robots' mean curves inside it, all over the images where the model has both
    envelope robots (``experiment.envelope.envelope_curves``). Titles give the band's width at
    click 5 (or the last click). None, saying why, when no model has the envelope."""
    curves = envelope.envelope_curves(table, metric)
    if curves.empty:
        _skip("no model has both rbest and rworst in the table")
        return None
    models = list(dict.fromkeys(curves["model"]))
    others = [r for r in dict.fromkeys(curves["robot"]) if r not in envelope.ENVELOPE_NAMES]
    colors = plots.robot_colors(others)
    k = min(envelope.FINDING_CLICK, int(curves["click"].max()))
    fig, axes = plots.new_figure(1, len(models), size=(min(6.9, 2.4 * len(models) + 0.6), 3.0),
                                 sharey=True)  # fmt: skip
    for ax, model in zip(axes[0], models, strict=True):
        c = curves[curves["model"] == model].pivot(index="click", columns="robot", values="mean")
        x = c.index.to_numpy()
        lo, hi = c[envelope.WORST].to_numpy(), c[envelope.BEST].to_numpy()
        ax.fill_between(x, lo, hi, color="0.85", lw=0, label="rworst .. rbest")
        ax.plot(x, hi, color="0.2", lw=1.2, label=envelope.BEST)
        ax.plot(x, lo, color="0.2", lw=1.2, ls="--", label=envelope.WORST)
        for robot in others:
            ax.plot(x, c[robot].to_numpy(), color=colors[robot], lw=0.9, alpha=0.9, label=robot)
        n = int(curves.loc[curves["model"] == model, "images"].iloc[0])
        ax.set_title(f"{model}\nwidth@{k} {hi[x == k][0] - lo[x == k][0]:.2f}, "
                     f"{_plural(n, 'image')}")  # fmt: skip
        ax.set_xlabel("number of clicks")
        plots.click_axis(ax, x.max())
        if ax is axes[0, 0]:
            ax.set_ylabel(f"mean {plots.METRIC_LABELS.get(metric, metric)}")
    handles = [
        Line2D([], [], color="0.2", lw=1.2, label=envelope.BEST),
        Line2D([], [], color="0.2", lw=1.2, ls="--", label=envelope.WORST),
    ]
    handles += [Line2D([], [], color=colors[r], label=r) for r in others]
    fig.legend(handles=handles, loc="outside lower center", frameon=False, ncols=len(handles))
    _integer_clicks(fig, nbins=5)
    sub = table[table["model"].isin(models)]
    return finish(fig, _caption(sub, (
        "Grey band: from the mean under rworst to the mean under rbest, the worst and the best "
        "honest user among the seven robots' clicks and 16 r04 draws per step, chosen by the "
        "model's own IoU one click ahead (greedy: exact at click 1, an approximation after). "
        "Every curve is a mean over the images where the model has the envelope")))  # fmt: skip


@styled
def fig7(table: pd.DataFrame, metrics: Sequence[str] | None = None) -> Figure:
    """Every metric x every robot x every model: one row per metric, one column per model (shared
    y along a row), colour per robot. Each panel gives that model's spread over the robots
    (``stats.robot_spread``: max - min of the mean over clicks), so the width of each model's fan
    of curves, the paper's robustness, is read per metric, not guessed from 7 x models
    overlapping curves. ``metrics`` defaults to every ``SCORE_NAMES`` column of the table: the
    paper's six, then Boundary IoU (a table written before that column has the six rows)."""
    if metrics is None:
        metrics = [m for m in SCORE_NAMES if m in table.columns]
    models = _models(table)
    robots = list(table["robot"].unique())
    fig, axes = plots.new_figure(len(metrics), len(models), sharex=True, sharey="row",
                                 size=(min(6.9, 2.2 * len(models) + 0.8), 1.55 * len(metrics) + 0.9))  # fmt: skip
    for row, metric in zip(axes, metrics, strict=True):
        spread = stats.robot_spread(table, metric).set_index("model")["spread"]
        for ax, model in zip(row, models, strict=True):
            plots.plot_metric_curves(ax, table, metric, models=[model], robots=robots,
                                     legend=False)  # fmt: skip
            ax.text(0.97, 0.05, f"spread {spread[model]:.2f}", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize="small")  # fmt: skip
            if ax is not row[0]:
                ax.set_ylabel("")
            if row is not axes[-1]:
                ax.set_xlabel("")
    for ax, model in zip(axes[0], models, strict=True):
        ax.set_title(model)
    plots.robot_legend(fig, robots)
    return finish(_integer_clicks(fig, nbins=5), _caption(table, (
        "One column per model, colour per robot. 'spread': max - min over the robots of the "
        "mean over clicks, the width of the model's fan, i.e. its dependence on the clicking "
        "procedure; the paper finds ritm's fan narrower")))  # fmt: skip


@styled
def fig_metric_quirks(table: pd.DataFrame) -> Figure:
    """Our accuracy ((TP+TN)/N) beside the reference code's "accuracy", which is recall.

    Both for each model under its own robot(s). The reference's Dice equals its F-score, as
    ours does for binary masks, so only accuracy changes.
    """
    sub = _subset(table, own_pairs(_models(table)))
    if sub.empty:
        sub = table
    fig, axes = plots.new_figure(size=(4.5, 3.0))
    ax = axes[0, 0]
    colors = plots.robot_colors(list(sub["robot"].unique()))
    acc = plots.mean_curves(sub, "accuracy")
    rec = plots.mean_curves(sub, "recall")
    for (model, robot), y in acc.iterrows():
        ax.plot(y.index, y.to_numpy(), "-", color=colors[robot],
                label=f"{model} / {robot}: ours, (TP+TN)/N")  # fmt: skip
        r = rec.loc[(model, robot)]
        ax.plot(r.index, r.to_numpy(), "--", color=colors[robot],
                label=f"{model} / {robot}: reference, TP/(TP+FN)")  # fmt: skip
    ax.set_xlabel("number of clicks")
    ax.set_ylabel('mean "accuracy"')
    plots.click_axis(ax, sub["click"].max())
    ax.set_ylim(0, 1.02)
    ax.legend(frameon=False, loc="lower right", fontsize=6)
    _integer_clicks(fig)
    return finish(fig, _caption(sub, "solid: our accuracy; dashed: the paper code's accuracy"))


@styled
def fig_iou_distribution(table: pd.DataFrame, k: int, metric: str = "iou") -> Figure:
    """Per-image ``metric`` at click ``k``: one box per model x robot (the mean hides this)."""
    s = stats.per_image(table, metric, k)
    models, robots = _models(table), list(table["robot"].unique())
    colors = plots.robot_colors(robots)
    fig, axes = plots.new_figure(size=(6.9, 2.6))
    ax = axes[0, 0]
    width = 0.8 / len(models)
    for mi, model in enumerate(models):
        for ri, robot in enumerate(robots):
            if (model, robot) not in s.index.droplevel("image"):
                continue
            v = s.loc[(model, robot)].to_numpy()
            x = ri + (mi - (len(models) - 1) / 2) * width
            bp = ax.boxplot([v], positions=[x], widths=width * 0.8, patch_artist=True,
                            showfliers=True, flierprops={"markersize": 2},
                            medianprops={"color": "black"})  # fmt: skip
            for patch in bp["boxes"]:
                patch.set(facecolor=colors[robot], alpha=0.5 if mi else 0.8,
                          hatch="//" if mi % 2 else None)  # fmt: skip
            ax.plot([x], [v.mean()], "k^", ms=3)
    ax.set_xticks(range(len(robots)), robots)
    ax.set_xlim(-0.6, len(robots) - 0.4)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(f"{plots.METRIC_LABELS.get(metric, metric)} at click {k}")
    if len(models) > 1:
        ax.set_title("boxes left to right: " + ", ".join(models) + " (hatched: 2nd, 4th, ...)")
    return finish(fig, _caption(table, f"one value per image at click {k}; triangle = mean"))


# ----------------------------------------------------------------------------------------------
# robustness: uncertainty, pairwise comparisons, rank agreement


@styled
def fig_ci(
    table: pd.DataFrame, k: int | None, metric: str = "iou", n_boot: int = 2000,
    level: float = 0.95,
) -> Figure:  # fmt: skip
    """Mean ``metric`` at click ``k`` (None: mean over clicks) per robot, bootstrap intervals."""
    ci = stats.bootstrap_table(table, metric, k, n_boot, level)
    models, robots = _models(table), list(table["robot"].unique())
    fig, axes = plots.new_figure(size=(4.8, 2.6))
    ax = axes[0, 0]
    markers = "osD^v"
    for mi, model in enumerate(models):
        c = ci[ci["model"] == model].set_index("robot").reindex(robots)
        x = np.arange(len(robots)) + (mi - (len(models) - 1) / 2) * 0.15
        # clipped at 0: the interval ends are rounded (stats.DECIMALS) and the mean is not, so a
        # zero-width interval (one image) would give matplotlib a negative error of ~1e-13
        err = np.clip([c["mean"] - c["low"], c["high"] - c["mean"]], 0.0, None)
        ax.errorbar(x, c["mean"], yerr=err, fmt=markers[mi % 5], ms=4, capsize=2, label=model)
    ax.set_xticks(range(len(robots)), robots)
    what = f"at click {k}" if k is not None else "mean over clicks"
    ax.set_ylabel(f"mean {plots.METRIC_LABELS.get(metric, metric)} {what}")
    ax.legend(frameon=False)
    return finish(fig, _caption(table, f"{level:.0%} bootstrap intervals over images"))


def _heatmap(ax: Axes, m: pd.DataFrame, vmin: float, vmax: float, cmap: str, title: str) -> None:
    a = m.to_numpy(dtype=np.float64)
    im = ax.imshow(a, vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_xticks(range(a.shape[1]), list(m.columns), rotation=45, ha="right")
    ax.set_yticks(range(a.shape[0]), list(m.index))
    ax.grid(False)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            v = a[i, j]
            if np.isnan(v):
                txt, color = "–", "black"
            else:
                r, g, b, _ = im.cmap(im.norm(v))
                # dark cells get white text (relative luminance of the cell colour)
                txt, color = (
                    f"{v:.2f}",
                    "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5 else "black",
                )
            ax.text(j, i, txt, ha="center", va="center", fontsize=5.5, color=color)
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, shrink=0.8)


def _grid(n: int, ncols: int = 2, size: float = 3.3) -> tuple[Figure, np.ndarray]:
    ncols = min(n, ncols)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plots.new_figure(nrows, ncols, size=(size * ncols, 2.9 * nrows + 0.3))
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def _what(metric: str, k: int | None) -> str:
    name = plots.METRIC_LABELS.get(metric, metric)
    return f"{name} at click {k}" if k is not None else f"{name}, mean over clicks"


@styled
def fig_win_rates(table: pd.DataFrame, k: int | None = None, metric: str = "iou") -> Figure | None:
    """For each pair of models, per robot: share of images A wins, ties, loses against B."""
    pairs = model_pairs(_models(table))
    if not pairs:
        _skip(f"win rates need two models; the table has only {_models(table)}")
        return None
    fig, axes = _grid(len(pairs))
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        w = stats.win_rates(table, a, b, metric, k)
        y = np.arange(len(w))
        ax.barh(y, w["wins"], color=WINS, label=f"{a} better")
        ax.barh(y, w["ties"], left=w["wins"], color=TIES, label="tie")
        ax.barh(y, w["losses"], left=w["wins"] + w["ties"], color=LOSSES, label=f"{b} better")
        ax.axvline(0.5, color="k", lw=0.6)
        ax.set_yticks(y, w["robot"])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"share of images ({_what(metric, k)})")
        ax.set_title(f"{a} vs {b}")
        ax.legend(frameon=False, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.22),
                  ncols=3)  # fmt: skip
    return finish(fig, _caption(table, "per-image win rates"))


@styled
def fig_sign_flips(table: pd.DataFrame, k: int | None = 5, metric: str = "iou") -> Figure | None:
    """For each pair of models: robot x robot share of images whose A - B sign flips."""
    pairs = model_pairs(_models(table))
    if not pairs:
        _skip(f"sign flips need two models; the table has only {_models(table)}")
        return None
    fig, axes = _grid(len(pairs))
    for ax, (a, b) in zip(axes.flat, pairs, strict=False):
        _heatmap(ax, stats.sign_flips(table, a, b, metric, k), 0, 1, "Reds",
                 f"sign flips of {a} − {b}\n({_what(metric, k)})")  # fmt: skip
    return finish(fig, _caption(table, "share of images where the better model changes"))


@styled
def fig_model_rank_tau(
    table: pd.DataFrame, k: int | None = None, metric: str = "iou"
) -> Figure | None:
    """Robot x robot Kendall tau of the model rankings: on the mean, and per image (averaged)."""
    if len(_models(table)) < 2:
        _skip(f"model rankings need two models; the table has only {_models(table)}")
        return None
    fig, axes = plots.new_figure(1, 2, size=(6.9, 3.1))
    _heatmap(axes[0, 0], stats.model_rank_tau(table, metric, k), -1, 1, "RdBu",
             f"tau of model rankings by mean\n({_what(metric, k)})")  # fmt: skip
    _heatmap(axes[0, 1], stats.per_image_rank_tau(table, metric, k), -1, 1, "RdBu",
             "mean over images of per-image tau")  # fmt: skip
    return finish(fig, _caption(table, "+1: same order of models, -1: reversed"))


@styled
def fig_image_rank_tau(table: pd.DataFrame, k: int | None = None, metric: str = "iou") -> Figure:
    """Per model: robot x robot Kendall tau of per-image scores (do robots agree on which
    images are hard?). Defined with a single model."""
    models = _models(table)
    fig, axes = _grid(len(models))
    for ax, model in zip(axes.flat, models, strict=False):
        _heatmap(ax, stats.image_rank_tau(table, model, metric, k), -1, 1, "RdBu",
                 f"{model}: tau of per-image scores\n({_what(metric, k)})")  # fmt: skip
    return finish(fig, _caption(table, "rank agreement of images between robots"))


@styled
def fig_seed_variance(table: pd.DataFrame, metric: str = "iou") -> Figure:
    """For each random robot: the mean curve of every seed (thin), to see the seed spread."""
    robots = [r for r in table["robot"].unique() if r in RANDOM_ROBOTS]
    if not robots:
        raise ValueError("the table has no random robot")
    fig, axes = plots.new_figure(1, len(robots), size=(6.9, 2.4), sharey=True)
    colors = plots.robot_colors(robots)
    for ax, robot in zip(axes[0], robots, strict=True):
        t = table[table["robot"] == robot]
        for mi, model in enumerate(_models(t)):
            curves = t[t["model"] == model].groupby(["seed", "click"])[metric].mean()
            for _seed, y in curves.groupby(level="seed"):
                ax.plot(y.index.get_level_values("click"), y.to_numpy(),
                        plots.LINESTYLES[mi % 4], color=colors[robot], lw=0.8, alpha=0.8)  # fmt: skip
        ax.set_title(robot)
        ax.set_xlabel("clicks")
        plots.click_axis(ax, t["click"].max())
    axes[0, 0].set_ylabel(f"mean {plots.METRIC_LABELS.get(metric, metric)}")
    models = _models(table)
    if len(models) > 1:
        handles = [Line2D([], [], ls=plots.LINESTYLES[i % 4], color="0.3", label=m)
                   for i, m in enumerate(models)]  # fmt: skip
        fig.legend(handles=handles, loc="outside lower center", ncols=len(models), frameon=False)
    _integer_clicks(fig, nbins=4)
    return finish(fig, _caption(table, "one line per seed (line style: model)"))


@styled
def fig_family_procedure(table: pd.DataFrame | None, metric: str = "iou") -> Figure | None:
    """The 2x2 experiment: mean ``metric`` over clicks per robot for the four compact models.

    Colour: architecture family; line style: training click procedure.
    """
    if table is None or not set(findings.FAMILY_PROCEDURE) <= set(table["model"].unique()):
        _skip("the 2x2 family x procedure experiment needs the models "
              + ", ".join(findings.FAMILY_PROCEDURE) + " (registered, with weights)")  # fmt: skip
        return None
    sub = table[table["model"].isin(list(findings.FAMILY_PROCEDURE))]
    s = stats.per_image(sub, metric, None).groupby(["model", "robot"]).mean()
    robots = list(sub["robot"].unique())
    fig, axes = plots.new_figure(size=(4.8, 3.0))
    ax = axes[0, 0]
    fam_color = {"ritm": "#006BA4", "gto99": "#C85200"}
    proc_style = {"ritm": "-", "gto99": "--"}
    for model, (family, proc) in findings.FAMILY_PROCEDURE.items():
        y = [s.get((model, r), np.nan) for r in robots]
        ax.plot(range(len(robots)), y, proc_style[proc], marker="o", ms=3,
                color=fam_color[family], label=f"{family} net, {proc} training clicks")  # fmt: skip
    ax.set_xticks(range(len(robots)), robots)
    ax.set_ylabel(f"mean {plots.METRIC_LABELS.get(metric, metric)} over clicks")
    ax.legend(frameon=False, fontsize=6)
    return finish(fig, _caption(sub, "colour: architecture; line style: training procedure"))


# ----------------------------------------------------------------------------------------------
# tables


PUBLISHED_NOC: tuple[tuple[str, str, str, float, float], ...] = (
    # (model family, weights, dataset, NoC@85, NoC@90); NaN: not published.
    ("ritm", "sbd_h18_itermask", "grabcut", 1.76, 2.04),
    ("ritm", "sbd_h18_itermask", "berkeley", np.nan, 3.22),
    ("ritm", "sbd_h18_itermask", "davis", 4.94, 6.71),
    ("ritm", "coco_lvis_h18_baseline", "grabcut", 1.54, 1.70),
    ("ritm", "coco_lvis_h18_baseline", "berkeley", np.nan, 2.48),
    ("ritm", "coco_lvis_h18_baseline", "davis", 4.79, 6.00),
    ("ritm", "coco_lvis_h18s_itermask", "grabcut", 1.54, 1.68),
    ("ritm", "coco_lvis_h18s_itermask", "berkeley", np.nan, 2.60),
    ("ritm", "coco_lvis_h18s_itermask", "davis", 4.70, 5.98),
    ("ritm", "coco_lvis_h18_itermask", "grabcut", 1.42, 1.54),
    ("ritm", "coco_lvis_h18_itermask", "berkeley", np.nan, 2.26),
    ("ritm", "coco_lvis_h18_itermask", "davis", 4.36, 5.74),
    ("ritm", "coco_lvis_h32_itermask", "grabcut", 1.46, 1.56),
    ("ritm", "coco_lvis_h32_itermask", "berkeley", np.nan, 2.10),
    ("ritm", "coco_lvis_h32_itermask", "davis", 4.11, 5.34),
    ("gto99", "InterSegSynthFT", "grabcut", np.nan, 1.74),
    ("gto99", "InterSegSynthFT", "berkeley", np.nan, 2.93),
)
"""NoC from the official READMEs (RITM: NoBRS, zoom-in + flip, stops at IoU 0.90; gto99)."""

PUBLISHED_LABEL = "published, official weights, other protocol"


def table_noc(table: pd.DataFrame) -> pd.DataFrame:
    """NoC@85/90 of this run (every model x robot) above the published numbers for its dataset.

    The published rows come from the official READMEs (official weights, full resolution, their
    own robot and predictor, RITM stops at IoU 0.90): they are context, not a reproduction.
    """

    ours = summary(table)[["model", "robot", "images", "NoC@85", "NoC@90", "NoF@90"]].copy()
    k = int(table["click"].max())
    settings = ", ".join(sorted(table["settings"].unique()))
    ours.insert(0, "source", f"this run ({settings}, {k} clicks)")
    datasets = set(table["dataset"].unique())
    pub = pd.DataFrame(PUBLISHED_NOC, columns=["model", "weights", "dataset", "NoC@85", "NoC@90"])
    pub = pub[pub["dataset"].isin(datasets)]
    pub["robot"] = pub["model"].map({"ritm": "rritm", "gto99": "rgto99"}) + " (own protocol)"
    pub["model"] = pub["model"] + " (" + pub["weights"] + ")"
    pub = pub.drop(columns=["weights", "dataset"])
    pub.insert(0, "source", PUBLISHED_LABEL)
    return pd.concat([ours, pub], ignore_index=True)
