"""The demo: one image and one mask, any model and robot, K clicks, curves and overlays.

This is the paper's online demo as a library: pick an image and its ground-truth mask, a model
and a robot (the simulated user); the robot clicks ``clicks`` times (Algorithm 1, ``iislib.core.loop``)
and the demo shows how six scores evolve with the clicks, and what the prediction looks like at
any click. A second (model, robot) pair can run on the same image for comparison.

    result = run_demo(image, gt, "random_walker", "rritm", clicks=20)
    fig_curves(result)            # one panel per metric against the number of clicks
    fig_panel(result, k=5)        # input, overlay with the clicks, TP/TN/FP/FN map at click 5
    write_outputs("out", result)  # curves.png, panel.png, scores.csv (all or nothing)
    print(summary_line(result))   # final IoU, NoC@85, NoC@90

Images are limited to ``MAX_PIXELS`` (4 megapixels): a 6000x6000 photo took 153 s and 6 GB for
two clicks of random_walker, and ritm-compact ran out of memory on it. Larger inputs are refused
with a message giving the longer side to downscale to (``load_inputs(..., max_side=N)``, ``iislib
demo --max-side N``). ``scores.csv`` holds no wall times, so the same command gives the same
bytes; the times go to ``timings.csv`` on request (``timings=True``, ``--timings``).

"You click": ``HumanSession`` puts a person in the robot's place (a prediction after each of
their clicks, the same as ``loop.run`` replaying them), ``fig_compare`` draws their run among the
robots' (``iislib.experiment.human``) and ``fig_verdict`` the models' mean IoU per simulated user.

The notebook ``notebooks/05_demo.py`` (``iislib.apps.demo_app``) and ``iislib demo`` (``iislib.apps.cli``)
are thin layers over these functions.
"""

from __future__ import annotations

import io
import operator
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from scipy import ndimage

from iislib.core.clicks import Click
from iislib.core.human import ClickRecord
from iislib.core.loop import Trajectory, check_max_clicks, run
from iislib.core.metrics import METRIC_NAMES, noc, scores
from iislib.core.model import IISModel
from iislib.core.robots import ROBOT_NAMES, ROBOTS, Robot, get_robot, robot_name
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
from iislib.experiment.data import (
    DataError,
    Sample,
    check_pair,
    check_pixels,
    image_rgb,
    image_size,
    load_pair,
    mask_from_array,
    mask_pixels,
    open_image,
)
from iislib.experiment.human import HUMAN, Comparison, compare_with_robots
from iislib.experiment.sweep import trajectory_frame
from iislib.models import NEEDS_CHECKPOINT, available_models, get_model
from iislib.models.settings import DEMO_SETTINGS, get_settings

OUTPUT_FILES: tuple[str, ...] = ("curves.png", "panel.png", "scores.csv")
"""What ``write_outputs`` writes, always all three."""
TIMINGS_FILE = "timings.csv"
"""Written beside them only on request: wall times change from run to run."""
TIMING_COLUMNS: tuple[str, ...] = ("model_seconds", "robot_seconds")
ID_COLUMNS: tuple[str, ...] = ("model", "robot", "image", "seed", "settings", "click")

MAX_PIXELS = 4_000_000
"""Largest image the demo accepts (width x height), 4 megapixels: 2000 x 2000.

Measured for two clicks of rritm on a 2000 x 2000 image (2 busy CPU cores, whole process):
random_walker 2.4 s and 0.45 GB peak, ritm-compact 24 s and 1.6 GB peak. At 6000 x 6000,
random_walker took 153 s and 6 GB, and ritm-compact ran out of memory (24 GB). Larger
images are refused with the longer side to downscale to (``load_inputs(max_side=...)``,
``--max-side``).
"""

NOC_LEVELS: tuple[float, ...] = (0.85, 0.90)
DPI = 120
# Magenta outline for the ground truth: rare in photos, and apart from the prediction's yellow.
GT_COLOR = "#ff00ff"
# One colour per compared run (first run blue, second orange: the style's first two colours).
RUN_COLORS = ("#006BA4", "#FF800E")


class DemoError(ValueError):
    """A demo request that cannot run (unknown model or robot, missing checkpoint, bad clicks)."""


