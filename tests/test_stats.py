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


# ----------------------------------------------------------------------------------------------
# the paper's findings

RITM, GTO, RG, GR = (
    "ritm-compact",
    "gto99-compact",
    "ritm-compact-gto99proc",
    "gto99-compact-ritmproc",
)
ROBOTS = ("r01", "r02", "r03", "r04", "r05", "rgto99", "rritm")


def findings_table(
    spec: dict[tuple[str, str], dict[str, float | list[float]]], n_images: int = 12,
    clicks: int = 6, jitter: float = 0.05, dataset: str = "berkeley",
) -> pd.DataFrame:  # fmt: skip
    """A sweep table from (model, robot) -> {metric: value or per-click values}; metrics not
    given take the IoU (default 0.6). Each (model, robot) adds its own permutation of
    offsets in [-jitter, jitter] that sum to 0, so the mean over images is the value given."""
    rng = np.random.default_rng(0)
    offsets = np.linspace(-1, 1, n_images) * jitter
    rows = []
    for (m, r), metrics in spec.items():
        off = rng.permutation(offsets)
        for i in range(n_images):
            for k in range(clicks):
                row = {"model": m, "robot": r, "image": f"img{i:02d}", "seed": 0, "click": k + 1}
                for name in ("accuracy", "precision", "recall", "dice", "iou", "fscore",
                             "boundary_iou"):  # fmt: skip
                    v = np.broadcast_to(metrics.get(name, metrics.get("iou", 0.6)), clicks)[k]
                    row[name] = v + off[i]
                rows.append(row)
    df = pd.DataFrame(rows)
    df["dataset"], df["settings"] = dataset, "ipol"
    df["row"], df["col"], df["positive"] = 0, 0, 1
    df["model_seconds"], df["robot_seconds"] = 0.01, 0.001
    return df[list(COLUMNS)]


def findings_spec(holds: bool) -> dict:
    """Every claim clearly holds (``holds``) or clearly fails; margins worked out by hand:
    holds 0.05, 0.15, 0.5, 0.45, 0.15; fails -0.1, -0.15, -0.15, -0.375, -0.15."""
    s = {(m, r): {"iou": 0.6} for m in (RITM, GTO, RG, GR) for r in ROBOTS}
    sg = 1 if holds else -1
    # claim 1: gto99 under rgto99 vs ritm under rritm (0.6 on every metric)
    s[(GTO, "rgto99")].update(precision=0.6 + 0.1 * sg, dice=0.6 + 0.05 * sg,
                              recall=0.6 - 0.1 * sg, iou=0.8)  # fmt: skip
    # claims 2 and 5: gto99 - ritm is +0.2 under rgto99 and 0.15 * sg under rritm
    s[(GTO, "rritm")]["iou"] = 0.6 + 0.15 * sg
    if holds:  # claim 3: gto99 spread 0.5, ritm 0; claim 4: RG spread 0.4, GR 0
        s[(GTO, "r01")]["iou"] = 0.3
        s[(RG, "r01")]["iou"] = 0.2
    else:  # claim 3: gto99 spread 0.35, ritm 0.5; claim 4: RG 0, GR 0.6
        s[(RITM, "r01")]["iou"] = 0.1
        s[(GR, "r01")]["iou"] = 0.0
    return s


def by_claim(f: pd.DataFrame) -> pd.DataFrame:
    assert list(f.columns) == list(stats.FINDINGS_COLUMNS)
    return f.set_index("claim")


