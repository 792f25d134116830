"""A person's clicks beside the robots': same image, same model, same number of clicks.

    cmp = compare_with_robots(model, image, gt, record, key="berkeley/42049")
    cmp.iou          # IoU after each click: the person's replayed run, then each robot's own run
    cmp.per_click    # per click of the person: distance to each deterministic robot's click,
                     # percentile of the person's pixel under each random robot's sampling map
    cmp.summary()    # one row per robot: how close it came to the person

For each click k of the person's sequence, the robots are asked at the state the person had
before that click: the same earlier clicks and the same prediction. A deterministic robot
(rgto99, rritm) answers with one click: its distance in pixels to the person's click k. A
random robot (r01-r05) answers with its sampling map, a probability per pixel: the person's
pixel gets its mid-rank percentile (``iislib.core.human.mass_percentile``). Separately, each
robot runs its own Algorithm 1 for as many clicks as the person made (random robots seeded as in
the sweep: ``make_rng(seed, key, robot)``), which gives the IoU curves to compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from iislib.core.clicks import Click
from iislib.core.human import (
    ClickRecord,
    RecordError,
    ReplayRobot,
    mass_percentile,
    pixel_distance,
)
from iislib.core.loop import Trajectory, make_rng, run, run_many
from iislib.core.model import IISModel
from iislib.core.robots import ROBOT_NAMES, get_robot

HUMAN = "you"
"""The person's column in ``Comparison.iou`` and label in figures."""

PER_CLICK_COLUMNS: tuple[str, ...] = (
    "click", "robot", "random", "human_row", "human_col", "human_positive",
    "robot_row", "robot_col", "robot_positive", "distance", "percentile",
)  # fmt: skip


@dataclass
class Comparison:
    """The person's run and the robots' runs on one image with one model.

    Attributes:
        clicks: the person's clicks (oldest first).
        human: the person's run replayed through ``loop.run`` (``probs`` kept: (K, H, W)).
        robots: robot name -> its own run of K clicks.
        iou: float64 DataFrame, index ``click`` 1..K, columns ``HUMAN`` then the robots.
        per_click: one row per (click of the person, robot), columns ``PER_CLICK_COLUMNS``:
            ``distance`` (pixels from the person's click to the deterministic robot's click at
            the same state; NaN for random robots and when the robot would stop, END) and
            ``percentile`` (0-100, the person's pixel under the random robot's sampling map;
            NaN for deterministic robots and when the map has no mass).
        seed: the seed of the random robots.
        record: the click record, when one was given.
    """

    clicks: list[Click]
    human: Trajectory
    robots: dict[str, Trajectory]
    iou: pd.DataFrame
    per_click: pd.DataFrame
    seed: int
    record: ClickRecord | None = None

    @property
    def k(self) -> int:
        """K, the number of clicks compared."""
        return len(self.clicks)

    def summary(self) -> pd.DataFrame:
        """One row per robot (index ``robot``): ``random``, ``mean_distance`` (deterministic
        robots: mean pixel distance to the person's clicks, over the clicks where the robot
        would click), ``mean_percentile`` (random robots), ``iou_gap`` (mean |IoU of the robot's
        run - IoU of the person's run| over the K clicks) and both final IoUs."""
        rows = []
        for name, g in self.per_click.groupby("robot", sort=False):
            gap = float(np.mean(np.abs(self.iou[name] - self.iou[HUMAN])))
            rows.append({
                "robot": name,
                "random": bool(g["random"].iloc[0]),
                "mean_distance": float(g["distance"].mean()) if g["distance"].notna().any() else math.nan,
                "mean_percentile": float(g["percentile"].mean()) if g["percentile"].notna().any() else math.nan,
                "iou_gap": gap,
                "final_iou": float(self.iou[name].iloc[-1]),
                "final_iou_you": float(self.iou[HUMAN].iloc[-1]),
            })  # fmt: skip
        return pd.DataFrame(rows).set_index("robot")


def as_record_clicks(
    clicks: ClickRecord | Sequence[Click],
) -> tuple[ClickRecord | None, list[Click]]:
    """(record or None, clicks) from a record or a click sequence."""
    if isinstance(clicks, ClickRecord):
        return clicks, list(clicks.clicks)
    return None, [Click(int(c[0]), int(c[1]), bool(c[2])) for c in clicks]


