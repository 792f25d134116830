"""The demo's pictures: score curves, the Figure-5 panel, the "you click" views and comparisons.

    fig_curves(result)            # one panel per score against the number of clicks
    fig_panel(result, k=5)        # input, overlay with the clicks, TP/TN/FP/FN map at click 5
    figure_png(fig)               # PNG bytes, equal for equal figures
    overlay_png(image, pred, clicks), confusion_png(pred, gt, ignore, clicks)   # "you click"
    fig_compare(session.compare()), fig_verdict({model: comparison, ...})

The runs they draw come from ``iislib.experiment.demo`` (``DemoResult``) and
``iislib.experiment.session`` (``HumanSession``, ``Comparison``); nothing here runs a model.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from scipy import ndimage

from iislib.core.clicks import Click
from iislib.core.metrics import SCORE_NAMES
from iislib.drawing.plots import (
    LINESTYLES,
    METRIC_LABELS,
    confusion_rgb,
    new_figure,
    paper_style,
    robot_colors,
    show_confusion,
    show_overlay,
)
from iislib.experiment.demo import NOC_LEVELS, DemoResult
from iislib.experiment.human import HUMAN, Comparison

DPI = 120
# Magenta outline for the ground truth: rare in photos, and apart from the prediction's yellow.
GT_COLOR = "#ff00ff"
# One colour per compared run (first run blue, second orange: the style's first two colours).
RUN_COLORS = ("#006BA4", "#FF800E")


# ----------------------------------------------------------------------------------------------
# a robot's run: curves and the panel at click k


def fig_curves(
    *results: DemoResult,
    metrics: Sequence[str] = SCORE_NAMES,
    envelope: tuple[DemoResult, DemoResult] | None = None,
) -> Figure:
    """One panel per metric against the number of clicks (the six, then Boundary IoU); one line
    per run (up to two runs).

    The IoU panel marks the 0.85 and 0.90 levels of NoC@85 and NoC@90. ``envelope``, the
    (rworst, rbest) runs of ``experiment.demo.run_envelope``, adds to it the grey band between
    their IoU curves: how far the clicking alone moves the model's IoU on this image.
    """
    if not results:
        raise ValueError("fig_curves needs at least one DemoResult")
    ncols = 4
    nrows = int(np.ceil(len(metrics) / ncols))
    with paper_style():
        fig, axes = new_figure(nrows, ncols, size=(6.9, 2.0 * nrows + 0.5), sharex=True)
        for ax, metric in zip(axes.ravel(), metrics, strict=False):
            for i, res in enumerate(results):
                y = res.trajectory.scores[metric]
                x = np.arange(1, len(y) + 1)
                ax.plot(x, y, marker="o", ms=2.5, color=RUN_COLORS[i % len(RUN_COLORS)],
                        ls="-" if i == 0 else "--", label=res.label)  # fmt: skip
            if metric == "iou" and envelope is not None:
                worst, best = envelope
                lo, hi = worst.trajectory.scores["iou"], best.trajectory.scores["iou"]
                ax.fill_between(np.arange(1, len(lo) + 1), lo, hi, color="0.8", lw=0, zorder=0,
                                label=f"envelope ({worst.robot} to {best.robot})")  # fmt: skip
            if metric == "iou":
                for level in NOC_LEVELS:
                    ax.axhline(level, color="0.5", lw=0.7, ls=":")
            ax.set_title(METRIC_LABELS.get(metric, metric))
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlim(0.5, max(r.clicks for r in results) + 0.5)
            ax.xaxis.get_major_locator().set_params(integer=True)
        for ax in axes.ravel()[len(metrics) :]:
            ax.set_visible(False)
        for col in axes.T:  # the lowest panel of each column carries the axis (7 in a 2x4 grid)
            lowest = [ax for ax in col if ax.get_visible()][-1]
            lowest.set_xlabel("number of clicks")
            lowest.xaxis.set_tick_params(labelbottom=True)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        if envelope is not None and "iou" in metrics:
            band = axes.ravel()[list(metrics).index("iou")].collections[0]
            handles, labels = [*handles, band], [*labels, band.get_label()]
        fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    return fig


def _confusion_legend(ax) -> None:
    from matplotlib.patches import Patch

    items = [("TP", "white"), ("TN", "black"), ("FP", (0, 0.35, 1)), ("FN", "red")]
    handles = [Patch(facecolor=c, edgecolor="0.4", label=t) for t, c in items]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncols=4,
              frameon=False, handlelength=1.0, columnspacing=0.8, fontsize=6)  # fmt: skip


def fig_panel(result: DemoResult, k: int, other: DemoResult | None = None) -> Figure:
    """The paper's Figure-5 panel at click ``k``: input, overlay with clicks, TP/TN/FP/FN map.

    Args:
        result: a demo run.
        k: 1-based click, 1 <= k <= K; the clicks 1..k and the prediction after click k are drawn.
        other: a second run on the same image, drawn as a second row.
    """
    runs = [result] if other is None else [result, other]
    for r in runs:
        r.check_click(k)
    h, w = result.gt.shape
    width = 6.9
    row_h = width / 3 * h / w + 0.45
    with paper_style():
        fig, axes = new_figure(len(runs), 3, size=(width, row_h * len(runs)))
        for row, res in zip(axes, runs, strict=True):
            traj = res.trajectory
            prob = traj.probs[k - 1]
            placed = traj.clicks[:k]
            iou = traj.scores["iou"][k - 1]
            ax_in, ax_ov, ax_cm = row
            img = np.asarray(res.image)
            ax_in.imshow(
                img if img.dtype == np.uint8 else np.clip(img, 0, 1), interpolation="nearest"
            )
            if res.gt.any() and not res.gt.all():
                ax_in.contour(res.gt, levels=[0.5], colors=GT_COLOR, linewidths=0.8)
            ax_in.set_title(f"input ({res.name}, ground truth outlined)")
            ax_in.set_axis_off()
            show_overlay(ax_ov, img, prob, placed, threshold=res.threshold)
            n_pos = sum(c.positive for c in placed)
            what = f"{n_pos}+ {len(placed) - n_pos}-"
            if len(placed) < k:  # the robot found no error left and stopped (END)
                what += f", ended after {len(placed)}"
            ax_ov.set_title(f"{res.label}: click {k} ({what})")
            # The binary prediction, as scored: soft colours would hide which pixels count.
            binary = (prob > res.threshold).astype(np.float32)
            show_confusion(ax_cm, binary, res.gt, placed, res.ignore)
            ax_cm.set_title(f"TP/TN/FP/FN, IoU {iou:.3f}")
            _confusion_legend(ax_cm)
    return fig


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes (no date in the metadata, so equal figures give equal bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# you click: the clickable picture, its error map, and the comparison with the robots


def _disk(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(drow, dcol) offsets of the pixels within ``radius`` of (0, 0)."""
    rr, cc = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    inside = rr**2 + cc**2 <= radius**2
    return rr[inside], cc[inside]


