"""rbest and rworst: model-aware, honest robots, and the loop's lookahead that serves them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iislib.core.clicks import Click
from iislib.core.loop import Lookahead, make_rng, run, run_many
from iislib.core.model import IISModel
from iislib.core.robots import (
    DEFAULT_CANDIDATES,
    ENVELOPE_NAMES,
    ROBOT_NAMES,
    ROBOTS,
    EnvelopeRobot,
    get_robot,
)
from iislib.experiment.sweep import robot_key
from iislib.models.predictors import ZoomInFlipPredictor
from iislib.models.random_walker import RandomWalker
from tests.conftest import synthetic_pair

DETERMINISTIC = [r for r in ROBOT_NAMES if not ROBOTS[r].random]


class Disks(IISModel):
    """A cheap deterministic model: a disk of radius 6 around each click, positive clicks add,
    negative ones remove, drawn over half the previous map (so the previous map matters)."""

    name = "disks"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict_batch(self, images, clicks, prevs, states=None):
        self.batches.append(len(images))
        return super().predict_batch(images, clicks, prevs, states)

    def _predict(self, image, clicks, prev):
        out = 0.5 * prev
        rr, cc = np.indices(prev.shape)
        for c in clicks:
            disk = (rr - c.row) ** 2 + (cc - c.col) ** 2 <= 36
            out[disk] = 1.0 if c.positive else 0.0
        return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# registry and cache key


def test_registry_and_cache_key():
    assert ENVELOPE_NAMES == ("rbest", "rworst")
    best, worst = get_robot("rbest"), get_robot("rworst")
    assert best.best and not worst.best and best.needs_model and best.random
    assert best.n_candidates == DEFAULT_CANDIDATES == 16
    assert not any(ROBOTS[r].needs_model for r in ROBOT_NAMES)  # the seven stay model-free
    assert "rbest" not in ROBOTS
    assert robot_key("rbest") == robot_key(best) == "rbest@1:n16"
    assert robot_key(get_robot("rworst", n_candidates=4)) == "rworst@1:n4"
    assert robot_key("r04") == "r04@1" and robot_key("rritm") == "rritm"  # unchanged
    with pytest.raises(TypeError, match="n_candidates"):
        get_robot("rbest", n=3)
    with pytest.raises(ValueError, match="n_candidates"):
        EnvelopeRobot(best=True, n_candidates=-1)


def test_called_without_the_model_is_a_clear_error():
    _, gt = synthetic_pair()
    with pytest.raises(TypeError, match="needs the model"):
        get_robot("rbest")(np.zeros_like(gt), gt, [], np.random.default_rng(0))


# ----------------------------------------------------------------------------------------------
# small exact cases


def test_one_error_pixel_is_the_only_candidate():
    gt = np.zeros((5, 6), bool)
    gt[2, 3] = True
    cands = get_robot("rbest").candidates(np.zeros_like(gt), gt, [], np.random.default_rng(0))
    assert cands == [Click(2, 3, True)]  # every robot and draw proposes it; kept once


def test_random_candidates_are_r04_draws():
    """Each draw is the click r04 makes with the same uniform number."""
    from iislib.core.robots import r04_draws

    _, gt = synthetic_pair()
    pred = np.zeros_like(gt)
    pred[5:15, 5:40] = True
    draws = r04_draws(gt ^ pred, 5, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    singles = []
    for _ in range(5):
        c = ROBOTS["r04"](pred, gt, [], rng)
        singles.append((c.row, c.col))
    assert draws == singles


def test_end_asks_nothing_of_the_model():
    gt = np.zeros((5, 6), bool)
    gt[1:3, 1:3] = True
    asked = []
    for name in ENVELOPE_NAMES:
        click = get_robot(name)(gt.copy(), gt, [], np.random.default_rng(0),
                                lookahead=lambda c: asked.append(c))  # fmt: skip
        assert click is None
    assert asked == []


def test_choice_and_ties_follow_the_candidate_order():
    _, gt = synthetic_pair()
    pred = np.zeros_like(gt)
    robot = get_robot("rbest")
    cands = robot.candidates(pred, gt, [], make_rng(0, "x"))
    assert len(cands) >= 2
    for name in ENVELOPE_NAMES:
        r = get_robot(name)
        # equal scores: the first candidate wins, for both
        assert r(pred, gt, [], make_rng(0, "x"), lookahead=lambda c: np.ones(len(c))) == cands[0]
        # the scores are the candidate's index: rbest takes the last, rworst the first
        pick = r(pred, gt, [], make_rng(0, "x"), lookahead=lambda c: np.arange(len(c)))
        assert pick == (cands[-1] if name == "rbest" else cands[0])
    # the seven robots' clicks come first, in the paper's order (r01's only when honest)
    rng = make_rng(0, "x")
    proposed = [ROBOTS[n](pred, gt, [], rng) for n in ROBOT_NAMES]
    honest = [c for c in proposed if (gt & ~pred)[c.row, c.col]]
    assert cands[: len(dict.fromkeys(honest))] == list(dict.fromkeys(honest))


# ----------------------------------------------------------------------------------------------
# honesty, determinism, order independence


@st.composite
def _state(draw):
    h, w = draw(st.integers(3, 14)), draw(st.integers(3, 14))
    gt = draw(arrays(bool, (h, w)))
    pred = draw(arrays(bool, (h, w)))
    ignore = draw(st.none() | arrays(bool, (h, w)))
    n = draw(st.integers(0, 3))
    clicks = [Click(draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1)), draw(st.booleans()))
              for _ in range(n)]  # fmt: skip
    return pred, gt, ignore, clicks, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_state(), st.integers(0, 20))
def test_every_candidate_and_every_choice_is_honest(state, n):
    pred, gt, ignore, clicks, seed = state
    false = (gt ^ pred) & (~ignore if ignore is not None else True)
    robot = EnvelopeRobot(best=bool(seed % 2), n_candidates=n)
    cands = robot.candidates(pred, gt, clicks, np.random.default_rng(seed), ignore=ignore)
    assert len(cands) == len(set(cands)) <= 7 + n
    assert (len(cands) == 0) == (not false.any())
    for c in cands:
        assert false[c.row, c.col] and c.positive == gt[c.row, c.col]
    scores = np.random.default_rng(seed + 1).random(len(cands))
    pick = robot(pred, gt, clicks, np.random.default_rng(seed), ignore=ignore,
                 lookahead=lambda c: scores)  # fmt: skip
    if cands:
        best = cands[int(np.argmax(scores) if robot.best else np.argmin(scores))]
        assert pick == best
    else:
        assert pick is None


@pytest.mark.parametrize("name", ENVELOPE_NAMES)
def test_every_click_of_a_trajectory_is_honest(name):
    image, gt = synthetic_pair()
    ignore = np.zeros_like(gt)
    ignore[:, :4] = True
    model = Disks()
    traj = run(model, get_robot(name), image, gt, max_clicks=8, key="a", ignore=ignore,
               keep_probs=True)  # fmt: skip
    pred = np.zeros_like(gt)
    for k, c in enumerate(traj.clicks):
        assert ((gt ^ pred) & ~ignore)[c.row, c.col] and c.positive == gt[c.row, c.col]
        pred = traj.probs[k] > 0.5
    # one batch of at most N + 7 candidates per click, and no extra prediction for the choice
    assert len(model.batches) == len(traj.clicks)
    assert all(1 <= b <= DEFAULT_CANDIDATES + 7 for b in model.batches)


def test_seeded_and_independent_of_order_and_company():
    image, gt = synthetic_pair()
    model = Disks()
    alone = {n: run(model, get_robot(n), image, gt, max_clicks=6, seed=3, key="img")
             for n in ENVELOPE_NAMES}  # fmt: skip
    again = run(model, get_robot("rbest"), image, gt, max_clicks=6, seed=3, key="img")
    assert again.clicks == alone["rbest"].clicks
    other = run(model, get_robot("rbest"), image, gt, max_clicks=6, seed=4, key="img")
    assert other.clicks != alone["rbest"].clicks  # the seed matters
    for names in (["rworst", "r04", "rbest", "rgto99"], ["rbest", "r01", "rworst"]):
        trajs = run_many(model, [(get_robot(n), make_rng(3, "img", n)) for n in names],
                         image, gt, max_clicks=6)  # fmt: skip
        for n, t in zip(names, trajs, strict=True):
            if n in alone:
                assert t.clicks == alone[n].clicks
                np.testing.assert_array_equal(t.iou, alone[n].iou)


# ----------------------------------------------------------------------------------------------
# the prediction of the chosen candidate is the trajectory's: same prev and state


@pytest.mark.parametrize(
    "make",
    [
        RandomWalker,
        lambda: ZoomInFlipPredictor(RandomWalker(), target_size=48, min_crop_size=16),
    ],  # fmt: skip
)
def test_a_replay_of_the_chosen_clicks_gives_the_same_trajectory(make):
    """Each candidate is predicted with the trajectory's previous map and a copy of its model
    state (the random walker's graph, the zoom-in box): replaying rbest's clicks through the
    plain loop gives the same probabilities."""
    image, gt = synthetic_pair()
    model = make()
    for name in ENVELOPE_NAMES:
        traj = run(model, get_robot(name), image, gt, max_clicks=4, key="z", keep_probs=True)
        n = len(traj.clicks)
        replay = run(model, get_robot("replay", clicks=traj.clicks), image, gt,
                     max_clicks=n, keep_probs=True)  # fmt: skip
        np.testing.assert_array_equal(replay.probs, traj.probs[:n])
        np.testing.assert_array_equal(replay.iou, traj.iou[:n])


def test_lookahead_leaves_the_trajectory_state_alone():
    image, gt = synthetic_pair()
    model = RandomWalker()
    state = model.start(image)
    first = model.predict(image, [Click(20, 20, True)], None, state=state)
    box = state.graph
    look = Lookahead(model, image, gt, [Click(20, 20, True)], first, state, 0.5, None)
    iou = look([Click(5, 5, False), Click(21, 21, True)])
    assert iou.shape == (2,) and look.calls == 1
    assert state.graph is box  # the candidates used copies
    prob, cand_state, sc = look.take(Click(5, 5, False))
    assert cand_state is not state and sc["iou"] == iou[0]
    np.testing.assert_array_equal(
        prob, model.predict(image, [Click(20, 20, True), Click(5, 5, False)], first)
    )
    assert look.take(Click(21, 21, True)) is None  # taken once; the rest closed


# ----------------------------------------------------------------------------------------------
# the bound at the first click, on a real model and real images


@pytest.mark.parametrize("model_name", ["random_walker", "ritm-compact"])
def test_first_click_bounds_every_deterministic_robot(model_name, data_root):
    from iislib.experiment.data import load_dataset
    from iislib.models import get_model
    from iislib.models.settings import get_settings

    settings_ = get_settings("ipol")
    model = settings_.wrap(get_model(model_name))
    names = [*ROBOT_NAMES, *ENVELOPE_NAMES]
    berkeley = load_dataset("berkeley", root=data_root)
    for index in range(3):
        s = berkeley[index]
        image, gt, ignore = settings_.prepare(s.image, s.gt, s.ignore)
        trajs = run_many(model, [(get_robot(n), make_rng(0, s.name, n)) for n in names],
                         image, gt, max_clicks=1, ignore=ignore)  # fmt: skip
        first = {n: t.iou[0] for n, t in zip(names, trajs, strict=True)}
        for r in DETERMINISTIC:
            assert first["rworst"] <= first[r] <= first["rbest"], (s.name, r, first)
        assert first["rworst"] < first["rbest"]


# ----------------------------------------------------------------------------------------------
# everywhere a robot runs: evaluate in this process, local workers, a Dask cluster; cached


def test_evaluate_local_workers_dask_and_cache_agree(tiny_dataset, tmp_path):
    import pandas as pd

    from iislib.experiment.sweep import COLUMNS, as_specs, cache_entry, evaluate, read_cached
    from iislib.models.settings import get_settings

    distributed = pytest.importorskip("distributed")
    kw = dict(max_clicks=3, settings="direct", progress=False)
    robots = ["rbest", "rworst", "rgto99"]
    here = evaluate(["random_walker"], robots, tiny_dataset, cache_dir=tmp_path / "c", **kw)
    cols = [c for c in COLUMNS if not c.endswith("seconds")]
    first = here[here["click"] == 1].set_index(["image", "robot"])["iou"].unstack()
    assert (first["rworst"] <= first["rgto99"]).all() and (first["rgto99"] <= first["rbest"]).all()
    spec, direct = as_specs(["random_walker"])[0], get_settings("direct")
    entry = cache_entry(tmp_path / "c", spec, direct, tiny_dataset, tiny_dataset.names[0],
                        "rbest", 0, 3)  # fmt: skip
    assert len(read_cached(entry.path, key=entry.key, rows=3)) == 3
    local = evaluate(["random_walker"], robots, tiny_dataset, n_jobs=2, **kw)
    pd.testing.assert_frame_equal(local[cols], here[cols], check_exact=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
        remote = evaluate(["random_walker"], robots, tiny_dataset,
                          scheduler=cluster.scheduler_address, **kw)  # fmt: skip
    pd.testing.assert_frame_equal(remote[cols], here[cols], check_exact=True)