@dataclass
class DemoResult:
    """One demo run.

    Attributes:
        image: the image the model saw, uint8 (H, W, 3) (float32 in [0, 1] under ``ipol``).
        gt: bool (H, W) ground truth (as the model saw it).
        ignore: bool (H, W) pixels left out of scores and clicks, or None.
        model, robot: names shown in legends and files.
        seed: the robot's seed.
        trajectory: the clicks, the scores and every probability map (``probs`` (K, H, W)).
        scores: one row per click (``click`` 1..K): row, col, positive (-1 after END), the six
            metrics, model_seconds, robot_seconds, and the model/robot/image/seed/settings ids.
        seconds: wall time of the run (model building excluded).
        name: the image's name.
        settings: the inference settings' name.
        threshold: the prediction is ``prob > threshold`` (robot, scores, pictures).
    """

    image: np.ndarray
    gt: np.ndarray
    ignore: np.ndarray | None
    model: str
    robot: str
    seed: int
    trajectory: Trajectory
    scores: pd.DataFrame
    seconds: float
    name: str = "image"
    settings: str = DEMO_SETTINGS
    threshold: float = 0.5

    @property
    def label(self) -> str:
        """'model / robot', the run's name in legends."""
        return f"{self.model} / {self.robot}"

    @property
    def clicks(self) -> int:
        """K, the number of steps (scores have K rows even when the robot ended earlier)."""
        return self.trajectory.max_clicks


# ----------------------------------------------------------------------------------------------
# inputs


