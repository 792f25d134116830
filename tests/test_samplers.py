"""Training click procedures place clicks where they promise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from iislib import Click
from iislib.core.robots import border_dt, get_robot
from iislib.core.samplers import (
    gto99_next_click,
    initial_clicks,
    multipoint_clicks,
    next_click,
    ritm_next_click,
)


def blob(h: int, w: int, r0: int, c0: int, rad: int) -> np.ndarray:
    rr, cc = np.indices((h, w))
    return (rr - r0) ** 2 + (cc - c0) ** 2 <= rad**2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rad=st.integers(3, 12))
def test_multipoint_positives_inside_negatives_outside(seed, rad):
    gt = blob(32, 40, 16, 20, rad)
    others = blob(32, 40, 5, 5, 3) & ~gt
    clicks = multipoint_clicks(gt, np.random.default_rng(seed), others)
    pos = [c for c in clicks if c.positive]
    neg = [c for c in clicks if not c.positive]
    assert 1 <= len(pos) <= 24 and len(neg) <= 24
    assert clicks[: len(pos)] == pos  # positives first
    assert all(gt[c.row, c.col] for c in pos)
    assert all(not gt[c.row, c.col] for c in neg)


def test_multipoint_counts_follow_the_geometric_law():
    gt = blob(40, 40, 20, 20, 10)
    rng = np.random.default_rng(0)
    n_pos = [sum(c.positive for c in multipoint_clicks(gt, rng)) for _ in range(3000)]
    # P(1 + k) ∝ 0.8^k: P(one positive) = 0.2 / (1 - 0.8^24) ≈ 0.2009.
    assert np.mean(np.array(n_pos) == 1) == pytest.approx(0.2009, abs=0.025)
    assert np.mean(n_pos) == pytest.approx(1 + 0.8 / 0.2, abs=0.3)  # mean of truncated law ≈ 4.8


def test_multipoint_positives_come_from_the_eroded_object_mostly():
    gt = blob(40, 40, 20, 20, 12)
    eroded = ndimage.binary_erosion(gt, np.ones((3, 3)), iterations=3)
    rng = np.random.default_rng(1)
    inner = [eroded[c.row, c.col] for _ in range(400) for c in multipoint_clicks(gt, rng)[:1]]
    assert np.mean(inner) > 0.88  # erosion applied with probability 0.9


def test_ritm_next_click_in_the_deep_half_of_the_larger_error():
    gt = np.zeros((30, 40), bool)
    gt[5:25, 5:25] = True
    prob = np.zeros(gt.shape, np.float32)
    prob[5:25, 5:15] = 1.0  # FN: the right half of the square (20 x 10)
    prob[0:4, 30:34] = 1.0  # FP: a 4x4 block
    fn = gt & (prob < 0.49)
    dt = border_dt(fn)
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = ritm_next_click(prob, gt, rng)
        assert c.positive and dt[c.row, c.col] > dt.max() / 2
    assert ritm_next_click(gt.astype(np.float32), gt, rng) is None


def test_gto99_procedure_adds_the_rgto99_click():
    gt = blob(30, 30, 15, 15, 8)
    prob = np.zeros(gt.shape, np.float32)
    prob[:, :15] = gt[:, :15]
    clicks = [Click(15, 10, True)]
    expected = get_robot("rgto99")(prob > 0.5, gt, clicks, np.random.default_rng())
    assert gto99_next_click(prob, gt, clicks) == expected
    assert next_click("gto99", prob, gt, clicks, np.random.default_rng(5)) == expected
    assert initial_clicks("gto99", gt, np.random.default_rng(0)) == [Click(15, 15, True)]


def test_unknown_procedure():
    gt = blob(10, 10, 5, 5, 2)
    with pytest.raises(ValueError, match="unknown training procedure 'x'"):
        initial_clicks("x", gt, np.random.default_rng())
