"""Algorithm 1: carry-forward after END, the previous map as input, seeding."""

from __future__ import annotations

import numpy as np
import pytest

from iislib import Click
from iislib.core.loop import make_rng, run, run_many
from iislib.core.model import IISModel
from iislib.core.robots import get_robot
from tests.conftest import synthetic_pair


class Recorder(IISModel):
    """Predicts the ground truth in a growing disk; records what it was given."""

    def __init__(self, gt: np.ndarray, perfect_after: int = 3):
        self.gt = gt
        self.perfect_after = perfect_after
        self.calls: list[tuple[list[Click], np.ndarray]] = []

    def _predict(self, image, clicks, prev):
        self.calls.append((list(clicks), prev.copy()))
        if len(clicks) >= self.perfect_after:
            return self.gt.astype(np.float32)
        out = np.zeros(self.gt.shape, np.float32)
        c = clicks[-1]
        out[max(0, c.row - 2) : c.row + 3, max(0, c.col - 2) : c.col + 3] = 0.9
        return np.maximum(out, prev * 0.5)


def test_scores_are_carried_forward_after_end():
    image, gt = synthetic_pair()
    model = Recorder(gt, perfect_after=3)
    traj = run(model, get_robot("rgto99"), image, gt, max_clicks=8)
    assert traj.ended_at == 3  # perfect after the 3rd click: the 4th robot call ENDs
    assert len(traj.clicks) == 3 and len(model.calls) == 3
    assert traj.iou.shape == (8,)
    np.testing.assert_array_equal(traj.iou[2:], 1.0)
    for m, v in traj.scores.items():
        assert (v[3:] == v[2]).all(), m
    assert (traj.model_seconds[3:] == 0).all()


def test_model_receives_previous_probability_map():
    image, gt = synthetic_pair()
    model = Recorder(gt, perfect_after=99)
    traj = run(model, get_robot("rritm"), image, gt, max_clicks=4, keep_probs=True)
    assert (model.calls[0][1] == 0).all()  # z = 0 before the first click
    for k in range(1, 4):
        np.testing.assert_array_equal(model.calls[k][1], traj.probs[k - 1])
        assert model.calls[k][0] == traj.clicks[: k + 1]


def test_robot_sees_thresholded_prediction():
    image, gt = synthetic_pair()

    class Half(IISModel):
        def _predict(self, image, clicks, prev):
            return np.where(gt, 0.6, 0.4).astype(np.float32)

    assert run(Half(), get_robot("rgto99"), image, gt, threshold=0.5).ended_at == 1
    t = run(Half(), get_robot("rgto99"), image, gt, threshold=0.7, max_clicks=3)
    assert t.ended_at is None and t.iou[-1] == 0.0


def test_same_seed_same_trajectory_and_keys_separate_streams():
    image, gt = synthetic_pair()
    model = Recorder(gt, perfect_after=99)
    a = run(model, get_robot("r02"), image, gt, max_clicks=5, seed=0, key="img")
    b = run(model, get_robot("r02"), image, gt, max_clicks=5, seed=0, key="img")
    c = run(model, get_robot("r02"), image, gt, max_clicks=5, seed=0, key="other")
    assert a.clicks == b.clicks
    assert a.clicks != c.clicks
    # The stream for (seed, image, robot) does not depend on what ran before it.
    g1 = make_rng(0, "img", "r02")
    make_rng(0, "x", "r02").random(100)
    g2 = make_rng(0, "img", "r02")
    assert g1.random() == g2.random()


def test_run_many_equals_separate_runs():
    image, gt = synthetic_pair()
    names = ["r01", "r04", "rgto99"]
    many = run_many(
        Recorder(gt, 99), [(get_robot(n), make_rng(1, "k", n)) for n in names], image, gt,
        max_clicks=4,
    )  # fmt: skip
    for n, t in zip(names, many, strict=True):
        single = run(Recorder(gt, 99), get_robot(n), image, gt, max_clicks=4, seed=1, key="k")
        assert t.clicks == single.clicks
        np.testing.assert_array_equal(t.iou, single.iou)