def as_image(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 (H, W, 3) copy of ``image``: grey (H, W) is repeated, alpha is dropped.

    Raises DataError for anything that is not a 2-D or 3-D array of 1, 3 or 4 channels.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4) or min(a.shape[:2]) < 2:
        raise DataError(f"the image must be (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.copy()
    # NaN fails both comparisons, so a float image with NaN is refused here
    if np.issubdtype(a.dtype, np.floating) and a.size and 0.0 <= a.min() and a.max() <= 1.0:
        return np.round(a * 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer) and a.size and 0 <= a.min() and a.max() <= 255:
        return a.astype(np.uint8)
    raise DataError(
        f"the image must be uint8, or float in [0, 1] without NaN; got {a.dtype}"
        + (
            f" values {np.nanmin(a):g} to {np.nanmax(a):g}"
            if a.size and a.dtype.kind in "iuf"
            else ""
        )
    )


def decode_image_bytes(
    data: bytes, what: str = "image", max_pixels: int | None = MAX_PIXELS
) -> np.ndarray:
    """File bytes (PNG, JPEG, ...) -> uint8 (H, W, 3) RGB; DataError when not an image.

    16-bit grey is scaled to 8 bits (``iislib.experiment.data.image_rgb``). The size is checked against
    ``max_pixels`` from the header, before anything is decoded; decompression bombs are refused.
    """
    with open_image(data, what) as im:
        check_pixels(*im.size, max_pixels, what)
        return image_rgb(im, what)


def decode_mask_bytes(
    data: bytes, what: str = "mask", max_pixels: int | None = MAX_PIXELS
) -> np.ndarray:
    """Mask file bytes -> uint8 (H, W) or (H, W, 3) pixels for ``mask_from_array``.

    0/1 labels become 0/255 and 16-bit grey is scaled (``iislib.experiment.data.mask_pixels``); size and
    decompression bombs are checked as in ``decode_image_bytes``.
    """
    with open_image(data, what) as im:
        check_pixels(*im.size, max_pixels, what)
        return mask_pixels(im, what)


def load_inputs(
    image_path: str | Path,
    mask_path: str | Path,
    max_side: int | None = None,
    max_pixels: int | None = MAX_PIXELS,
    mask_rule: str | None = None,
    object: int | None = None,
) -> tuple[Sample, str | None]:
    """(sample, note) from an image file and its mask file, for ``iislib demo``.

    Args:
        image_path, mask_path: the two files (same size; the demo's mask rule).
        max_side: downscale both so that the longer side is at most this many pixels (image:
            Lanczos, mask: nearest neighbour), or None to keep the size.
        max_pixels: refuse larger pairs (after ``max_side``) with a DataError that says which
            ``max_side`` would do; None for no limit.
        mask_rule, object: how the mask is read (``iislib.experiment.data.load_pair``).

    Returns:
        The sample, and a note saying that the pair was downscaled (None when it was not).
    """
    if max_side is not None and (
        isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < 1
    ):
        raise DemoError(f"--max-side must be a whole number of pixels >= 1, got {max_side!r}")
    w, h = image_size(image_path)
    sample = load_pair(image_path, mask_path, max_side=max_side, max_pixels=max_pixels,
                       mask_rule=mask_rule, object=object)  # fmt: skip
    nh, nw = sample.image.shape[:2]
    note = None
    if (nw, nh) != (w, h):
        note = (
            f"{image_path} and its mask downscaled from {w}x{h} to {nw}x{nh} (--max-side "
            f"{max_side}); the scores are those of the downscaled pair"
        )
    return sample, note


def check_inputs(
    image: np.ndarray, gt: np.ndarray, what: str = "input", max_pixels: int | None = MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (H, W, 3) image, bool (H, W) mask) ready for the loop, or a DataError saying why.

    ``gt`` may be bool, or any image array: then the demo's rule applies (channel mean < 128 is
    background, 0/1 labels: 1 is foreground; ``iislib.experiment.data.mask_from_array``). Images over
    ``max_pixels`` are refused (None: no limit).
    """
    img = as_image(image)
    check_pixels(img.shape[1], img.shape[0], max_pixels, what)
    mask = mask_from_array(gt)
    check_pair(img, mask, None, what)
    return img, mask


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path when the outputs can be written there; DemoError saying why not.

    Checked before any work: the folder must not be a file nor lie under one, and the nearest
    existing folder on its path must accept a new file (tried for real, so read-only file
    systems and permissions are both seen). Nothing is left behind.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DemoError(f"output folder {out} is a file, not a folder")
    base = out
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise DemoError(f"output folder {out} lies under the file {base}")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".iislib-probe-")
    except OSError as e:
        raise DemoError(f"output folder {out} cannot be written ({base}: {e.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return out


def resolve_robot(robot: str | Robot) -> tuple[Robot, str]:
    """(robot callable, its name) from a registry name or a callable."""
    if callable(robot):
        return robot, robot_name(robot)
    try:
        return get_robot(str(robot)), str(robot)
    except ValueError as e:
        raise DemoError(str(e)) from None


def build_model(name: str, checkpoint: str | Path | None = None, **kwargs) -> IISModel:
    """``get_model(name)`` with a checkpoint, and errors a demo user can act on.

    Raises:
        DemoError: unknown name; a model of ``NEEDS_CHECKPOINT`` without ``checkpoint``; a
            checkpoint the model does not accept or cannot load.
        FileNotFoundError: ``checkpoint`` names no file.
    """
    if name not in available_models():
        raise DemoError(f"unknown model {name!r}; known models: {', '.join(available_models())}")
    ckpt = str(checkpoint).strip() if checkpoint is not None else ""
    if not ckpt:
        if name in NEEDS_CHECKPOINT:
            raise DemoError(
                f"model {name!r} needs its official checkpoint file: give its path "
                "(--checkpoint PATH, or the checkpoint field)"
            )
        return get_model(name, **kwargs)
    path = Path(ckpt).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path}: no such file")
    try:
        return get_model(name, checkpoint=path, **kwargs)
    except TypeError as e:
        if "checkpoint" in str(e):
            raise DemoError(f"model {name!r} takes no checkpoint") from None
        raise
    except (ValueError, FileNotFoundError):
        raise
    except Exception as e:  # torch.load's pickling / zip errors on a file that is no checkpoint
        raise DemoError(f"model {name!r} cannot load {path}: {type(e).__name__}: {e}") from None


# ----------------------------------------------------------------------------------------------
# running


def run_demo(
    image: np.ndarray,
    gt: np.ndarray,
    model: str | IISModel,
    robot: str | Robot,
    clicks: int = 20,
    seed: int = 0,
    *,
    checkpoint: str | Path | None = None,
    ignore: np.ndarray | None = None,
    settings: str = DEMO_SETTINGS,
    name: str = "image",
    max_pixels: int | None = MAX_PIXELS,
) -> DemoResult:
    """Run ``robot`` clicking for ``model`` ``clicks`` times on one image.

    Args:
        image: uint8 (H, W, 3) RGB (grey, RGBA and float in [0, 1] are converted).
        gt: bool (H, W) ground truth, or a mask image (channel mean < 128 is background).
        model: a registered model name (see ``iislib.models``) or a built ``IISModel``.
        robot: a robot name (``iislib.core.robots.ROBOTS``) or a robot callable.
        clicks: K >= 1, the number of clicks (the scores always have K rows).
        seed: seed of the robot's generator (``make_rng(seed, name, robot)``, as the sweep).
        checkpoint: weights file for models that need one (``NEEDS_CHECKPOINT``).
        ignore: bool (H, W) pixels neither scored nor clicked, or None.
        settings: inference settings (``iislib.models.settings``), default ``direct``.
        name: the image's name (captions, CSV, and the generator's key).
        max_pixels: larger images are refused (``MAX_PIXELS``; None: no limit).

    Returns:
        DemoResult with every probability map kept (K x H x W float32).

    Raises:
        DataError: the image or mask cannot be used (sizes differ, empty or all-foreground mask,
            NaN in a float image, over ``max_pixels``).
        DemoError, FileNotFoundError: bad model, robot, checkpoint or clicks.
    """
    try:
        check_max_clicks(clicks)
    except ValueError:
        raise DemoError(
            f"the number of clicks must be a whole number >= 1, got {clicks!r}"
        ) from None
    img, mask = check_inputs(image, gt, name, max_pixels)
    if ignore is not None:
        ignore = np.asarray(ignore, dtype=bool)
        check_pair(img, mask, ignore, name)
    robot_fn, rname = resolve_robot(robot)
    try:
        st = get_settings(settings)
    except ValueError as e:
        raise DemoError(str(e)) from None
    if isinstance(model, IISModel):
        net, mname = model, model.name
    else:
        net, mname = build_model(str(model), checkpoint), str(model)
    img_s, mask_s, ignore_s = st.prepare(img, mask, ignore)
    t0 = time.perf_counter()
    traj = run(
        st.wrap(net), robot_fn, img_s, mask_s, max_clicks=int(clicks), seed=int(seed),
        ignore=ignore_s, threshold=st.threshold, key=name, keep_probs=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    frame = trajectory_frame(
        traj, model=mname, robot=rname, image=name, seed=int(seed), settings=st.name
    )
    return DemoResult(
        image=img_s, gt=mask_s, ignore=ignore_s, model=mname, robot=rname, seed=int(seed),
        trajectory=traj, scores=frame, seconds=seconds, name=name, settings=st.name,
        threshold=st.threshold,
    )  # fmt: skip


def noc_values(result: DemoResult) -> dict[float, int | None]:
    """{level: NoC} for ``NOC_LEVELS``; None when the IoU never reaches the level in K clicks."""
    iou = result.trajectory.scores["iou"]
    out: dict[float, int | None] = {}
    for level in NOC_LEVELS:
        out[level] = int(noc(iou, level)[0]) if (iou >= level).any() else None
    return out


def summary_line(result: DemoResult) -> str:
    """'model / robot on name: final IoU 0.912 after 20 clicks, NoC@85 3, NoC@90 >20 (...)'."""
    k = result.clicks
    parts = [f"final IoU {result.trajectory.scores['iou'][-1]:.3f} after {k} clicks"]
    for level, value in noc_values(result).items():
        parts.append(f"NoC@{round(level * 100)} {value if value is not None else f'>{k}'}")
    ended = result.trajectory.ended_at
    tail = f"; no error left after click {ended}" if ended is not None else ""
    return (
        f"{result.label} on {result.name}: " + ", ".join(parts)
        + f" ({result.seconds:.1f} s{tail})"
    )  # fmt: skip


def scores_table(results: Sequence[DemoResult]) -> pd.DataFrame:
    """Every run's rows, one after the other (K rows per run)."""
    return pd.concat([r.scores for r in results], ignore_index=True)


