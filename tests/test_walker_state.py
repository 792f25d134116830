"""The random walker's per-trajectory state: the image's graph, built once, same results."""

from __future__ import annotations

import numpy as np
import pytest

from iislib.core.clicks import Click
from iislib.core.loop import make_rng, run_many
from iislib.core.robots import get_robot
from iislib.models.random_walker import RandomWalker, WalkerState
from tests.conftest import synthetic_pair


def test_state_builds_the_graph_once_and_changes_nothing():
    image, gt = synthetic_pair()
    model = RandomWalker()
    built = []
    real = model._graph
    model._graph = lambda img: built.append(1) or real(img)  # count the graph builds
    state = model.start(image)
    assert isinstance(state, WalkerState) and state.graph is None  # built lazily, timed
    clicks = [Click(30, 32, True), Click(5, 5, False), Click(35, 20, True)]
    prev = None
    for k in range(len(clicks)):
        with_state = model.predict(image, clicks[: k + 1], prev, state=state)
        np.testing.assert_array_equal(with_state, model.predict(image, clicks[: k + 1], prev))
        prev = with_state
    assert len(built) == 1 + len(clicks)  # once for the state, once per stateless call
    other = image[::-1].copy()
    with pytest.raises(ValueError, match="opened for another image"):
        model.predict(other, clicks[:1], None, state=state)


def test_the_loop_gives_the_same_trajectories_as_stateless_calls():
    image, gt = synthetic_pair()

    class Stateless(RandomWalker):
        def start(self, image):
            return None

    pairs = lambda: [(get_robot(r), make_rng(0, "k", r)) for r in ("r01", "rgto99")]  # noqa: E731
    a = run_many(RandomWalker(), pairs(), image, gt, max_clicks=3, keep_probs=True)
    b = run_many(Stateless(), pairs(), image, gt, max_clicks=3, keep_probs=True)
    for x, y in zip(a, b, strict=True):
        assert x.clicks == y.clicks
        np.testing.assert_array_equal(x.probs, y.probs)