def test_bad_arguments():
    image, gt = synthetic_pair()
    with pytest.raises(ValueError, match="bool"):
        run(Recorder(gt), get_robot("r02"), image, gt.astype(np.uint8))
    with pytest.raises(ValueError, match="image is"):
        run(Recorder(gt), get_robot("r02"), image[:-1], gt)
    with pytest.raises(ValueError, match="max_clicks"):
        run(Recorder(gt), get_robot("r02"), image, gt, max_clicks=0)


@pytest.mark.parametrize("bad", [2.5, "3", True, None, 0, -1])
def test_max_clicks_must_be_a_whole_number(bad):
    image, gt = synthetic_pair()
    with pytest.raises(ValueError, match="max_clicks") as e:
        run(Recorder(gt), get_robot("r02"), image, gt, max_clicks=bad)
    assert repr(bad) in str(e.value) or str(bad) in str(e.value)
    with pytest.raises(ValueError, match="max_clicks"):
        run_many(Recorder(gt), [(get_robot("r02"), make_rng(0))], image, gt, max_clicks=bad)
    assert run(Recorder(gt), get_robot("r02"), image, gt, max_clicks=np.int64(2)).iou.shape == (2,)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_images_are_refused_before_any_click(value):
    image, gt = synthetic_pair()
    bad = image.astype(np.float32) / 255
    bad[3, 4, 1] = value
    model = Recorder(gt)
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        run(model, get_robot("r02"), bad, gt, max_clicks=2)
    assert model.calls == []  # refused before the model ran


def test_random_walker_on_a_nan_image_is_an_error_not_a_score():
    # The reported case: random_walker returned a map (IoU 0.157) for an image with NaN.
    from iislib.models import get_model

    image, gt = synthetic_pair()
    bad = image.astype(np.float32) / 255
    bad[gt] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run(get_model("random_walker"), get_robot("rgto99"), bad, gt, max_clicks=1)


class Stateful(Recorder):
    """Records which state each call gets; the state counts its trajectory's calls."""

    def __init__(self, gt: np.ndarray, fail_at: int | None = None):
        super().__init__(gt, perfect_after=99)
        self.opened: list[dict] = []
        self.closed: list[dict] = []
        self.fail_at = fail_at

    def start(self, image):
        state = {"calls": 0, "image": image}
        self.opened.append(state)
        return state

    def finish(self, state):
        self.closed.append(state)

    def _predict(self, image, clicks, prev, state=None):
        assert state is not None and state["image"] is not None
        state["calls"] += 1
        assert state["calls"] == len(clicks)  # one state per trajectory, in click order
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise RuntimeError("model failed")
        return super()._predict(image, clicks, prev)


def test_each_trajectory_gets_its_own_state_opened_and_closed():
    image, gt = synthetic_pair()
    model = Stateful(gt)
    names = ["r01", "r04", "rgto99"]
    many = run_many(model, [(get_robot(n), make_rng(1, "k", n)) for n in names], image, gt,
                    max_clicks=4)  # fmt: skip
    assert len(model.opened) == 3 and [s["calls"] for s in model.opened] == [
        len(t.clicks) for t in many
    ]
    assert [id(s) for s in model.closed] == [id(s) for s in model.opened]
    # single runs (predict, not predict_batch) pass the state too
    one = Stateful(gt)
    run(one, get_robot("r02"), image, gt, max_clicks=3)
    assert len(one.opened) == 1 and one.opened[0]["calls"] == 3 and one.closed == one.opened


def test_states_are_closed_when_the_model_fails():
    image, gt = synthetic_pair()
    model = Stateful(gt, fail_at=2)
    with pytest.raises(RuntimeError, match="model failed"):
        run_many(model, [(get_robot(n), make_rng(0, n)) for n in ("r01", "r02")], image, gt)
    assert len(model.closed) == 2


def test_a_model_without_state_is_called_without_one():
    # a network written before states existed: its predict_batch takes no ``states``
    class Batched(Recorder):
        def predict_batch(self, images, clicks, prevs):
            self.batches = getattr(self, "batches", 0) + 1
            return [self.predict(i, c, p) for i, c, p in zip(images, clicks, prevs, strict=True)]

    image, gt = synthetic_pair()
    model = Batched(gt, 99)
    assert model.start(image) is None
    run_many(model, [(get_robot(n), make_rng(0, n)) for n in ("r01", "r02")], image, gt,
             max_clicks=2)  # fmt: skip
    assert model.batches == 2 and len(model.calls) == 4