def scores_csv(results: Sequence[DemoResult]) -> bytes:
    """scores.csv: ``scores_table`` without the wall times, so equal runs give equal bytes."""
    table = scores_table(results).drop(columns=list(TIMING_COLUMNS), errors="ignore")
    return table.to_csv(index=False, float_format="%.6g").encode()


def timings_csv(results: Sequence[DemoResult]) -> bytes:
    """timings.csv: the run ids, the click, and the model's and robot's seconds at that click."""
    table = scores_table(results)
    cols = [c for c in (*ID_COLUMNS, *TIMING_COLUMNS) if c in table.columns]
    return table[cols].to_csv(index=False, float_format="%.6g").encode()


# ----------------------------------------------------------------------------------------------
# figures


def fig_curves(*results: DemoResult, metrics: Sequence[str] = METRIC_NAMES) -> Figure:
    """One panel per metric against the number of clicks; one line per run (up to two runs).

    The IoU panel marks the 0.85 and 0.90 levels of NoC@85 and NoC@90.
    """
    if not results:
        raise ValueError("fig_curves needs at least one DemoResult")
    ncols = 3
    nrows = int(np.ceil(len(metrics) / ncols))
    with paper_style():
        fig, axes = new_figure(nrows, ncols, size=(6.9, 2.0 * nrows + 0.5), sharex=True)
        for ax, metric in zip(axes.ravel(), metrics, strict=False):
            for i, res in enumerate(results):
                y = res.trajectory.scores[metric]
                x = np.arange(1, len(y) + 1)
                ax.plot(x, y, marker="o", ms=2.5, color=RUN_COLORS[i % len(RUN_COLORS)],
                        ls="-" if i == 0 else "--", label=res.label)  # fmt: skip
            if metric == "iou":
                for level in NOC_LEVELS:
                    ax.axhline(level, color="0.5", lw=0.7, ls=":")
            ax.set_title(METRIC_LABELS.get(metric, metric))
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlim(0.5, max(r.clicks for r in results) + 0.5)
            ax.xaxis.get_major_locator().set_params(integer=True)
        for ax in axes[-1]:
            ax.set_xlabel("number of clicks")
        for ax in axes.ravel()[len(metrics) :]:
            ax.set_visible(False)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=len(labels), frameon=False)
    return fig