@pytest.mark.parametrize(
    ("holds", "margins", "expected"),
    [(True, [0.05, 0.15, 0.5, 0.45, 0.15], "reproduced"),
     (False, [-0.1, -0.15, -0.15, -0.375, -0.15], "not reproduced")],
)  # fmt: skip
def test_findings_clear_cases(holds, margins, expected):
    f = by_claim(stats.findings(findings_table(findings_spec(holds)), n_boot=300))
    assert f["margin"].tolist() == pytest.approx(margins)
    assert (f["verdict"] == expected).all(), f[["measured", "verdict"]]
    assert ((f["low"] <= f["margin"]) & (f["margin"] <= f["high"])).all()
    assert (f["images"] == 12).all() and (f["dataset"] == "berkeley").all()
    # the numbers behind each margin are in the text, each with its interval
    assert f.loc[1, "measured"].startswith(
        f"gto99 - ritm: precision {0.1 * (1 if holds else -1):+.3f} ["
    )
    assert "under rritm" in f.loc[2, "measured"] and "mean over robots" in f.loc[3, "measured"]
    assert "procedure effect on the spread" in f.loc[4, "measured"]


def test_findings_ambiguous_data_cannot_tell():
    # every model scores the same under every robot, up to per-image noise
    t = findings_table({(m, r): {"iou": 0.6} for m in (RITM, GTO, RG, GR) for r in ROBOTS},
                       jitter=0.1)  # fmt: skip
    f = by_claim(stats.findings(t, n_boot=300))
    assert (f["verdict"] == "these data cannot tell").all(), f[["low", "high"]]
    assert ((f["low"] < 0) & (f["high"] > 0)).all()


def test_findings_missing_models_robots_datasets():
    t = findings_table(findings_spec(True))
    f = by_claim(stats.findings(t[t["model"] != GR], n_boot=100))
    assert f.loc[4, "verdict"] == "these data cannot tell" and np.isnan(f.loc[4, "margin"])
    assert "missing from the table" in f.loc[4, "measured"] and GR in f.loc[4, "measured"]
    assert (f.drop(index=4)["verdict"] == "reproduced").all()
    # without rritm only nothing can be said: claims 1, 2, 5 need it, 3 and 4 need all seven
    f = by_claim(stats.findings(t[t["robot"] != "rritm"], n_boot=100))
    assert (f["verdict"] == "these data cannot tell").all() and (f["images"] == 0).all()
    assert f["measured"].str.contains("under rritm").all()
    f = stats.findings(t, ["berkeley", "grabcut"], n_boot=100)
    assert len(f) == 10 and f.groupby("dataset").size().to_dict() == {"berkeley": 5, "grabcut": 5}
    gc = f[f["dataset"] == "grabcut"]
    assert (gc["verdict"] == "these data cannot tell").all()
    assert gc["measured"].str.contains("dataset grabcut").all()


def test_findings_verdict_per_dataset():
    t = pd.concat([findings_table(findings_spec(True), dataset="berkeley"),
                   findings_table(findings_spec(False), dataset="grabcut")])  # fmt: skip
    f = stats.findings(t, n_boot=100).set_index(["dataset", "claim"])["verdict"]
    assert (f["berkeley"] == "reproduced").all() and (f["grabcut"] == "not reproduced").all()
    assert stats.findings(t, ["grabcut"], n_boot=100)["dataset"].unique().tolist() == ["grabcut"]


def test_findings_few_clicks_are_the_first_clicks():
    # Claim 1 holds over clicks 1-5 and reverses over clicks 6-8, more strongly.
    s = findings_spec(True)
    s[(GTO, "rgto99")].update(precision=[0.7] * 5 + [0.2] * 3, dice=[0.65] * 5 + [0.2] * 3,
                              recall=[0.5] * 5 + [0.9] * 3)  # fmt: skip
    t = findings_table(s, clicks=8)
    f = by_claim(stats.findings(t, n_boot=100))
    assert f.loc[1, "verdict"] == "reproduced" and "clicks 1-5" in f.loc[1, "statement"]
    f = by_claim(stats.findings(t, few_clicks=8, n_boot=100))
    assert f.loc[1, "verdict"] == "not reproduced" and "clicks 1-8" in f.loc[1, "statement"]
    # a table shorter than few_clicks uses all its clicks, and says so
    f = by_claim(stats.findings(t[t["click"] <= 3], n_boot=100))
    assert "clicks 1-3" in f.loc[1, "statement"] and "clicks 1-3" in f.loc[2, "statement"]


