"""The interaction loop: the paper's Algorithm 1.

    y = 0; z = 0; clicks = []
    for k in 1..K:
        c = robot(y > t, gt, clicks)        # END (None) when no error is left
        clicks.append(c)
        y = model(image, clicks, z); z = y  # the previous probability map is the auxiliary input
        score(y > t, gt)

After END the last scores are carried forward, so every curve has ``max_clicks`` points.

A model-aware robot (``robot.needs_model``: ``rbest``, ``rworst``) gets one more argument,
``lookahead``: a ``Lookahead`` that predicts, in one batch, what the model would output after
each candidate click in the trajectory's current state (its clicks, previous map and model
state), and returns their IoU. The robot's chosen click then takes that prediction as its step,
so a model-aware click costs one batch of candidates and nothing more. The model-free robots
never see the model.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iislib.core.clicks import Click
from iislib.core.metrics import SCORE_NAMES, click_scores, scores
from iislib.core.model import IISModel
from iislib.core.robots import Robot, robot_name


def make_rng(seed: int, *keys: str) -> np.random.Generator:
    """An independent generator for (seed, *keys), e.g. (seed, image name, robot name).

    Derived through ``np.random.SeedSequence`` from stable hashes of the keys, so the clicks on one
    image do not depend on which images ran before it, in which order, or in which process.
    """
    words = [int(seed)]
    for key in keys:
        words.append(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def check_max_clicks(max_clicks: object) -> int:
    """``max_clicks`` as an int >= 1, or ValueError naming it (2.5, "3", True and 0 are refused)."""
    if isinstance(max_clicks, (bool, np.bool_)) or not isinstance(max_clicks, (int, np.integer)):
        raise ValueError(
            f"max_clicks must be a whole number >= 1, got {max_clicks!r} "
            f"({type(max_clicks).__name__})"
        )
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}")
    return int(max_clicks)


def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` as an array, or ValueError when it holds NaN or inf.

    Models do not fail on such values: they return a map (random_walker scored 0.157 and
    ritm-compact 0.0 on an image with one NaN), so the number would be reported as a result.
    """
    a = np.asarray(image)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"image must be uint8 or float, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating):
        bad = a.size - int(np.count_nonzero(np.isfinite(a)))
        if bad:
            raise ValueError(
                f"image has {bad} NaN or infinite value(s); every pixel must be finite"
            )
    return a


@dataclass
class Trajectory:
    """The outcome of one run of Algorithm 1 on one image.

    Attributes:
        clicks: the clicks placed, oldest first (fewer than ``max_clicks`` after END).
        scores: score name (``metrics.SCORE_NAMES``: the six metrics and boundary_iou) -> float64
            (max_clicks,); entry k-1 scores the prediction after click k.
        ended_at: number of clicks placed before END, or None if the robot never ended.
        probs: float32 (max_clicks, H, W) probability maps when requested, else None.
        model_seconds, robot_seconds: float64 (max_clicks,) wall time per step (0 after END).
    """

    clicks: list[Click]
    scores: dict[str, np.ndarray]
    max_clicks: int
    ended_at: int | None = None
    probs: np.ndarray | None = None
    model_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    robot_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def iou(self) -> np.ndarray:
        """float64 (max_clicks,) IoU after each click."""
        return self.scores["iou"]