def _check_k(result: DemoResult, k: int) -> int:
    if not 1 <= int(k) <= result.clicks:
        raise ValueError(f"click k must be in 1..{result.clicks}, got {k}")
    return int(k)


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
        _check_k(r, k)
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


def render_outputs(
    result: DemoResult,
    other: DemoResult | None = None,
    k: int | None = None,
    timings: bool = False,
) -> dict[str, bytes]:
    """{file name: bytes} of curves.png, panel.png (at click ``k``, default K) and scores.csv,
    and timings.csv when ``timings``."""
    runs = [result] if other is None else [result, other]
    k = result.clicks if k is None else _check_k(result, k)
    files = {
        "curves.png": figure_png(fig_curves(*runs)),
        "panel.png": figure_png(fig_panel(result, k, other)),
        "scores.csv": scores_csv(runs),
    }
    if timings:
        files[TIMINGS_FILE] = timings_csv(runs)
    return files


def write_outputs(
    out_dir: str | Path,
    result: DemoResult,
    other: DemoResult | None = None,
    k: int | None = None,
    render: Callable[..., dict[str, bytes]] = render_outputs,
    timings: bool = False,
) -> list[Path]:
    """Write curves.png, panel.png and scores.csv (and timings.csv) into ``out_dir``: all or none.

    Everything is rendered in memory first, then written to temporary files that are renamed
    into place; any failure removes the temporary files and leaves ``out_dir`` as it was (a
    folder created here is removed again).

    Returns:
        The paths, in ``OUTPUT_FILES`` order, then ``TIMINGS_FILE`` when ``timings``.
    """
    files = render(result, other, k, timings=True) if timings else render(result, other, k)
    names = (*OUTPUT_FILES, TIMINGS_FILE) if timings else OUTPUT_FILES
    out = Path(out_dir)
    created = not out.exists()
    tmps: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for fname in names:
            tmp = out / f".{fname}.tmp{os.getpid()}"
            tmps.append(tmp)
            tmp.write_bytes(files[fname])
        for fname, tmp in zip(names, tmps, strict=True):
            os.replace(tmp, out / fname)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    return [out / f for f in names]


# ----------------------------------------------------------------------------------------------
# you click: a person's clicks, a prediction after each, and the comparison with the robots


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