def states_before(traj: Trajectory, gt: np.ndarray, threshold: float) -> list[np.ndarray]:
    """bool (H, W) prediction before each click of ``traj``: all False before the first one,
    then ``probs[k - 1] > threshold`` (``traj`` must keep its probability maps)."""
    if traj.probs is None:
        raise ValueError("the trajectory must keep its probability maps (keep_probs=True)")
    preds = [np.zeros(np.asarray(gt).shape, bool)]
    preds += [traj.probs[k] > threshold for k in range(len(traj.clicks) - 1)]
    return preds


def compare_with_robots(
    model: IISModel,
    image: np.ndarray,
    gt: np.ndarray,
    clicks: ClickRecord | Sequence[Click],
    *,
    robots: Sequence[str] = ROBOT_NAMES,
    seed: int = 0,
    key: str = "image",
    ignore: np.ndarray | None = None,
    threshold: float = 0.5,
) -> Comparison:
    """Compare a person's click sequence with the robots on one image and model.

    Args:
        model: the model (already wrapped with its inference settings).
        image: uint8 (H, W, 3) (or float in [0, 1]), as the model sees it.
        gt: bool (H, W) ground truth; a ``ClickRecord`` must have been made on it (digest).
        clicks: a ``ClickRecord`` or a sequence of ``Click`` (row, col, positive), K >= 1.
        robots: robot names (default the paper's seven).
        seed, key: the random robots' generators are ``make_rng(seed, key, robot)``, as in
            ``loop.run`` and the sweep (pass the image's name as ``key``).
        ignore: bool (H, W) pixels neither scored nor clickable, or None.
        threshold: the robots and the scores see ``prob > threshold``.

    Returns:
        Comparison.

    Raises:
        ValueError (RecordError): no clicks, a record made on another mask, a click outside
            the image; ValueError for an unknown robot name.
    """
    record, seq = as_record_clicks(clicks)
    if not seq:
        raise RecordError("no clicks to compare: click on the image first")
    gt = np.asarray(gt)
    replay = ReplayRobot(record if record is not None else seq)
    fns = {name: get_robot(name) for name in robots}
    k = len(seq)
    human = run(model, replay, image, gt, max_clicks=k, ignore=ignore, threshold=threshold,
                keep_probs=True, rng=np.random.default_rng(0))  # fmt: skip
    trajs = run_many(
        model, [(fn, make_rng(seed, key, name)) for name, fn in fns.items()], image, gt,
        max_clicks=k, ignore=ignore, threshold=threshold,
    )  # fmt: skip
    runs = dict(zip(fns, trajs, strict=True))
    iou = pd.DataFrame({HUMAN: human.iou, **{n: t.iou for n, t in runs.items()}},
                       index=pd.RangeIndex(1, k + 1, name="click"))  # fmt: skip

    rows = []
    placed = human.clicks  # fewer than k when the prediction became perfect first
    for i, (c, pred) in enumerate(zip(placed, states_before(human, gt, threshold), strict=True)):
        before = placed[:i]
        for name, fn in fns.items():
            row = dict(click=i + 1, robot=name, random=bool(fn.random), human_row=c.row,
                       human_col=c.col, human_positive=c.positive, robot_row=-1, robot_col=-1,
                       robot_positive=None, distance=math.nan, percentile=math.nan)  # fmt: skip
            if fn.random:
                p = fn.sampling_map(pred, gt, before, ignore=ignore)
                row["percentile"] = mass_percentile(p, c.row, c.col)
            else:
                # deterministic: the generator is never read; a fixed one keeps the call valid
                r = fn(pred, gt, before, np.random.default_rng(0), ignore=ignore)
                if r is not None:
                    row.update(robot_row=r.row, robot_col=r.col, robot_positive=r.positive,
                               distance=pixel_distance(c, r))  # fmt: skip
            rows.append(row)
    per_click = pd.DataFrame(rows, columns=list(PER_CLICK_COLUMNS))
    return Comparison(clicks=seq, human=human, robots=runs, iou=iou, per_click=per_click,
                      seed=int(seed), record=record)  # fmt: skip


__all__ = ["HUMAN", "PER_CLICK_COLUMNS", "Comparison", "compare_with_robots", "states_before"]