def test_findings_too_few_images_cannot_tell():
    f = by_claim(stats.findings(findings_table(findings_spec(True), n_images=4), n_boot=100))
    assert (f["verdict"] == "these data cannot tell").all()
    assert (f["images"] == 4).all() and (f["margin"] > 0).all()
    assert f["measured"].str.contains("too few for a verdict").all()
    f = stats.findings(findings_table(findings_spec(True), n_images=4), min_images=4, n_boot=100)
    assert (f["verdict"] == "reproduced").all()


def test_findings_rejects_bad_input():
    t = findings_table(findings_spec(True), n_images=3)
    mixed = pd.concat([t, t.assign(settings="direct")])
    with pytest.raises(ValueError, match="several settings"):
        stats.findings(mixed)
    with pytest.raises(ValueError, match="lacks columns"):
        stats.findings(t.drop(columns="robot"))
    with pytest.raises(ValueError, match="few_clicks"):
        stats.findings(t, few_clicks=0)
    with pytest.raises(ValueError, match="unknown metric"):
        stats.findings(t, metric="nope")


def test_verdict_rule():
    assert stats.verdict(0.01, 0.2) == "reproduced"
    assert stats.verdict(-0.2, -0.01) == "not reproduced"
    assert stats.verdict(-0.1, 0.1) == "these data cannot tell"
    assert stats.verdict(0.0, 0.1) == "these data cannot tell"  # touching 0 is not excluding it
    assert stats.verdict(1e-17, 0.1) == "these data cannot tell"  # rounding does not decide
    assert stats.verdict(np.nan, 0.1) == "these data cannot tell"


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.3))
def test_findings_spread_claim_is_antisymmetric_in_the_two_models(seed, shift):
    # Claim 3 compares the two models' spreads: swapping their labels negates the margin and
    # its interval (same images resampled), so the verdict flips or stays "cannot tell".
    rng = np.random.default_rng(seed)
    spec = {(m, r): {"iou": float(rng.uniform(0.2, 0.8)) + (shift if m == GTO and r == "r01"
                                                              else 0.0)}
            for m in (RITM, GTO) for r in ROBOTS}  # fmt: skip
    t = findings_table(spec, jitter=float(rng.uniform(0, 0.2)))
    swapped = t.assign(model=t["model"].map({RITM: GTO, GTO: RITM}))
    a = by_claim(stats.findings(t, n_boot=60)).loc[3]
    b = by_claim(stats.findings(swapped, n_boot=60)).loc[3]
    assert b["margin"] == pytest.approx(-a["margin"], abs=1e-12)
    assert (b["low"], b["high"]) == pytest.approx((-a["high"], -a["low"]), abs=1e-12)
    flip = {"reproduced": "not reproduced", "not reproduced": "reproduced"}
    assert b["verdict"] == flip.get(a["verdict"], a["verdict"])


def test_paper_vs_compact_reads_the_shipped_config(monkeypatch, tmp_path):
    from iislib.models import compact

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    monkeypatch.setattr(compact, "shipped_weights",
                        lambda name: weights if name == RITM else tmp_path / "none.pt")  # fmt: skip
    monkeypatch.setattr(compact, "training_config", lambda name: {
        "parameters": 1234, "sets": ["horses", "bsds"], "recipe_name": "long",
        "recipe": {"crop": 160, "batch_size": 16, "steps": 6400}})  # fmt: skip
    d = stats.paper_vs_compact()
    assert d.loc[("ritm", "network"), "here"] == "ritm-compact: 1,234 parameters"
    assert d.loc[("ritm", "training"), "here"].startswith("crops 160x160, batch 16, 6400 steps")
    assert "Weizmann horses, BSDS500" in d.loc[("ritm", "training data"), "here"]
    assert d.loc[("gto99", "network"), "here"] == "gto99-compact: no shipped weights"
    assert d.loc[("ritm", "training data"), "paper"] == "SBD"
