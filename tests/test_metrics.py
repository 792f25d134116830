"""Scores on hand-counted masks, the 0/0 rule, and the summaries over clicks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from iislib.core.metrics import (
    METRIC_NAMES,
    SCORE_NAMES,
    Confusion,
    auc,
    boundary_iou,
    boundary_width,
    click_scores,
    confusion,
    mask_boundary,
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


# ----------------------------------------------------------------------------------------------
# Boundary IoU


def scipy_boundary_iou(pred, gt, ratio=0.02, ignore=None) -> float:
    """An independent Boundary IoU: scipy's erosion with a zero outside, NumPy counts."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if ignore is not None:
        pred, gt = pred & ~ignore, gt & ~ignore
    d = max(1, int(round(ratio * math.sqrt(gt.shape[0] ** 2 + gt.shape[1] ** 2))))
    sq = np.ones((3, 3), bool)

    def band(m):
        return m & ~ndimage.binary_erosion(m, structure=sq, iterations=d, border_value=0)

    bp, bg = band(pred), band(gt)
    union = (bp | bg).sum()
    return 1.0 if union == 0 else float((bp & bg).sum() / union)


def square(shape, r0, r1, c0, c1):
    m = np.zeros(shape, bool)
    m[r0:r1, c0:c1] = True
    return m


def test_boundary_width_by_hand():
    assert boundary_width((10, 10)) == 1  # 0.02 x 14.1 = 0.28 -> 0, at least 1
    assert boundary_width((60, 80)) == 2  # diagonal 100
    assert boundary_width((481, 321)) == 12  # Berkeley: 0.02 x 578.3 = 11.6
    assert boundary_width((224, 224)) == 6  # ipol settings: 0.02 x 316.8 = 6.3
    assert boundary_width((60, 80), dilation_ratio=0.1) == 10
    with pytest.raises(ValueError, match="dilation_ratio"):
        boundary_width((10, 10), float("nan"))


def test_boundary_is_the_inner_ring_and_the_image_border_counts():
    gt = square((10, 10), 2, 6, 2, 6)  # d = 1: the 4x4 square's one-pixel ring, 12 pixels
    ring = gt & ~square((10, 10), 3, 5, 3, 5)
    np.testing.assert_array_equal(mask_boundary(gt, 1), ring)
    # a mask cut by the image border has its boundary there too (the zero pad)
    left = square((10, 10), 0, 10, 0, 5)
    b = mask_boundary(left, 1)
    assert b.sum() == 26  # rows 0 and 9 (5 + 5), columns 0 and 4 of rows 1..8 (8 + 8)
    assert b[5, 0] and b[0, 2] and b[5, 4] and not b[5, 2]
    # two iterations: a 2-pixel band (a 20x20 square keeps its 16x16 core)
    assert mask_boundary(square((60, 80), 20, 40, 30, 50), 2).sum() == 400 - 256
    with pytest.raises(ValueError, match="at least 1"):
        mask_boundary(gt, 0)


def test_boundary_iou_by_hand():
    # d = 1, a 4x4 square shifted right by one column: the rings share 6 of their 18 pixels
    gt, pred = square((10, 10), 2, 6, 2, 6), square((10, 10), 2, 6, 3, 7)
    assert boundary_iou(pred, gt) == pytest.approx(6 / 18)
    assert scores(pred, gt).iou == pytest.approx(12 / 20)
    # d = 2 (60x80), a 20x20 square shifted by 2 columns: IoU 0.82 but Boundary IoU 1/3; the
    # top and bottom bands (4 rows) share 18 columns each, the side bands nothing
    gt, pred = square((60, 80), 20, 40, 30, 50), square((60, 80), 20, 40, 32, 52)
    assert boundary_iou(pred, gt) == pytest.approx(72 / (144 + 144 - 72))
    assert scores(pred, gt).iou == pytest.approx(360 / 440)
    # a wider band (ratio 0.1: d = 10) swallows both squares whole: Boundary IoU = IoU
    assert boundary_iou(pred, gt, dilation_ratio=0.1) == pytest.approx(360 / 440)


def test_boundary_iou_zero_over_zero_and_errors():
    empty = np.zeros((8, 9), bool)
    some = square((8, 9), 2, 5, 2, 5)
    assert boundary_iou(empty, empty) == 1.0
    assert boundary_iou(some, empty) == 0.0 and boundary_iou(empty, some) == 0.0
    assert boundary_iou(some, some) == 1.0
    with pytest.raises(ValueError, match="shape"):
        boundary_iou(some, some[:, :-1])
    with pytest.raises(ValueError, match="threshold"):
        boundary_iou(some.astype(np.float32), some)


def test_boundary_iou_ignore_grabcut_band():
    """GrabCut's grey band (ignored, gt False there): a prediction that covers part of the band
    scores 1, while without ``ignore`` the same prediction loses its border band."""
    gt = square((60, 80), 20, 40, 30, 50)
    ignore = square((60, 80), 17, 43, 27, 53) & ~gt  # a 3-pixel band around the object
    pred = square((60, 80), 18, 42, 28, 52)  # the object and two of the three band pixels
    assert boundary_iou(pred, gt, ignore=ignore) == 1.0
    assert boundary_iou(pred, gt) < 0.6
    # everything ignored: both empty there, 1.0
    assert boundary_iou(pred, gt, ignore=np.ones_like(gt)) == 1.0


def test_click_scores_are_the_table_columns():
    gt, pred = square((10, 10), 2, 6, 2, 6), square((10, 10), 2, 6, 3, 7)
    s = click_scores(pred, gt)
    assert tuple(s) == SCORE_NAMES == (*METRIC_NAMES, "boundary_iou")
    assert s["boundary_iou"] == pytest.approx(1 / 3) and s["iou"] == pytest.approx(0.6)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_boundary_iou_matches_scipy_on_benchmark_masks(data_root, index):
    from iislib.experiment.data import load_dataset

    gt = load_dataset("berkeley", root=data_root)[index].gt  # 481x321 or 321x481: d = 12
    for pred in (ndimage.binary_dilation(gt, iterations=4), ndimage.binary_erosion(gt, iterations=9),
                 np.roll(gt, (7, -5), axis=(0, 1)), ~gt):  # fmt: skip
        assert boundary_iou(pred, gt) == scipy_boundary_iou(pred, gt)


masks = st.tuples(st.integers(1, 40), st.integers(1, 40)).flatmap(
    lambda shape: st.tuples(*(arrays(np.bool_, shape) for _ in range(3)))
)


@settings(max_examples=200, deadline=None)
@given(m=masks, ratio=st.sampled_from([0.0, 0.02, 0.05, 0.2]))
def test_boundary_iou_properties(m, ratio):
    pred, gt, ignore = m
    v = boundary_iou(pred, gt, ratio)
    assert 0.0 <= v <= 1.0
    assert v == boundary_iou(gt, pred, ratio)  # symmetric
    assert boundary_iou(gt, gt, ratio) == 1.0  # identity
    assert v == scipy_boundary_iou(pred, gt, ratio)
    # with ignore: the independent version agrees, it stays symmetric, and neither mask's
    # values in the ignored pixels change the score
    w = boundary_iou(pred, gt, ratio, ignore=ignore)
    assert w == scipy_boundary_iou(pred, gt, ratio, ignore)
    assert w == boundary_iou(gt, pred, ratio, ignore=ignore)
    assert w == boundary_iou(pred | ignore, gt ^ ignore, ratio, ignore=ignore)
    if v == 1.0:  # equal boundaries: equal masks (a non-empty mask has a non-empty band)
        np.testing.assert_array_equal(pred, gt)