def _paint(rgb: np.ndarray, row: int, col: int, radius: int, color: tuple[int, int, int]) -> None:
    dr, dc = _disk(radius)
    r, c = dr + row, dc + col
    ok = (r >= 0) & (r < rgb.shape[0]) & (c >= 0) & (c < rgb.shape[1])
    rgb[r[ok], c[ok]] = color


POSITIVE_RGB = (0, 192, 0)
NEGATIVE_RGB = (224, 0, 0)
TINT_RGB = np.array([26, 115, 255], np.float32)  # the panels' prediction blue (show_overlay)


def overlay_rgb(
    image: np.ndarray, pred: np.ndarray, clicks: Sequence[Click] = (), gt: np.ndarray | None = None
) -> np.ndarray:
    """uint8 (H, W, 3): the image, the prediction tinted blue with a yellow border, the ground
    truth's border in magenta (when given) and the clicks as green (positive) or red (negative)
    dots with a white ring, the latest one larger.

    Drawn in NumPy at the image's own resolution (a few ms), so the "you click" view updates
    faster than a matplotlib figure would.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:  # float in [0, 1] (ipol settings)
        img = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    out = img.astype(np.float32)
    pred = np.asarray(pred, dtype=bool)
    out[pred] = 0.55 * out[pred] + 0.45 * TINT_RGB
    out = out.astype(np.uint8)
    four = ndimage.generate_binary_structure(2, 1)
    if gt is not None:
        g = np.asarray(gt, dtype=bool)
        out[g & ~ndimage.binary_erosion(g, four, border_value=1)] = (255, 0, 255)
    out[pred & ~ndimage.binary_erosion(pred, four, border_value=1)] = (255, 255, 0)
    radius = max(3, round(min(out.shape[:2]) / 70))
    for i, c in enumerate(clicks):
        r = radius + (1 if i == len(clicks) - 1 else 0)
        _paint(out, c.row, c.col, r + 1, (255, 255, 255))
        _paint(out, c.row, c.col, r, POSITIVE_RGB if c.positive else NEGATIVE_RGB)
    return out


def confusion_png(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None,
                  clicks: Sequence[Click] = ()) -> bytes:  # fmt: skip
    """PNG of the TP (white) / TN (black) / FP (blue) / FN (red) map with the clicks on top."""
    rgb = np.round(confusion_rgb(pred, gt, ignore) * 255).astype(np.uint8)
    radius = max(3, round(min(rgb.shape[:2]) / 70))
    for c in clicks:
        _paint(rgb, c.row, c.col, radius + 1, (128, 128, 128))
        _paint(rgb, c.row, c.col, radius, POSITIVE_RGB if c.positive else NEGATIVE_RGB)
    return rgb_png(rgb)


def rgb_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 3) array (fast compression: the view is redrawn per click)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def overlay_png(
    image: np.ndarray, pred: np.ndarray, clicks: Sequence[Click] = (), gt: np.ndarray | None = None
) -> bytes:
    """PNG of ``overlay_rgb``: the picture a person clicks on (``HumanSession``: its
    ``image``, ``pred`` and ``record.clicks``)."""
    return rgb_png(overlay_rgb(image, pred, clicks, gt))


def fig_compare(cmp: Comparison, title: str = "") -> Figure:
    """Your IoU curve among the robots', and per click how close each robot came to you.

    Left: IoU after each click, yours thick and black, each robot's own run in its colour.
    Middle: distance in pixels from your click k to the click rgto99 / rritm would have placed
    at your state before click k. Right: percentile of your pixel under each random robot's
    sampling map (50: a typical pixel of a robot that samples uniformly; 0: never sampled).
    """
    robots = list(cmp.robots)
    colors = robot_colors(robots)
    x = np.asarray(cmp.iou.index)
    pc = cmp.per_click
    with paper_style():
        fig, axes = new_figure(1, 3, size=(6.9, 2.5))
        ax = axes[0, 0]
        for r in robots:
            ax.plot(x, cmp.iou[r], color=colors[r], lw=1.0, marker="o", ms=2, label=r)
        ax.plot(x, cmp.iou[HUMAN], color="black", lw=2.2, marker="o", ms=4, label=HUMAN, zorder=5)
        for level in NOC_LEVELS:
            ax.axhline(level, color="0.5", lw=0.7, ls=":")
        ax.set(title="IoU", xlabel="number of clicks", ylim=(-0.02, 1.02))
        ax = axes[0, 1]
        det = [r for r in robots if not pc.loc[pc["robot"] == r, "random"].any()]
        for i, r in enumerate(det):  # markers and dashes tell them apart where they coincide
            g = pc[pc["robot"] == r]
            ax.plot(g["click"], g["distance"], color=colors[r], marker="s^dv"[i % 4], ms=4 - i,
                    ls=LINESTYLES[i % len(LINESTYLES)], label=r)  # fmt: skip
        top = np.nanmax(pc.loc[pc["robot"].isin(det), "distance"], initial=0.0) if det else 0.0
        ax.set(title="distance to the robot's click (px)", xlabel="your click",
               ylim=(0, max(10.0, 1.1 * top)))  # fmt: skip
        if det:
            ax.legend(frameon=False, fontsize=6)
        ax = axes[0, 2]
        for r in (r for r in robots if r not in det):
            g = pc[pc["robot"] == r]
            ax.plot(g["click"], g["percentile"], color=colors[r], marker="o", ms=3, label=r)
        ax.axhline(50, color="0.5", lw=0.7, ls=":")
        ax.set(title="your pixel in the robot's map (pct)", xlabel="your click", ylim=(-2, 102))
        for ax in axes.ravel():
            ax.set_xlim(0.5, cmp.k + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
        if title:
            fig.suptitle(title, fontsize=8)
    return fig


def fig_verdict(comparisons: dict[str, Comparison]) -> Figure:
    """Mean IoU over the K clicks (the area under the IoU curve / K) of each model, under each
    simulated user: you (your clicks replayed) and each robot. One group of bars per user, one
    bar per model, the winner's bar outlined: where the winner changes from user to user, the
    verdict of a benchmark depends on its simulated user.

    Args:
        comparisons: model name -> ``Comparison`` of the same clicks on the same image.
    """
    if not comparisons:
        raise ValueError("fig_verdict needs at least one model's comparison")
    models = list(comparisons)
    users = list(next(iter(comparisons.values())).iou.columns)
    means = np.array([[comparisons[m].iou[u].mean() for m in models] for u in users])
    width = 0.8 / len(models)
    with paper_style():
        fig, axes = new_figure(1, 1, size=(6.9, 2.4))
        ax = axes[0, 0]
        x = np.arange(len(users))
        for j, m in enumerate(models):
            best = means[:, j] >= means.max(axis=1) - 1e-12
            ax.bar(x + (j - (len(models) - 1) / 2) * width, means[:, j], width * 0.92, label=m,
                   color=RUN_COLORS[j] if j < len(RUN_COLORS) else f"C{j}",
                   edgecolor=["black" if b else "none" for b in best], linewidth=1.2)  # fmt: skip
        ax.set_xticks(x, [u if u != HUMAN else f"{HUMAN} (replayed)" for u in users])
        k = next(iter(comparisons.values())).k
        ax.set(ylabel=f"mean IoU over {k} clicks", ylim=(0, 1))
        handles = [Patch(facecolor=RUN_COLORS[j] if j < len(RUN_COLORS) else f"C{j}", label=m)
                   for j, m in enumerate(models)]  # fmt: skip
        handles.append(Patch(facecolor="white", edgecolor="black", label="winner"))
        ax.legend(handles=handles, frameon=False, ncols=len(handles), loc="upper left", fontsize=7)
    return fig


__all__ = [
    "DPI",
    "GT_COLOR",
    "RUN_COLORS",
    "confusion_png",
    "fig_compare",
    "fig_curves",
    "fig_panel",
    "fig_verdict",
    "figure_png",
    "overlay_png",
    "overlay_rgb",
    "rgb_png",
]
