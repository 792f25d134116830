"""The training-free random walker model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import spsolve
from skimage.transform import resize

from iislib import Click
from iislib.core.loop import run
from iislib.core.metrics import scores
from iislib.core.model import as_float_image
from iislib.core.robots import get_robot
from iislib.models import MODEL_NAMES, get_model, ready_models
from iislib.models.random_walker import RandomWalker, _grid_plan, _upsample
from tests.conftest import synthetic_pair


def test_registry():
    assert "random_walker" in MODEL_NAMES and "random_walker" in ready_models()
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        get_model("nope")


def test_prediction_shape_range_and_quality():
    image, gt = synthetic_pair(60, 80)
    model = get_model("random_walker")
    prob = model.predict(image, [Click(30, 32, True)], None)
    assert prob.shape == gt.shape and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    assert scores(prob > 0.5, gt).iou > 0.8  # a clean ellipse is found from one click


def test_negative_click_removes_a_region_and_no_positive_gives_empty():
    image, gt = synthetic_pair(60, 80)
    model = get_model("random_walker")
    assert model.predict(image, [Click(5, 5, False)], None).max() == 0.0
    p1 = model.predict(image, [Click(30, 32, True)], None)
    p2 = model.predict(image, [Click(30, 32, True), Click(30, 40, False)], p1)
    assert p2[30, 40] < 0.5 <= p1[30, 40]


def test_float_images_and_bad_inputs():
    image, gt = synthetic_pair()
    model = get_model("random_walker")
    a = model.predict(image, [Click(20, 20, True)])
    b = model.predict(image.astype(np.float32) / 255, [Click(20, 20, True)])
    np.testing.assert_allclose(a, b, atol=1e-4)
    with pytest.raises(ValueError, match="outside"):
        model.predict(image, [Click(99, 0, True)])
    with pytest.raises(ValueError, match="RGB"):
        model.predict(image[..., 0], [Click(1, 1, True)])
    with pytest.raises(ValueError, match="prev"):
        model.predict(image, [Click(1, 1, True)], np.zeros((3, 3)))


def test_iou_improves_over_clicks_with_a_robot():
    image, gt = synthetic_pair(60, 80, seed=4)
    traj = run(get_model("random_walker"), get_robot("rritm"), image, gt, max_clicks=6)
    assert traj.iou.max() > 0.85


# -- the same results as the plain algorithm --------------------------------------------------
# The reference below is the random walker as first written (per click: slice the Laplacian,
# build L_uu + gamma I, solve it with spsolve); the model eliminates the red pixels and factors
# the rest in a cached order, which must change nothing beyond rounding.


def reference_walk(
    model: RandomWalker, image: np.ndarray, clicks: list[Click], prev: np.ndarray
) -> np.ndarray:
    """float64 (H, W): the plain random walker with priors on float32 ``image``/``prev``."""
    h, w = image.shape[:2]
    scale = min(1.0, model.max_side / max(h, w))
    hs, ws = max(2, round(h * scale)), max(2, round(w * scale))
    small = image if (hs, ws) == (h, w) else resize(image, (hs, ws), anti_aliasing=True)
    small = small.astype(np.float64)
    dv = ((small[1:] - small[:-1]) ** 2).sum(-1)
    dh = ((small[:, 1:] - small[:, :-1]) ** 2).sum(-1)
    b = model.beta / (10.0 * max(float(small.std()), 1e-6))
    idx = np.arange(hs * ws).reshape(hs, ws)
    rows = np.concatenate([idx[1:].ravel(), idx[:, 1:].ravel()])
    cols = np.concatenate([idx[:-1].ravel(), idx[:, :-1].ravel()])
    vals = np.concatenate([(np.exp(-b * dv) + 1e-6).ravel(), (np.exp(-b * dh) + 1e-6).ravel()])
    adj = sp.coo_matrix((vals, (rows, cols)), shape=(hs * ws, hs * ws))
    adj = (adj + adj.T).tocsr()
    lap = (sp.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj).tocsr()
    labels = reference_labels(model, clicks, (h, w), hs, ws)
    if not (labels == 1).any():
        return np.zeros((h, w))
    prior = prev if prev.shape == (hs, ws) else resize(prev, (hs, ws), order=1)
    seeded = (labels != 0).ravel()
    x = np.where(labels.ravel() == 1, 1.0, 0.0)
    u = ~seeded
    if u.any():
        gamma = model.prior_weight
        a = (lap[u][:, u] + gamma * sp.identity(int(u.sum()), format="csr")).tocsc()
        x[u] = spsolve(a, -lap[u][:, seeded] @ x[seeded] + gamma * prior.ravel()[u])
    prob = x.reshape(hs, ws)
    if (hs, ws) != (h, w):
        prob = resize(prob, (h, w), order=1, anti_aliasing=False)
    return np.clip(prob, 0.0, 1.0)


def reference_labels(
    model: RandomWalker, clicks: list[Click], shape: tuple[int, int], hs: int, ws: int
) -> np.ndarray:
    """int8 (hs, ws) seeds, each disk tested on the whole grid."""
    h, w = shape
    sr, sc = hs / h, ws / w
    labels = np.zeros((hs, ws), dtype=np.int8)
    if model.border_background:
        labels[[0, -1], :] = -1
        labels[:, [0, -1]] = -1
    rr, cc = np.indices((hs, ws))
    radius = max(model.seed_radius * min(sr, sc), 0.75)
    for c in clicks:
        r0, c0 = (c.row + 0.5) * sr - 0.5, (c.col + 0.5) * sc - 0.5
        disk = (rr - r0) ** 2 + (cc - c0) ** 2 <= radius**2
        disk[min(hs - 1, int(r0 + 0.5)), min(ws - 1, int(c0 + 0.5))] = True
        labels[disk] = 1 if c.positive else -1
    return labels


def fast_walk(model: RandomWalker, image: np.ndarray, clicks: list[Click], prev: np.ndarray):
    """float64 (H, W): the model's map before its float32 cast."""
    return model._probabilities(model._graph(image), clicks, prev)


