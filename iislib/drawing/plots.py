"""Plotting primitives shared by the notebooks, the demo and the command line.

Everything draws on a matplotlib Axes or returns a Figure; nothing here calls ``plt.show``.
``save_figure`` writes PNG and PDF that are byte-identical across runs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from iislib.atomic import write_files
from iislib.core.clicks import Click
from iislib.core.metrics import METRIC_NAMES
from iislib.paths import FIGURES, STYLE

METRIC_LABELS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "dice": "Dice",
    "iou": "IoU",
    "fscore": "F-score",
    "boundary_iou": "Boundary IoU",
}
LINESTYLES = ("-", "--", ":", "-.")
POSITIVE = "#00c000"
NEGATIVE = "#e00000"


@contextmanager
def paper_style():
    """The project's matplotlib style (``iislib/drawing/paper.mplstyle``) for the enclosed figures."""
    import matplotlib.pyplot as plt

    with plt.style.context(["default", str(STYLE)]):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] | None = None, **kw):
    """A Figure and its axes in the paper style, without pyplot's global state."""
    with paper_style():
        fig = Figure(figsize=size or matplotlib.rcParams["figure.figsize"], layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def figure_files(fig: Figure, name: str, folder: str | Path = FIGURES) -> dict[Path, bytes]:
    """``folder/name``.png and .pdf -> their bytes, rendered in memory, byte-stable (no dates in
    metadata); ``iislib.atomic.write_files`` writes them."""
    folder = Path(folder)
    out = {}
    for suffix, kw in (("png", {"dpi": 150, "metadata": {"Software": None}}),
                       ("pdf", {"metadata": {"CreationDate": None, "ModDate": None,
                                             "Producer": None}})):  # fmt: skip
        buf = io.BytesIO()
        fig.savefig(buf, format=suffix, **kw)
        out[folder / f"{name}.{suffix}"] = buf.getvalue()
    return out


def save_figure(fig: Figure, name: str, folder: str | Path = FIGURES) -> list[Path]:
    """Write ``name``.png and ``name``.pdf into ``folder``, byte-stable (no dates in metadata).

    Both are rendered first, then written together atomically (``iislib.atomic.write_files``):
    a failure (a full disk) leaves the previous files as they were and names the file.
    """
    return write_files(figure_files(fig, name, folder))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def caption(table: pd.DataFrame, extra: str = "") -> str:
    """'dataset, N images, settings, models, robots' for a figure built from ``table``."""
    parts = [
        f"dataset: {', '.join(sorted(table['dataset'].unique()))}",
        _count(table["image"].nunique(), "image"),
        f"settings: {', '.join(sorted(table['settings'].unique()))}",
        f"models: {', '.join(table['model'].unique())}",
        f"robots: {', '.join(table['robot'].unique())}",
    ]
    if table["seed"].nunique() > 1:
        parts.append(_count(table["seed"].nunique(), "seed"))
    return "; ".join(parts) + (f". {extra}" if extra else "")


ROBOT_COLORS: dict[str, str] = {
    "r01": "#999999",  # grey: clicks anywhere, the least informed robot
    "r02": "#E69F00",
    "r03": "#56B4E9",
    "r04": "#009E73",
    "r05": "#CC79A7",
    "r05h": "#8C564B",
    "rgto99": "#D55E00",  # the two deterministic robots in the strongest colours
    "rritm": "#0072B2",
}
"""A fixed colour per robot (the Okabe-Ito palette, distinct for colour-blind readers): seven
curves of one model stay apart, and rgto99/rritm stand out in every figure."""


def robot_colors(robots: Sequence[str]) -> dict[str, str]:
    """A fixed colour per robot name (same colour in every figure): ``ROBOT_COLORS``, then the
    style's colour cycle for other robots (a replay, a user's own)."""
    with paper_style():
        cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    others = [r for r in robots if r not in ROBOT_COLORS]
    return {r: ROBOT_COLORS[r] if r in ROBOT_COLORS else cycle[others.index(r) % len(cycle)]
            for r in robots}  # fmt: skip


def mean_curves(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean of ``metric`` over images and seeds: rows (model, robot), columns click."""
    return table.groupby(["model", "robot", "click"])[metric].mean().unstack("click")


def plot_metric_curves(
    ax: Axes,
    table: pd.DataFrame,
    metric: str = "iou",
    models: Sequence[str] | None = None,
    robots: Sequence[str] | None = None,
    legend: bool = True,
) -> None:
    """Mean ``metric`` against the number of clicks: colour per robot, line style per model."""
    models = list(models) if models is not None else list(table["model"].unique())
    robots = list(robots) if robots is not None else list(table["robot"].unique())
    curves = mean_curves(table[table["model"].isin(models) & table["robot"].isin(robots)], metric)
    colors = robot_colors(robots)
    # styles by the models actually drawn, as ``curve_legend`` numbers them
    models = [m for m in models if m in curves.index.get_level_values("model")]
    for mi, model in enumerate(models):
        for robot in robots:
            if (model, robot) not in curves.index:
                continue
            y = curves.loc[(model, robot)]
            ax.plot(y.index, y.to_numpy(), LINESTYLES[mi % len(LINESTYLES)], color=colors[robot],
                    alpha=0.8, label=f"{model} / {robot}")  # fmt: skip
    ax.set_xlabel("number of clicks")
    ax.set_ylabel(f"mean {METRIC_LABELS.get(metric, metric)}")
    click_axis(ax, table["click"].max())
    if legend:
        curve_legend(ax, [(m, r) for m in models for r in robots if (m, r) in curves.index])


def click_axis(ax: Axes, last: int) -> None:
    """The x axis of a curve over clicks 1..``last``; a one-click table gets 0.5..1.5, since
    matplotlib warns on (and widens) an axis from 1 to 1."""
    last = int(last)
    ax.set_xlim(*((1, last) if last > 1 else (0.5, 1.5)))


COMBINED_LEGEND_MAX = 6
"""Up to this many (model, robot) lines the legend names each line; beyond, it has one entry
per robot (colour) and one per model (line style)."""


def curve_pairs(table: pd.DataFrame) -> list[tuple[str, str]]:
    """The (model, robot) pairs of ``table``, models then robots in order of appearance."""
    present = set(zip(table["model"], table["robot"], strict=True))
    return [(m, r) for m in table["model"].unique() for r in table["robot"].unique()
            if (m, r) in present]  # fmt: skip


def curve_legend(
    target: Axes | Figure, pairs: Sequence[tuple[str, str]], below: bool = False, **kw
) -> None:  # fmt: skip
    """A legend for curves coloured by robot and styled by model (``plot_metric_curves``).

    With at most ``COMBINED_LEGEND_MAX`` (model, robot) ``pairs`` each line gets its own entry
    ("model / robot"); with more, the legend separates the two codes: a coloured solid line per
    robot (labelled with its name) and a grey line per model in its style, so 7 robots x 3
    models need 10 entries, not 21. ``below``: laid out in rows under the axes (robots on the first row, models on the
    second), otherwise in one column.
    """

    models = list(dict.fromkeys(m for m, _ in pairs))
    robots = list(dict.fromkeys(r for _, r in pairs))
    colors = robot_colors(robots)
    style = {m: LINESTYLES[i % len(LINESTYLES)] for i, m in enumerate(models)}
    if len(pairs) <= COMBINED_LEGEND_MAX:
        handles = [Line2D([], [], ls=style[m], color=colors[r], label=f"{m} / {r}")
                   for m, r in pairs]  # fmt: skip
        ncols = min(len(handles), 3) if below else 1
    else:
        first = [Line2D([], [], color=colors[r], label=r) for r in robots]
        second = [Line2D([], [], ls=style[m], color="0.35", label=m) for m in models]
        if below:
            # legends fill column by column: interleave so robots make row 1, models row 2
            ncols = max(len(first), len(second))
            blank = Line2D([], [], alpha=0.0, label=" ")
            first += [blank] * (ncols - len(first))
            second += [blank] * (ncols - len(second))
            handles = [h for pair in zip(first, second, strict=True) for h in pair]
            kw = {"handlelength": 1.8, "columnspacing": 1.2, **kw}
        else:
            handles, ncols = first + second, 1
    target.legend(handles=handles, frameon=False, ncols=ncols, **kw)


def robot_legend(fig: Figure, robots: Sequence[str]) -> None:
    """One row under the panels: a line in each robot's colour (``robot_colors``), labelled."""
    colors = robot_colors(robots)
    fig.legend(handles=[Line2D([], [], color=colors[r], label=r) for r in robots],
               loc="outside lower center", frameon=False, ncols=len(robots))  # fmt: skip


def _shown(table: pd.DataFrame, kw: dict) -> list[tuple[str, str]]:
    """The (model, robot) pairs ``plot_metric_curves`` draws, in its order (``models`` and
    ``robots`` of ``kw``, else the table's)."""
    models = kw.get("models")
    robots = kw.get("robots")
    models = list(models) if models is not None else list(table["model"].unique())
    robots = list(robots) if robots is not None else list(table["robot"].unique())
    present = set(curve_pairs(table))
    return [(m, r) for m in models for r in robots if (m, r) in present]


def fig_metric_curves(table: pd.DataFrame, metric: str = "iou", **kw) -> Figure:
    """One panel: ``metric`` against clicks for every model x robot in ``table``."""
    fig, axes = new_figure(size=(4.5, 3.2))
    plot_metric_curves(axes[0, 0], table, metric, legend=False, **kw)
    curve_legend(fig, _shown(table, kw), loc="outside right center")
    return fig


def fig_metric_grid(table: pd.DataFrame, metrics: Sequence[str] = METRIC_NAMES, **kw) -> Figure:
    """A 2x3 grid, one panel per metric, every model x robot in each (the paper's Figure 7
    layout; ``figures.fig7`` gives each model a column of its own instead)."""
    ncols = 3
    nrows = int(np.ceil(len(metrics) / ncols))
    fig, axes = new_figure(nrows, ncols, size=(6.9, 2.3 * nrows))
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        plot_metric_curves(ax, table, metric, legend=False, **kw)
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    curve_legend(fig, _shown(table, kw), below=True, loc="outside lower center")
    return fig


# ----------------------------------------------------------------------------------------------
# qualitative panels (the paper's Figures 5, 8 and 9)


def confusion_rgb(prob: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> np.ndarray:
    """TP white, TN black, FP blue, FN red; soft predictions give intermediate colours.

    Args:
        prob: float (H, W) in [0, 1] (a binary mask works too).
        gt: bool (H, W).
        ignore: bool (H, W) drawn grey, or None.
    Returns:
        float32 (H, W, 3) in [0, 1].
    """
    p = np.clip(np.asarray(prob, dtype=np.float32), 0, 1)[..., None]
    g = np.asarray(gt, dtype=bool)[..., None]
    white, red = np.array([1, 1, 1], np.float32), np.array([1, 0, 0], np.float32)
    blue, black = np.array([0, 0.35, 1], np.float32), np.zeros(3, np.float32)
    out = np.where(g, p * white + (1 - p) * red, p * blue + (1 - p) * black)
    if ignore is not None:
        out[np.asarray(ignore, dtype=bool)] = 0.5
    return out.astype(np.float32)


def draw_clicks(ax: Axes, clicks: Sequence[Click], upto: int | None = None) -> None:
    """Green positive and red negative dots; the more recent the click, the larger its dot."""
    clicks = list(clicks)[: upto if upto is not None else None]
    n = len(clicks)
    for i, c in enumerate(clicks):
        size = 12 + 60 * (i + 1) / max(n, 1)
        ax.scatter([c.col], [c.row], s=size, c=POSITIVE if c.positive else NEGATIVE,
                   edgecolors="white", linewidths=0.6, zorder=3)  # fmt: skip


def show_overlay(
    ax: Axes, image: np.ndarray, prob: np.ndarray, clicks: Sequence[Click], threshold: float = 0.5
) -> None:
    """The image with the thresholded prediction tinted and its contour, plus the clicks."""
    img = np.asarray(image, dtype=np.float32)
    img = img / 255.0 if img.max() > 1.0 else img
    mask = np.asarray(prob) > threshold
    tint = img.copy()
    tint[mask] = 0.55 * tint[mask] + 0.45 * np.array([0.1, 0.45, 1.0])
    ax.imshow(tint, interpolation="nearest")
    if mask.any() and not mask.all():
        ax.contour(mask, levels=[0.5], colors="yellow", linewidths=0.8)
    draw_clicks(ax, clicks)
    ax.set_axis_off()


def show_confusion(
    ax: Axes, prob: np.ndarray, gt: np.ndarray, clicks: Sequence[Click] = (),
    ignore: np.ndarray | None = None,
) -> None:  # fmt: skip
    """The TP/TN/FP/FN map of a (soft) prediction with the clicks on top."""
    ax.imshow(confusion_rgb(prob, gt, ignore), interpolation="nearest")
    draw_clicks(ax, clicks)
    ax.set_axis_off()
