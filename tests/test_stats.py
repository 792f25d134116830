"""Statistics over sweep tables: exact small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iislib.core.clicks import Click
from iislib.experiment import stats
from iislib.experiment.sweep import COLUMNS


def make_table(rows: list[tuple]) -> pd.DataFrame:
    """A sweep table from (model, robot, image, seed, click, iou); other metrics copy iou."""
    df = pd.DataFrame(rows, columns=["model", "robot", "image", "seed", "click", "iou"])
    for m in ("accuracy", "precision", "recall", "dice", "fscore", "boundary_iou"):
        df[m] = df["iou"]
    df["dataset"], df["settings"] = "toy", "direct"
    df["row"], df["col"], df["positive"] = 0, 0, 1
    df["model_seconds"], df["robot_seconds"] = 0.01, 0.001
    return df[list(COLUMNS)]


def pair_table(ious: dict[tuple[str, str], list[float]], click: int = 1) -> pd.DataFrame:
    """(model, robot) -> per-image IoU at ``click``, images img0, img1, ..."""
    return make_table([(m, r, f"img{i}", 0, click, v) for (m, r), vs in ious.items()
                       for i, v in enumerate(vs)])  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Kendall tau


def test_kendall_tau_hand_cases():
    assert stats.kendall_tau([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert stats.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # one swapped pair among 6: (5 - 1) / 6
    assert stats.kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    # tie in x: pairs (1,2) tied; C=2 (1-3, 2-3), D=0; tau_b = 2 / sqrt(2 * 3)
    assert stats.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / np.sqrt(6))


def test_kendall_tau_undefined_is_nan():
    assert np.isnan(stats.kendall_tau([1.0], [2.0]))
    assert np.isnan(stats.kendall_tau([1, 1, 1], [1, 2, 3]))
    assert np.isnan(stats.kendall_tau([np.nan, 1], [1, 2]))  # one item left
    with pytest.raises(ValueError, match="same length"):
        stats.kendall_tau([1, 2], [1, 2, 3])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=2, max_size=12))
def test_kendall_tau_matches_scipy(pairs):
    from scipy.stats import kendalltau

    x, y = np.array(pairs, dtype=float).T
    ours = stats.kendall_tau(x, y)
    ref = kendalltau(x, y).statistic  # tau-b
    if np.isnan(ref):
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(ref)


def test_model_rank_tau_three_models():
    # robot r1 ranks A > B > C, robot r2 ranks A > C > B: one discordant pair of 3 -> 1/3.
    t = pair_table({("A", "r1"): [0.9], ("B", "r1"): [0.6], ("C", "r1"): [0.3],
                    ("A", "r2"): [0.8], ("B", "r2"): [0.2], ("C", "r2"): [0.5]})  # fmt: skip
    m = stats.model_rank_tau(t)
    assert m.loc["r1", "r2"] == pytest.approx(1 / 3)
    assert m.loc["r1", "r1"] == pytest.approx(1.0)
    assert np.isnan(stats.model_rank_tau(t[t.model == "A"]).loc["r1", "r2"])


def test_per_image_rank_tau_two_models_is_agreement_minus_flips():
    # image 0: A > B under both; image 1: A > B under r1, B > A under r2; image 2: tie under r2.
    t = pair_table({("A", "r1"): [0.9, 0.8, 0.7], ("B", "r1"): [0.1, 0.2, 0.3],
                    ("A", "r2"): [0.9, 0.1, 0.5], ("B", "r2"): [0.1, 0.8, 0.5]})  # fmt: skip
    m = stats.per_image_rank_tau(t)
    assert m.loc["r1", "r2"] == pytest.approx((1 - 1) / 2)  # image 2 undefined, left out
    assert m.loc["r1", "r1"] == pytest.approx(1.0)


def test_image_rank_tau_one_model():
    t = pair_table({("A", "r1"): [0.1, 0.5, 0.9], ("A", "r2"): [0.2, 0.6, 0.7],
                    ("A", "r3"): [0.9, 0.5, 0.1]})  # fmt: skip
    m = stats.image_rank_tau(t, "A")
    assert m.loc["r1", "r2"] == pytest.approx(1.0)
    assert m.loc["r1", "r3"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="not in the table"):
        stats.image_rank_tau(t, "Z")


# ----------------------------------------------------------------------------------------------
# pairwise comparisons


def test_win_rate_three_images():
    assert stats.win_rate(np.array([0.5, 0.7, 0.9]), np.array([0.6, 0.7, 0.8])) == pytest.approx(
        (1 / 3, 1 / 3, 1 / 3)
    )
    assert stats.win_rate(np.array([1.0, 1.0]), np.array([0.0, 0.5])) == (1.0, 0.0, 0.0)
    assert all(np.isnan(stats.win_rate(np.array([]), np.array([]))))


def test_win_rates_table_per_robot_and_seed_average():
    # Seeds are averaged per image first: A's img0 under r1 is (0.2 + 0.8) / 2 = 0.5 = B's -> tie.
    t = make_table([
        ("A", "r1", "img0", 0, 1, 0.2), ("A", "r1", "img0", 1, 1, 0.8),
        ("B", "r1", "img0", 0, 1, 0.5), ("B", "r1", "img0", 1, 1, 0.5),
        ("A", "r1", "img1", 0, 1, 0.9), ("A", "r1", "img1", 1, 1, 0.9),
        ("B", "r1", "img1", 0, 1, 0.1), ("B", "r1", "img1", 1, 1, 0.1),
        ("A", "r1", "img2", 0, 1, 0.1), ("A", "r1", "img2", 1, 1, 0.1),
        ("B", "r1", "img2", 0, 1, 0.4), ("B", "r1", "img2", 1, 1, 0.4),
    ])  # fmt: skip
    w = stats.win_rates(t, "A", "B").set_index("robot")
    assert w.loc["r1", ["wins", "ties", "losses"]].tolist() == pytest.approx([1 / 3] * 3)
    assert w.loc["r1", "images"] == 3


def test_sign_flips_hand_case():
    # d = A - B: r1 (+, +, -, 0), r2 (+, -, -, +): image 1 flips; image 3 has a zero: no flip.
    t = pair_table({("A", "r1"): [0.9, 0.8, 0.1, 0.5], ("B", "r1"): [0.1, 0.2, 0.9, 0.5],
                    ("A", "r2"): [0.9, 0.1, 0.2, 0.6], ("B", "r2"): [0.1, 0.9, 0.8, 0.5]})  # fmt: skip
    m = stats.sign_flips(t, "A", "B", k=1)
    assert m.loc["r1", "r2"] == pytest.approx(1 / 4)
    assert m.loc["r2", "r1"] == pytest.approx(1 / 4)
    assert m.loc["r1", "r1"] == 0.0


def test_per_image_at_click_and_mean_over_clicks():
    t = make_table([("A", "r1", "img0", 0, 1, 0.2), ("A", "r1", "img0", 0, 2, 0.6)])
    assert stats.per_image(t, "iou", 2).iloc[0] == pytest.approx(0.6)
    assert stats.per_image(t, "iou", None).iloc[0] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="k must be in 1..2"):
        stats.per_image(t, "iou", 3)
    with pytest.raises(ValueError, match="unknown metric"):
        stats.per_image(t, "nope", 1)


def test_pairwise_summary_one_model_is_empty(capsys):
    t = pair_table({("A", "r1"): [0.1, 0.2]})
    out = stats.pairwise_summary(t, "iou", 1, n_boot=10)
    assert out.empty
    assert "need two models" in capsys.readouterr().out


def test_pairwise_summary_two_models():
    t = pair_table({("A", "r1"): [0.9, 0.8], ("B", "r1"): [0.1, 0.2]})
    out = stats.pairwise_summary(t, "iou", 1, n_boot=50)
    row = out.iloc[0]
    assert (row.model_a, row.model_b, row.robot) == ("A", "B", "r1")
    assert row.wins == 1.0 and row["diff"] == pytest.approx(0.7)
    assert row.low <= 0.7 <= row.high


# ----------------------------------------------------------------------------------------------
# uncertainty


def test_bootstrap_ci_constant_and_reproducible():
    assert stats.bootstrap_ci(np.full(5, 0.3)) == pytest.approx((0.3, 0.3, 0.3))
    v = np.array([0.0, 1.0, 0.5, 0.25, 0.75])
    a, b = stats.bootstrap_ci(v, seed=3), stats.bootstrap_ci(v, seed=3)
    assert a == b
    m, lo, hi = a
    assert m == pytest.approx(0.5) and 0.0 <= lo < m < hi <= 1.0
    # wider level, wider interval
    _, lo99, hi99 = stats.bootstrap_ci(v, level=0.99, seed=3)
    assert lo99 <= lo and hi99 >= hi
    assert all(np.isnan(stats.bootstrap_ci(np.array([]))))
    with pytest.raises(ValueError, match="level"):
        stats.bootstrap_ci(v, level=1.5)


def test_bootstrap_ci_is_scipys_bca_interval():
    from scipy.stats import bootstrap

    v = np.random.default_rng(7).beta(2, 5, 60)  # skewed, as per-image IoU often is
    ref = bootstrap((v,), np.mean, n_resamples=999, method="BCa", rng=np.random.default_rng(3))
    m, lo, hi = stats.bootstrap_ci(v, n_boot=999, seed=3)
    assert m == pytest.approx(v.mean(), abs=1e-12)
    assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval), abs=1e-11)
    ref = bootstrap((v,), np.mean, n_resamples=999, method="percentile",
                    rng=np.random.default_rng(3))  # fmt: skip
    got = stats.bootstrap_ci(v, n_boot=999, seed=3, method="percentile")[1:]
    assert got == pytest.approx(tuple(ref.confidence_interval), abs=1e-11)
    with pytest.raises(ValueError, match="method must be one of"):
        stats.bootstrap_ci(v, method="studentized")


def test_bootstrap_means_weighs_groups_equally_and_resamples_within_each():
    # group means 0 (4 images) and 1 (2 images): equal weights give 0.5, not 2/6. Each group is
    # constant, so resampling within the groups cannot move the mean: a zero-width interval
    # (a bootstrap of the 6 images pooled into one sample would give a wide one).
    point, lo, hi = stats.bootstrap_means([np.zeros(4), np.ones(2)], n_boot=200)
    assert (float(point), float(lo), float(hi)) == (0.5, 0.5, 0.5)
    # a statistic of the pooled means, vectorised, with rows resampled together (paired)
    a = np.array([[0.2, 0.5], [0.4, 0.7], [0.3, 0.6]])  # image x model: B - A = 0.3 always
    b = np.array([[0.6, 0.8], [0.5, 0.7]])  # B - A = 0.2 always
    diff = lambda m: m[..., 1] - m[..., 0]  # noqa: E731
    point, lo, hi = stats.bootstrap_means([a, b], diff, n_boot=200)
    assert point.shape == () and (float(point), float(lo), float(hi)) == pytest.approx((0.25,) * 3)
    # a one-image group is fixed; the others are resampled
    point, lo, hi = stats.bootstrap_means([np.array([1.0]), np.array([0.0, 1.0, 0.5, 0.2])],
                                          n_boot=300)  # fmt: skip
    assert float(point) == pytest.approx((1.0 + 0.425) / 2) and 0.5 <= lo < point < hi <= 1.0
    with pytest.raises(ValueError, match="features differ"):
        stats.bootstrap_means([np.zeros((3, 2)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match="at least one image"):
        stats.bootstrap_means([np.zeros(3), np.zeros(0)])


def test_bootstrap_interval_ignores_last_bit_differences():
    # BCa counts the resamples equal to the point estimate; a spread over robots (max - min)
    # often does not move. The same data summed in another order (last bits) gives the same
    # interval: the statistic is rounded to stats.DECIMALS before scipy sees it (without it,
    # the intervals differed on all five tables).
    spread = lambda m: np.ptp(m[..., 1, :], axis=-1) - np.ptp(m[..., 0, :], axis=-1)  # noqa: E731
    for seed in range(5):
        rng = np.random.default_rng(seed)
        offsets = [rng.permutation(np.linspace(-0.05, 0.05, 12)) for _ in range(14)]
        a = rng.uniform(0.2, 0.8, (1, 2, 7)) + np.stack(offsets, 1).reshape(12, 2, 7)
        ulp = a + np.spacing(a) * rng.integers(-1, 2, a.shape)  # image x model x robot
        assert stats.bootstrap_means([a], spread, n_boot=300) == stats.bootstrap_means(
            [ulp], spread, n_boot=300)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=30), st.sampled_from(["BCa", "percentile"]))
def test_bootstrap_ci_lies_within_the_values(values, method):
    v = np.array(values)
    m, lo, hi = stats.bootstrap_ci(v, n_boot=200, method=method)
    assert v.min() - 1e-12 <= lo <= hi <= v.max() + 1e-12
    assert m == pytest.approx(v.mean(), abs=1e-11)


def test_bootstrap_curves_shapes():
    a = np.array([[0.1, 0.5, 0.9], [0.3, 0.5, 0.7]])
    mean, lo, hi = stats.bootstrap_curves(a, n_boot=200)
    np.testing.assert_allclose(mean, [0.2, 0.5, 0.8])
    np.testing.assert_allclose(lo[1], 0.5) and np.testing.assert_allclose(hi[1], 0.5)
    assert (lo <= mean).all() and (mean <= hi).all()


def test_seed_variance_hand_case():
    # random robot r02: seed 0 images (0.4, 0.6) mean 0.5; seed 1 (0.6, 0.8) mean 0.7.
    t = make_table([
        ("A", "r02", "img0", 0, 1, 0.4), ("A", "r02", "img1", 0, 1, 0.6),
        ("A", "r02", "img0", 1, 1, 0.6), ("A", "r02", "img1", 1, 1, 0.8),
        ("A", "rritm", "img0", 0, 1, 0.5), ("A", "rritm", "img1", 0, 1, 0.7),
        ("A", "rritm", "img0", 1, 1, 0.5), ("A", "rritm", "img1", 1, 1, 0.7),
    ])  # fmt: skip
    v = stats.seed_variance(t, "iou", 1).set_index("robot")
    assert v.loc["r02", "seeds"] == 2
    assert v.loc["r02", "mean"] == pytest.approx(0.6)
    assert v.loc["r02", "std_between"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert v.loc["r02", "std_per_image"] == pytest.approx(np.std([0.4, 0.6], ddof=1))
    assert v.loc["rritm", "std_between"] == 0.0


# ----------------------------------------------------------------------------------------------
# robots and single predictions


def test_first_divergence():
    a = [Click(1, 1, True), Click(2, 2, False), Click(3, 3, True)]
    assert stats.first_divergence(a, a) is None
    assert stats.first_divergence(a, [a[0], Click(2, 3, False), a[2]]) == 2
    assert stats.first_divergence(a, a[:2]) == 3
    assert stats.first_divergence([], a) == 1


def test_metric_quirks_reference_accuracy_is_recall():
    gt = np.zeros((4, 4), bool)
    gt[:2, :2] = True  # 4 object pixels
    pred = np.zeros((4, 4), bool)
    pred[0, :3] = True  # TP 2, FP 1, FN 2, TN 11
    q = stats.metric_quirks(pred, gt)
    assert q.loc["accuracy", "ours"] == pytest.approx(13 / 16)
    assert q.loc["accuracy", "reference"] == pytest.approx(2 / 4)  # recall
    assert not q.loc["accuracy", "same"] and q.loc["iou", "same"]
    empty = stats.metric_quirks(np.zeros_like(gt), gt)
    assert np.isnan(empty.loc["precision", "reference"]) and empty.loc["precision", "ours"] == 0.0


def test_robot_cost_milliseconds():
    times = pd.DataFrame({"robot": ["a", "a", "b", "b"], "seconds": [0.001, 0.003, 0.010, 0.0]})
    c = stats.robot_cost(times, "seconds").set_index("robot")
    assert c.loc["a", "ms_mean"] == pytest.approx(2.0)
    assert c.loc["a", "calls"] == 2
    assert c.loc["b", "calls"] == 1  # the 0 (a step after END) is dropped


# ----------------------------------------------------------------------------------------------
# the 2x2 experiment

DESIGN = {"A": ("ritm", "ritm"), "B": ("gto99", "gto99"), "C": ("ritm", "gto99"),
          "D": ("gto99", "ritm")}  # fmt: skip


def design_table(means: dict[str, tuple[float, float]], jitter: float = 0.0) -> pd.DataFrame:
    """Per model the mean IoU under robots r1, r2; 4 images at mean -/+ jitter (2 each)."""
    offsets = (-jitter, jitter, -jitter, jitter)
    return pair_table({(m, r): [v + o for o in offsets]
                       for m, vs in means.items() for r, v in zip(("r1", "r2"), vs, strict=True)})  # fmt: skip


def test_robot_spread_by_hand():
    t = design_table({"A": (0.5, 0.5), "B": (0.3, 0.7), "C": (0.2, 0.6), "D": (0.9, 0.8)})
    s = stats.robot_spread(t).set_index("model")
    assert s.loc["A", "spread"] == pytest.approx(0.0)
    assert s.loc["B", "spread"] == pytest.approx(0.4)
    assert s.loc["D", "mean"] == pytest.approx(0.85)
    assert s.loc["C", "std"] == pytest.approx(0.2)


def test_factor_effects_procedure_only():
    # The ritm-procedure models (A, D) do not depend on the robot, the gto99 ones (B, C) by 0.4:
    # procedure effect on the spread -0.4, family effect 0; no image noise, so a point interval.
    t = design_table({"A": (0.5, 0.5), "B": (0.3, 0.7), "C": (0.3, 0.7), "D": (0.6, 0.6)})
    e = stats.factor_effects(t, DESIGN, n_boot=200).set_index(["quantity", "factor"])
    assert e.loc[("spread", "procedure"), "effect"] == pytest.approx(-0.4)
    assert e.loc[("spread", "family"), "effect"] == pytest.approx(0.0)
    assert e.loc[("spread", "procedure"), "high"] == pytest.approx(-0.4)
    # mean over robots: A .5, B .5, C .5, D .6 -> family (A+C)/2-(B+D)/2 = -0.05
    assert e.loc[("mean", "family"), "effect"] == pytest.approx(-0.05)
    assert "training with RITM's clicks narrows the spread over robots by 0.400" in (
        stats.factor_verdict(e.reset_index())
    )


def test_factor_effects_interval_covers_zero_when_noisy():
    t = design_table({"A": (0.5, 0.5), "B": (0.5, 0.5), "C": (0.5, 0.5), "D": (0.5, 0.5)},
                     jitter=0.2)  # fmt: skip
    e = stats.factor_effects(t, DESIGN, n_boot=300).set_index(["quantity", "factor"])
    lo, hi = e.loc[("mean", "family"), ["low", "high"]]
    assert lo <= 0 <= hi
    assert "includes 0" in stats.factor_verdict(e.reset_index())


def test_factor_effects_rejects_incomplete_design():
    t = design_table({"A": (0.5, 0.5), "B": (0.3, 0.7), "C": (0.3, 0.7), "D": (0.6, 0.6)})
    with pytest.raises(ValueError, match="full 2x2"):
        stats.factor_effects(t, {k: DESIGN[k] for k in "ABC"})
    with pytest.raises(ValueError, match="lacks models"):
        stats.factor_effects(t[t["model"] != "D"], DESIGN)


def test_bootstrap_stat_of_the_mean_is_bootstrap_ci():
    v = np.array([0.1, 0.4, 0.35, 0.9, 0.6])
    point, lo, hi = stats.bootstrap_stat(v, np.mean, n_boot=300, seed=4)
    assert (float(point), float(lo), float(hi)) == pytest.approx(
        stats.bootstrap_ci(v, n_boot=300, seed=4)
    )
    # an array statistic keeps its shape; rows are resampled together (columns stay paired)
    a = np.stack([v, v + 1], axis=1)
    p, lo2, hi2 = stats.bootstrap_stat(a, lambda x: x[:, 1].mean() - x[:, 0].mean(), n_boot=50)
    assert p.shape == () and lo2 == pytest.approx(1.0) and hi2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one image"):
        stats.bootstrap_stat(np.zeros((0, 2)), np.mean)


# ----------------------------------------------------------------------------------------------
# the image of the qualitative figures


def test_contrast_image_largest_absolute_difference():
    t = pair_table({("A", "r01"): [0.5, 0.9, 0.2, 0.4], ("B", "r01"): [0.4, 0.1, 0.9, 0.4],
                    ("A", "rritm"): [0.0, 0.0, 0.0, 1.0], ("B", "rritm"): [1.0, 1.0, 1.0, 0.0]},
                   click=2)  # fmt: skip
    # |A - B| under r01: 0.1, 0.8, 0.7, 0 -> img1 (the robot matters: under rritm all tie at 1)
    assert stats.contrast_image(t, "A", "B", "r01", 2) == "img1"
    assert stats.contrast_image(t, "B", "A", "r01", 2) == "img1"
    assert stats.contrast_image(t, "A", "B", "rritm", 2) == "img0"  # ties: first image
    with pytest.raises(ValueError, match="no C under r01"):
        stats.contrast_image(t, "A", "C", "r01", 2)


def test_contrast_image_with_a_positive_click():
    t = pair_table({("A", "r01"): [0.5, 0.9, 0.2], ("B", "r01"): [0.4, 0.1, 0.9]}, click=1)
    t["positive"] = np.where(t["image"] == "img1", 0, 1)  # img1's click is negative
    assert stats.contrast_image(t, "A", "B", "r01", 1) == "img1"
    assert stats.contrast_image(t, "A", "B", "r01", 1, positive=True) == "img2"
    t["positive"] = 0
    with pytest.raises(ValueError, match="positive click"):
        stats.contrast_image(t, "A", "B", "r01", 1, positive=True)