class Lookahead:
    """What a model-aware robot may ask at one step of one trajectory: the IoU the model would
    reach after each candidate click, all predicted in one ``predict_batch`` call.

    Each candidate is predicted exactly as the loop would predict it as the trajectory's next
    click: the trajectory's clicks plus the candidate, the same previous probability map
    (RITM's "previous mask" input, the random walker's prior) and a copy of the trajectory's
    model state (``copy.deepcopy``; e.g. the zoom-in box), so that no candidate changes the
    trajectory. ``take(click)`` hands the loop the prediction and the state of the candidate
    chosen; the other states are closed.

    Args:
        model, image, gt, ignore, threshold: as in ``run_many``.
        clicks: the trajectory's clicks so far; prev: its last probability map (None before
            the first click); state: its model state (None for a model that keeps none).
    """

    def __init__(self, model: IISModel, image: np.ndarray, gt: np.ndarray,
                 clicks: Sequence[Click], prev: np.ndarray | None, state: Any,
                 threshold: float, ignore: np.ndarray | None) -> None:  # fmt: skip
        self.model, self.image, self.gt, self.ignore = model, image, gt, ignore
        self.clicks, self.prev, self.state, self.threshold = list(clicks), prev, state, threshold
        self.seconds = 0.0  # model time spent on candidates
        self.calls = 0
        self._outcomes: dict[Click, tuple[np.ndarray, Any, dict[str, float]]] = {}

    def __call__(self, candidates: Sequence[Click]) -> np.ndarray:
        """float64 (len(candidates),) IoU after each candidate (thresholded at ``threshold``)."""
        cands = list(candidates)
        if not cands:
            return np.zeros(0)
        self.close()  # a second call replaces the first one's outcomes
        n = len(cands)
        kw: dict = {}
        if self.state is not None:
            kw["states"] = [copy.deepcopy(self.state) for _ in range(n)]
        t0 = time.perf_counter()
        probs = self.model.predict_batch(
            [self.image] * n, [[*self.clicks, c] for c in cands], [self.prev] * n, **kw
        )
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        states = kw.get("states", [None] * n)
        iou = np.zeros(n)
        for j, (c, prob, st) in enumerate(zip(cands, probs, states, strict=True)):
            sc = scores(prob > self.threshold, self.gt, self.ignore).as_dict()
            iou[j] = sc["iou"]
            if c in self._outcomes:  # a duplicate candidate: keep its first outcome
                if st is not None:
                    self.model.finish(st)
                continue
            self._outcomes[c] = (prob, st, sc)
        return iou

    def take(self, click: Click | None) -> tuple[np.ndarray, Any, dict[str, float]] | None:
        """(probability map, model state, scores) of ``click`` when it was a candidate, else
        None; every other candidate's state is closed."""
        outcome = self._outcomes.pop(click, None)
        self.close()
        return outcome

    def close(self) -> None:
        """Close the states of the candidates not taken."""
        for _, st, _ in self._outcomes.values():
            if st is not None:
                self.model.finish(st)
        self._outcomes.clear()


def run(
    model: IISModel,
    robot: Robot,
    image: np.ndarray,
    gt: np.ndarray,
    *,
    max_clicks: int = 20,
    seed: int = 0,
    ignore: np.ndarray | None = None,
    threshold: float = 0.5,
    key: str = "",
    keep_probs: bool = False,
    rng: np.random.Generator | None = None,
) -> Trajectory:
    """Run Algorithm 1: ``robot`` clicks, ``model`` predicts, ``max_clicks`` times.

    Args:
        model: an ``IISModel`` (``predict``, and ``start``/``finish`` for its state).
        robot: a robot (see ``iislib.core.robots``).
        image: uint8 (H, W, 3), or float32 (H, W, 3) in [0, 1]; NaN or inf raise ValueError.
        gt: bool (H, W) ground truth.
        max_clicks: number of steps (an int >= 1); the scores always have this length.
        seed, key: the generator is ``make_rng(seed, key, robot name)``; pass the image name as
            ``key`` so that each image gets its own independent stream.
        ignore: bool (H, W) pixels that are neither scored nor clickable, or None.
        threshold: the robot and the scores see ``prob > threshold``.
        keep_probs: keep every probability map (memory: max_clicks x H x W float32).
        rng: use this generator instead of deriving one.

    Returns:
        Trajectory.
    """
    if rng is None:
        rng = make_rng(seed, key, robot_name(robot))
    return run_many(
        model,
        [(robot, rng)],
        image,
        gt,
        max_clicks=max_clicks,
        ignore=ignore,
        threshold=threshold,
        keep_probs=keep_probs,
    )[0]


