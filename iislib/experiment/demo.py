"""The demo's runs: one image and one mask, any model and robot, K clicks, the scores per click.

This is the paper's online demo as a library, without its pictures: pick an image and its
ground-truth mask, a model and a robot (the simulated user); the robot clicks ``clicks`` times
(Algorithm 1, ``iislib.core.loop``) and the run keeps every score (``metrics.SCORE_NAMES``: the
paper's six and Boundary IoU) and every probability map after each click.

    result = run_demo(image, gt, "random_walker", "rritm", clicks=20)
    print(summary_line(result))   # final IoU, NoC@85, NoC@90
    scores_csv([result])          # the per-click table, without wall times

Images are limited to ``MAX_PIXELS`` (4 megapixels): a 6000x6000 photo took 153 s and 6 GB for
two clicks of random_walker, and ritm-compact ran out of memory on it. Larger inputs are refused
with a message giving the longer side to downscale to (``load_inputs(..., max_side=N)``, ``iislib
demo --max-side N``). ``scores_csv`` holds no wall times, so the same run gives the same bytes;
``timings_csv`` has them.

The pictures are drawn by ``iislib.drawing.demo_figures``, a person's clicking session is
``iislib.experiment.session.HumanSession``, and ``iislib.apps.demo`` (files of ``iislib demo``)
and ``iislib.apps.demo_app`` (the widgets) wire them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from iislib.core.loop import Trajectory, check_max_clicks, run
from iislib.core.metrics import noc
from iislib.core.model import IISModel
from iislib.core.robots import ENVELOPE_NAMES, ROBOTS, Robot, get_robot, robot_name
from iislib.experiment.data import (
    DataError,
    Sample,
    apply_rule,
    check_pair,
    check_pixels,
    get_rule,
    image_rgb,
    image_size,
    load_pair,
    mask_from_array,
    mask_pixels,
    mask_values,
    open_image,
)
from iislib.experiment.sweep import trajectory_frame
from iislib.models import NEEDS_CHECKPOINT, available_models, get_model
from iislib.models.settings import DEMO_SETTINGS, get_settings

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
        scores: one row per click (``click`` 1..K): row, col, positive (-1 after END), the
            scores (``SCORE_NAMES``), model_seconds, robot_seconds, and the
            model/robot/image/seed/settings ids.
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

    def check_click(self, k: int) -> int:
        """``k`` as an int when 1 <= k <= K, else ValueError naming the range."""
        if not 1 <= int(k) <= self.clicks:
            raise ValueError(f"click k must be in 1..{self.clicks}, got {k}")
        return int(k)


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


MASK_RULES: dict[str, str] = {
    "binary": "binary: two values (a mask of more is refused, naming them)",
    "threshold": "threshold: > 128 is foreground (a JPEG or antialiased mask)",
    "nonzero": "nonzero: every non-zero label is the object (a label mask)",
    "grabcut": "grabcut: >= 192 is foreground, 65-191 ignored (a trimap, as GrabCut's)",
}
"""The mask rules the demo page offers (``iislib.experiment.data.MaskRule``; the command line
also takes ``--object LABEL``), with the text of its selector."""


def read_mask_bytes(
    data: bytes, rule: str = "binary", what: str = "mask", max_pixels: int | None = MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mask file bytes -> (bool gt (H, W), bool ignore (H, W) or None) by a mask ``rule``.

    ``binary`` (the default) is ``decode_mask_bytes`` + ``mask_from_array``: at most two values,
    channel mean < 128 is background, 0/1 labels; the other rules are those of
    ``load_pair(..., mask_rule=rule)`` on the file's values (upright). A refusal is a DataError
    naming ``what``; size and decompression bombs are checked as in ``decode_image_bytes``.
    """
    mask_rule = get_rule(rule)
    if mask_rule is None or mask_rule.name == "binary":
        return mask_from_array(decode_mask_bytes(data, what, max_pixels)), None
    with open_image(data, what) as im:
        check_pixels(*im.size, max_pixels, what)
        values = mask_values(im, what, mask_rule.reads_labels)
    return apply_rule(mask_rule, values, what)


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
    image: np.ndarray, gt: np.ndarray, what: str = "input", max_pixels: int | None = MAX_PIXELS,
    ignore: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(uint8 (H, W, 3) image, bool (H, W) mask) ready for the loop, or a DataError saying why.

    ``gt`` may be bool, or any image array: then the demo's rule applies (channel mean < 128 is
    background, 0/1 labels: 1 is foreground; ``iislib.experiment.data.mask_from_array``). Images over
    ``max_pixels`` are refused (None: no limit). ``ignore``: bool (H, W) pixels that the
    emptiness checks leave out (a rule's void), or None.
    """
    img = as_image(image)
    check_pixels(img.shape[1], img.shape[0], max_pixels, what)
    mask = mask_from_array(gt)
    check_pair(img, mask, ignore, what)
    return img, mask


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


def run_envelope(
    image: np.ndarray,
    gt: np.ndarray,
    model: str | IISModel,
    clicks: int = 20,
    seed: int = 0,
    **kwargs,
) -> tuple[DemoResult, DemoResult]:
    """(rworst run, rbest run) of ``model`` on one image: the band of honest users around its
    curves (``iislib.core.robots.ENVELOPE_NAMES``, greedy one step ahead; each click costs N + 7
    predictions in one batch). Keyword arguments as ``run_demo`` (checkpoint, ignore, settings,
    name, max_pixels)."""
    best, worst = ENVELOPE_NAMES
    return (run_demo(image, gt, model, worst, clicks, seed, **kwargs),
            run_demo(image, gt, model, best, clicks, seed, **kwargs))  # fmt: skip


def envelope_line(envelope: tuple[DemoResult, DemoResult]) -> str:
    """'envelope of model on name (rworst to rbest), IoU after click 1: 0.41 to 0.77, ...'."""
    worst, best = envelope
    lo, hi = worst.trajectory.scores["iou"], best.trajectory.scores["iou"]
    ks = sorted({1, min(5, len(lo)), len(lo)})
    parts = ", ".join(f"click {k}: {lo[k - 1]:.3f} to {hi[k - 1]:.3f}" for k in ks)
    return (f"envelope of {worst.model} on {worst.name} ({worst.robot} to {best.robot}), IoU "
            f"after {parts} ({worst.seconds + best.seconds:.1f} s)")  # fmt: skip


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


def robot_names() -> list[str]:
    """Every registered robot name (the paper's seven, then variants)."""
    return list(ROBOTS)


__all__ = [
    "DemoError",
    "DemoResult",
    "ID_COLUMNS",
    "MAX_PIXELS",
    "NOC_LEVELS",
    "TIMING_COLUMNS",
    "as_image",
    "build_model",
    "check_inputs",
    "decode_image_bytes",
    "decode_mask_bytes",
    "load_inputs",
    "noc_values",
    "resolve_robot",
    "robot_names",
    "envelope_line",
    "run_demo",
    "run_envelope",
    "scores_csv",
    "scores_table",
    "summary_line",
    "timings_csv",
]