class HumanSession:
    """A person clicking on one image for one model: a prediction after every click.

    The predictions are those of Algorithm 1 (``iislib.core.loop``) with the person as the
    robot: one model state per session (``model.start``), the previous map as the auxiliary
    input, ``prob > threshold`` scored. So ``compare`` (which replays the record through
    ``loop.run``) gives the same IoUs as the session showed.

    Args:
        image: uint8 (H, W, 3) (grey, RGBA, float in [0, 1] are converted).
        gt: bool (H, W) ground truth, or a mask image (the demo's rule).
        model: a registered model name or a built ``IISModel``.
        name: the image's name (captions, and the random robots' generator key, as the sweep's).
        image_id: the image's id in the record (default ``name``; e.g. "berkeley/101085").
        model_name: the name written in the record (default: ``model``'s name).
        ignore: bool (H, W) pixels neither scored nor compared, or None.
        settings: inference settings (``iislib.models.settings``), default ``direct``.
        checkpoint: weights file for models of ``NEEDS_CHECKPOINT``.
    """

    def __init__(
        self,
        image: np.ndarray,
        gt: np.ndarray,
        model: str | IISModel,
        *,
        name: str = "image",
        image_id: str | None = None,
        model_name: str | None = None,
        ignore: np.ndarray | None = None,
        settings: str = DEMO_SETTINGS,
        checkpoint: str | Path | None = None,
        max_pixels: int | None = MAX_PIXELS,
    ) -> None:
        img, mask = check_inputs(image, gt, name, max_pixels)
        if ignore is not None:
            ignore = np.asarray(ignore, dtype=bool)
            check_pair(img, mask, ignore, name)
        try:
            st = get_settings(settings)
        except ValueError as e:
            raise DemoError(str(e)) from None
        if isinstance(model, IISModel):
            net, mname = model, model_name or model.name
        else:
            net, mname = build_model(str(model), checkpoint), model_name or str(model)
        self.image, self.gt, self.ignore = st.prepare(img, mask, ignore)
        self.model = st.wrap(net)
        self.name = str(name)
        self.settings = st.name
        self.threshold = st.threshold
        self.image_id = str(image_id) if image_id is not None else self.name
        self.record = ClickRecord.new(self.image_id, self.gt, mname, settings=st.name)
        self.probs: list[np.ndarray] = []
        self.iou: list[float] = []
        self.seconds: list[float] = []
        self._state = self.model.start(self.image)

    # -- state ---------------------------------------------------------------------------------

    @property
    def clicks(self) -> list[Click]:
        """The clicks so far, oldest first."""
        return list(self.record.clicks)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return self.gt.shape

    @property
    def pred(self) -> np.ndarray:
        """bool (H, W): the current prediction (all False before the first click)."""
        if not self.probs:
            return np.zeros(self.gt.shape, bool)
        return self.probs[-1] > self.threshold

    def errors(self) -> int:
        """Pixels the current prediction gets wrong (outside ``ignore``)."""
        wrong = self.pred != self.gt
        if self.ignore is not None:
            wrong &= ~self.ignore
        return int(wrong.sum())

    def _predict(self, clicks: list[Click]) -> tuple[np.ndarray, float]:
        prev = self.probs[-1] if self.probs else None
        kw = {"state": self._state} if self._state is not None else {}
        t0 = time.perf_counter()
        prob = self.model.predict(self.image, clicks, prev, **kw)
        return prob, time.perf_counter() - t0

    def _push(self, prob: np.ndarray, seconds: float) -> None:
        self.probs.append(prob)
        self.iou.append(float(scores(prob > self.threshold, self.gt, self.ignore).iou))
        self.seconds.append(seconds)

    # -- clicking ------------------------------------------------------------------------------

    def click(
        self, row: object, col: object, positive: bool = True, time: str | None = None
    ) -> float:
        """Place a click at pixel (row, col), predict, and return the new IoU.

        Raises DemoError (and changes nothing) for a click outside the image, or when the
        prediction is already perfect (no error left: a robot would stop there, END).
        """
        try:
            r, c = operator.index(row), operator.index(col)  # type: ignore[arg-type]
        except TypeError:
            raise DemoError(
                f"a click needs whole pixel coordinates, got ({row!r}, {col!r})"
            ) from None
        h, w = self.shape
        if not (0 <= r < h and 0 <= c < w):
            raise DemoError(
                f"the click at (row {r}, col {c}) is outside the {w}x{h} image: click on the image"
            )
        if self.probs and self.errors() == 0:
            raise DemoError(
                f"the prediction is already perfect (IoU {self.iou[-1]:.3f} after "
                f"{len(self.probs)} clicks): nothing is left to correct; undo or reset to try "
                "another sequence"
            )
        click = Click(int(r), int(c), bool(positive))
        prob, seconds = self._predict([*self.record.clicks, click])
        self.record.add(click, time)
        self._push(prob, seconds)
        return self.iou[-1]

    def _clear(self) -> None:
        for kept in (self.probs, self.iou, self.seconds):
            kept.clear()

    def _restart(self) -> None:
        self.model.finish(self._state)
        self._state = self.model.start(self.image)

    def replay(self) -> None:
        """Predict again from the first click (a fresh model state), e.g. after ``undo``."""
        clicks = self.clicks
        self._restart()
        self._clear()
        for k in range(len(clicks)):
            self._push(*self._predict(clicks[: k + 1]))

    def undo(self) -> Click | None:
        """Remove the last click (and its prediction); None when there is none."""
        click = self.record.undo()
        if click is None:
            return None
        if self._state is None:  # a stateless model: the earlier maps are still valid
            for kept in (self.probs, self.iou, self.seconds):
                kept.pop()
        else:  # a model state (RITM's zoom-in box) carries the undone click: rebuild it
            self.replay()
        return click

    def reset(self) -> None:
        """Remove every click."""
        self.record.reset()
        self._clear()
        self._restart()

    def load(self, record: ClickRecord) -> None:
        """Replace the clicks with ``record``'s (made on this mask) and predict them all.

        Raises RecordError when the record was made on another image or mask (size, digest).
        """
        record.check_mask(self.gt, f"the mask of {self.name!r}")
        old = self.record
        self.record = ClickRecord(
            image=record.image, shape=record.shape, mask_digest=record.mask_digest,
            model=old.model, clicks=list(record.clicks), times=list(record.times),
            settings=self.settings, example=record.example, note=record.note,
        )  # fmt: skip
        self.replay()

    def close(self) -> None:
        """Release the model state."""
        self.model.finish(self._state)
        self._state = None

    # -- views ---------------------------------------------------------------------------------

    def overlay_png(self) -> bytes:
        """PNG of the image with the prediction and the clicks (``overlay_rgb``)."""
        return rgb_png(overlay_rgb(self.image, self.pred, self.record.clicks))

    def confusion_png(self) -> bytes:
        """PNG of the TP/TN/FP/FN map of the current prediction, with the clicks."""
        return confusion_png(self.pred, self.gt, self.ignore, self.record.clicks)

    def status(self) -> str:
        """'model on image: 3 clicks (2+ 1-): IoU 0.812 (after each click: 0.412, 0.733, 0.812);
        last prediction 0.05 s; last click - at (row 5, col 9)', or what to do first."""
        if not self.probs:
            return (f"{self.record.model} on {self.image_id}: no click yet; click on the object "
                    "(left: positive, right or shift: negative)")  # fmt: skip
        n, n_pos = len(self.probs), sum(c.positive for c in self.record.clicks)
        history = ", ".join(f"{v:.3f}" for v in self.iou)
        last = self.record.clicks[-1]
        tail = f"; last click {'+' if last.positive else '-'} at (row {last.row}, col {last.col})"
        tail += "; no error left" if self.errors() == 0 else ""
        return (f"{self.record.model} on {self.image_id}: {n} click{'s' if n > 1 else ''} "
                f"({n_pos}+ {n - n_pos}-): IoU {self.iou[-1]:.3f} (after each click: {history}); "
                f"last prediction {self.seconds[-1]:.2f} s{tail}")  # fmt: skip

    def compare(self, robots: Sequence[str] = ROBOT_NAMES, seed: int = 0) -> Comparison:
        """The robots on this image and model for as many clicks as the person made."""
        if not self.record.clicks:
            raise DemoError("no clicks yet: click on the image first, then compare")
        return compare_with_robots(self.model, self.image, self.gt, self.record, robots=robots,
                                   seed=seed, key=self.name, ignore=self.ignore,
                                   threshold=self.threshold)  # fmt: skip


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


def robot_names() -> list[str]:
    """Every registered robot name (the paper's seven, then variants)."""
    return list(ROBOTS)


__all__ = [
    "DemoError",
    "DemoResult",
    "MAX_PIXELS",
    "OUTPUT_FILES",
    "TIMINGS_FILE",
    "HumanSession",
    "build_model",
    "check_inputs",
    "check_out_dir",
    "decode_image_bytes",
    "decode_mask_bytes",
    "load_inputs",
    "overlay_rgb",
    "fig_compare",
    "fig_curves",
    "fig_verdict",
    "fig_panel",
    "figure_png",
    "noc_values",
    "render_outputs",
    "robot_names",
    "run_demo",
    "scores_csv",
    "scores_table",
    "summary_line",
    "timings_csv",
    "write_outputs",
]