def run_many(
    model: IISModel,
    robots: Sequence[tuple[Robot, np.random.Generator]],
    image: np.ndarray,
    gt: np.ndarray,
    *,
    max_clicks: int = 20,
    ignore: np.ndarray | None = None,
    threshold: float = 0.5,
    keep_probs: bool = False,
) -> list[Trajectory]:
    """Several trajectories on one image in lockstep, one batched model call per step.

    Each (robot, rng) pair runs its own Algorithm 1; the results are the same as separate
    ``run`` calls with those generators, but networks see one batch of active trajectories per
    step (``model.predict_batch``). The model time of a step is shared equally in the batch.
    Each trajectory has its own model state (``model.start(image)``, e.g. RITM's zoom-in box),
    passed back with each of its calls and closed (``model.finish``) when the run ends.
    """
    max_clicks = check_max_clicks(max_clicks)
    gt = np.asarray(gt)
    if gt.dtype != np.bool_ or gt.ndim != 2:
        raise ValueError(f"gt must be a bool (H, W) mask, got dtype {gt.dtype}, shape {gt.shape}")
    image = check_image(image)
    if image.shape[:2] != gt.shape:
        raise ValueError(f"image is {image.shape[:2]} but gt is {gt.shape}")

    n = len(robots)
    out = [{m: np.zeros(max_clicks) for m in SCORE_NAMES} for _ in range(n)]
    model_s = np.zeros((n, max_clicks))
    robot_s = np.zeros((n, max_clicks))
    probs = [
        np.zeros((max_clicks, *gt.shape), np.float32) if keep_probs else None for _ in range(n)
    ]
    clicks: list[list[Click]] = [[] for _ in range(n)]
    prev: list[np.ndarray | None] = [None] * n
    pred = [np.zeros(gt.shape, dtype=bool) for _ in range(n)]
    empty = click_scores(pred[0], gt, ignore)
    last = [empty] * n
    ended_at: list[int | None] = [None] * n
    states = [model.start(image) for _ in range(n)]  # one per trajectory, closed below

    def record(i: int, k: int, prob: np.ndarray) -> None:
        """Trajectory ``i``'s prediction ``prob`` after click ``k + 1``, with every score."""
        prev[i], pred[i] = prob, prob > threshold
        last[i] = click_scores(pred[i], gt, ignore)
        for m in SCORE_NAMES:
            out[i][m][k] = last[i][m]
        if probs[i] is not None:
            probs[i][k] = prob

    try:
        for k in range(max_clicks):
            active = []
            for i, (robot, rng) in enumerate(robots):
                if ended_at[i] is not None:
                    continue
                look = None
                t0 = time.perf_counter()
                if getattr(robot, "needs_model", False):
                    look = Lookahead(model, image, gt, clicks[i], prev[i], states[i], threshold,
                                     ignore)  # fmt: skip
                    click = robot(pred[i], gt, clicks[i], rng, ignore=ignore, lookahead=look)
                else:
                    click = robot(pred[i], gt, clicks[i], rng, ignore=ignore)
                robot_s[i, k] = time.perf_counter() - t0
                outcome = None
                if look is not None:
                    robot_s[i, k] -= look.seconds
                    model_s[i, k] = look.seconds
                    outcome = look.take(click)  # None at END: every candidate closed
                if click is None:
                    ended_at[i] = k
                    for m in SCORE_NAMES:
                        out[i][m][k:] = last[i][m]
                    if probs[i] is not None and k > 0:
                        probs[i][k:] = probs[i][k - 1]
                    continue
                clicks[i].append(click)
                if outcome is None:
                    active.append(i)
                    continue
                # The robot chose one of its candidates: their prediction is this step's (scored
                # again in full: the lookahead computes the six scores only, not boundary_iou).
                prob, state, _ = outcome
                if state is not None:
                    model.finish(states[i])
                    states[i] = state
                record(i, k, prob)
            if not active:
                if all(e is not None for e in ended_at):
                    break
                continue
            t0 = time.perf_counter()
            # A model that keeps no state (most do) is called without one: its predict and
            # predict_batch need not know the argument.
            kw: dict = {}
            if len(active) == 1:
                i = active[0]
                if states[i] is not None:
                    kw["state"] = states[i]
                new = [model.predict(image, clicks[i], prev[i], **kw)]
            else:
                if any(states[i] is not None for i in active):
                    kw["states"] = [states[i] for i in active]
                new = model.predict_batch(
                    [image] * len(active),
                    [clicks[i] for i in active],
                    [prev[i] for i in active],
                    **kw,
                )
            dt = (time.perf_counter() - t0) / len(active)
            for i, prob in zip(active, new, strict=True):
                model_s[i, k] = dt
                record(i, k, prob)
    finally:
        for state in states:
            model.finish(state)
    return [
        Trajectory(
            clicks=clicks[i],
            scores=out[i],
            max_clicks=max_clicks,
            ended_at=ended_at[i],
            probs=probs[i],
            model_seconds=model_s[i],
            robot_seconds=robot_s[i],
        )
        for i in range(n)
    ]
