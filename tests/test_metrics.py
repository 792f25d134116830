"""Scores on hand-counted masks, the 0/0 rule, and the summaries over clicks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iislib.core.metrics import (
    METRIC_NAMES,
    Confusion,
    auc,
    confusion,
    miou_at,
    noc,
    nof,
    reference_scores,
    scores,
)

GT = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], bool)
PRED = np.array([[1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]], bool)


def test_confusion_counts_by_hand():
    assert confusion(PRED, GT) == Confusion(tp=3, fp=2, fn=1, tn=6)
    ignore = np.zeros_like(GT)
    ignore[2, 3] = True  # drops one FP
    assert confusion(PRED, GT, ignore) == Confusion(tp=3, fp=1, fn=1, tn=6)


def test_scores_by_hand():
    s = scores(PRED, GT)
    assert s.accuracy == pytest.approx(9 / 12)
    assert s.precision == pytest.approx(3 / 5)
    assert s.recall == pytest.approx(3 / 4)
    assert s.iou == pytest.approx(3 / 6)
    assert s.dice == pytest.approx(6 / 9)
    assert s.fscore == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert s.fscore == pytest.approx(s.dice)  # binary masks, beta = 1
    f2 = scores(PRED, GT, beta=2).fscore
    assert f2 == pytest.approx(5 * 0.6 * 0.75 / (4 * 0.6 + 0.75))


def test_zero_over_zero_rule():
    empty = np.zeros((3, 3), bool)
    both = scores(empty, empty)
    assert all(v == 1.0 for v in both.as_dict().values())
    gt = empty.copy()
    gt[1, 1] = True
    s = scores(empty, gt)  # nothing predicted, something to find
    assert s.precision == 0.0 and s.recall == 0.0 and s.iou == 0.0 and s.fscore == 0.0
    assert s.accuracy == pytest.approx(8 / 9)
    s = scores(gt, empty)  # a false alarm on an empty ground truth
    assert s.recall == 0.0 and s.precision == 0.0 and s.iou == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        scores(np.zeros((2, 2), bool), np.zeros((2, 3), bool))


def test_reference_scores_reproduce_the_paper_code_quirks():
    ref = reference_scores(PRED, GT)
    ours = scores(PRED, GT)
    assert ref["accuracy"] == pytest.approx(ours.recall)  # its "accuracy" is recall
    assert ref["dice"] == pytest.approx(ref["fscore"])
    assert math.isnan(reference_scores(np.zeros_like(GT), GT)["precision"])


@settings(max_examples=80, deadline=None)
@given(data=st.data(), shape=st.tuples(st.integers(1, 8), st.integers(1, 8)))
def test_scores_are_finite_and_in_range(data, shape):
    pred = data.draw(arrays(np.bool_, shape))
    gt = data.draw(arrays(np.bool_, shape))
    s = scores(pred, gt).as_dict()
    assert set(s) == set(METRIC_NAMES)
    for v in s.values():
        assert 0.0 <= v <= 1.0 and not math.isnan(v)
    assert s["fscore"] == pytest.approx(s["dice"])
    c = confusion(pred, gt)
    assert c.tp + c.fp + c.fn + c.tn == pred.size


def test_noc_rules():
    ious = np.array(
        [
            [0.9, 0.95, 0.95],  # reached at click 1
            [0.5, 0.86, 0.91],  # 85 at click 2, 90 at click 3
            [0.1, 0.2, 0.3],  # never: counts max_clicks, not max_clicks + 1
        ]
    )
    np.testing.assert_array_equal(noc(ious, 0.85), [1, 2, 3])
    np.testing.assert_array_equal(noc(ious, 0.90), [1, 3, 3])
    np.testing.assert_array_equal(noc(ious, 0.90, max_clicks=2), [1, 2, 2])
    assert noc(np.array([0.85, 0.9]), 0.85)[0] == 1  # >= counts
    assert nof(ious, 0.90) == 1  # row 2 reaches 0.90 at the last click: not a failure
    assert (noc(ious, 0.90) == 3).sum() == 2  # RITM's ">=20"-style count includes it


def test_miou_and_auc():
    ious = np.array([[0.2, 0.4], [0.6, 0.8]])
    assert miou_at(ious, 1) == pytest.approx(0.4)
    assert miou_at(ious, 2) == pytest.approx(0.6)
    assert auc(ious) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        miou_at(ious, 3)


# -- only binary predictions are scored -------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "words"),
    [
        (PRED.astype(np.float32) * 0.4, "pred must be bool.*float32"),  # a probability map
        (np.where(PRED, np.nan, 0.0), "pred must be bool.*float64"),  # NaN was foreground
        (PRED.astype(np.float64), "threshold"),  # even exact 0.0/1.0 floats: no silent cast
        (PRED.astype(np.uint8) * 255, "pred must be bool or integers 0/1.*255"),
        (PRED.astype(np.int64) - 1, r"pred .*-1"),
    ],
)
def test_non_binary_predictions_are_refused(pred, words):
    with pytest.raises(ValueError, match=words):
        scores(pred, GT)
    with pytest.raises(ValueError, match=words):
        reference_scores(pred, GT)


def test_gt_and_ignore_follow_the_same_rule():
    with pytest.raises(ValueError, match="gt must be bool"):
        scores(PRED, GT.astype(np.float32))
    with pytest.raises(ValueError, match="ignore must be bool"):
        scores(PRED, GT, np.zeros(GT.shape, np.float32))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), shape=st.tuples(st.integers(1, 6), st.integers(1, 6)))
def test_integer_01_masks_score_as_bool(data, shape):
    pred = data.draw(arrays(np.bool_, shape))
    gt = data.draw(arrays(np.bool_, shape))
    dtype = data.draw(st.sampled_from([np.uint8, np.int32, np.int64, np.uint16]))
    assert scores(pred.astype(dtype), gt.astype(dtype)) == scores(pred, gt)