@st.composite
def walk_cases(draw):
    h, w = draw(st.integers(2, 48)), draw(st.integers(2, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    image = rng.random((h, w, 3)).astype(np.float32)
    if draw(st.booleans()):  # flat regions and strong edges, like real images
        image = np.round(image * 2) / 2
    clicks = [
        Click(draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1)), draw(st.booleans()))
        for _ in range(draw(st.integers(1, 6)))
    ]
    prev = draw(st.sampled_from(["zeros", "random", "ones"]))
    prev = {"zeros": np.zeros((h, w)), "random": rng.random((h, w)), "ones": np.ones((h, w))}[prev]
    model = RandomWalker(
        beta=draw(st.sampled_from([1.0, 130.0, 2000.0])),
        max_side=draw(st.integers(8, 40)),
        seed_radius=draw(st.sampled_from([0.0, 1.0, 3.5, 10.0])),
        prior_weight=draw(st.sampled_from([1e-4, 1e-2, 1.0])),
        border_background=draw(st.booleans()),
    )
    return model, image, clicks, prev.astype(np.float32)


@settings(max_examples=80, deadline=None)
@given(walk_cases())
def test_same_probabilities_as_the_plain_algorithm(case):
    model, image, clicks, prev = case
    h, w = image.shape[:2]
    hs, ws = model._graph(image).small.shape[:2]
    np.testing.assert_array_equal(
        model._labels(clicks, (h, w), hs, ws), reference_labels(model, clicks, (h, w), hs, ws)
    )
    fast, ref = fast_walk(model, image, clicks, prev), reference_walk(model, image, clicks, prev)
    assert fast.shape == ref.shape == (h, w)
    assert np.abs(fast - ref).max() <= 1e-9


def test_same_probabilities_on_berkeley_trajectories(data_root):
    from iislib.experiment.data import load_dataset
    from iislib.models.settings import get_settings

    ipol = get_settings("ipol")
    model = RandomWalker()
    worst = 0.0
    for sample in load_dataset("berkeley", root=data_root).subset(2):
        image, gt, ignore = ipol.prepare(sample.image, sample.gt, sample.ignore)
        traj = run(model, get_robot("rgto99"), image, gt, max_clicks=6, ignore=ignore,
                   key=sample.name, keep_probs=True)  # fmt: skip
        img = as_float_image(image)
        prev = np.zeros(gt.shape, np.float32)
        for k in range(len(traj.clicks)):  # each call from the same clicks and previous map
            fast = fast_walk(model, img, traj.clicks[: k + 1], prev)
            ref = reference_walk(model, img, traj.clicks[: k + 1], prev)
            worst = max(worst, float(np.abs(fast - ref).max()))
            np.testing.assert_array_equal(fast.astype(np.float32), traj.probs[k])
            prev = traj.probs[k]
    assert worst <= 1e-9


def test_upsampling_matches_scikit_image():
    rng = np.random.default_rng(0)
    for small, big in [((128, 128), (224, 224)), ((85, 128), (321, 481)), ((2, 3), (5, 2))]:
        x = rng.random(small)
        expected = resize(x, big, order=1, anti_aliasing=False)
        np.testing.assert_allclose(_upsample(x, big), expected, rtol=0, atol=1e-14)


def test_grid_plan_pairs_every_edge_with_one_red_and_one_black_pixel():
    plan = _grid_plan(3, 4)
    assert len(plan.red) == len(plan.black) == 6 and len(plan.edge_red) == 2 * 4 + 3 * 3
    red, black = plan.red[plan.edge_red], plan.black[plan.edge_black]
    assert np.all((red // 4 + red % 4) % 2 == 0) and np.all((black // 4 + black % 4) % 2 == 1)
    assert np.all(np.abs(red // 4 - black // 4) + np.abs(red % 4 - black % 4) == 1)
    assert sorted(plan.order) == list(range(6))
