"""The training-free random walker model."""

from __future__ import annotations

import numpy as np
import pytest

from iislib import Click
from iislib.core.loop import run
from iislib.core.metrics import scores
from iislib.core.robots import get_robot
from iislib.models import MODEL_NAMES, get_model, ready_models
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
