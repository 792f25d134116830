"""The oracle envelope over a sweep table: widths, the model gap, the lesson and the finding,
on small tables worked out by hand; the figure, the notebook's sweep and the runner's cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from iislib.core.robots import ENVELOPE_NAMES, ROBOT_NAMES
from iislib.experiment import envelope, findings
from tests.test_stats import make_table

RITM, GTO = envelope.PAPER_PAIR


def toy(n_images: int = 12, clicks: int = 5, width: float = 0.4, gap: float = 0.05,
        noise: float = 0.0, envelope_images: int | None = None) -> pd.DataFrame:  # fmt: skip
    """Both paper models under the seven robots and the envelope. Robot j of model m scores
    0.3 + 0.02 j (+ ``gap`` for gto99) at every click; rbest 0.3 + width, rworst 0.3 (+ gap for
    gto99), so the widths are ``width`` and the largest gap ``gap``. ``noise``: per-image
    jitter, the same for every robot (it cancels in paired differences). The envelope is on the
    first ``envelope_images`` images only (default: all)."""
    rng = np.random.default_rng(0)
    jitter = rng.normal(0, noise, n_images)
    rows = []
    for m, shift in ((RITM, 0.0), (GTO, gap)):
        for i in range(n_images):
            scores = {r: 0.3 + 0.02 * j + shift for j, r in enumerate(ROBOT_NAMES)}
            if envelope_images is None or i < envelope_images:
                scores |= {"rbest": 0.3 + width + shift, "rworst": 0.3 + shift}
            for r, v in scores.items():
                for k in range(1, clicks + 1):
                    rows.append((m, r, f"img{i}", 0, k, v + jitter[i]))
    return make_table(rows)


def test_widths_and_gap_by_hand():
    t = toy(width=0.4, gap=0.05, envelope_images=3)
    assert envelope.envelope_images(t, RITM) == ["img0", "img1", "img2"]
    w = envelope.envelope_widths(t, clicks=(1, 5, 10))
    assert list(w.columns) == ["@1", "@5", "images"]  # click 10 is beyond the table
    np.testing.assert_allclose(w.loc[[RITM, GTO], ["@1", "@5"]], 0.4)
    assert (w["images"] == 3).all()
    gap = envelope.model_gap(t, clicks=(1, 5))
    np.testing.assert_allclose(gap.to_numpy(), 0.05)
    table = envelope.widths_table(t, clicks=(1, 5))
    assert table.shape == (3, 3) and table.iloc[2]["images"] == 3
    np.testing.assert_allclose(table.iloc[2][["@1", "@5"]].to_numpy(float), 0.05)


def test_curves_use_the_envelope_images_only():
    t = toy(envelope_images=2)
    # robot r01 on img5 would drag its mean if every image entered
    t.loc[(t["robot"] == "r01") & (t["image"] == "img5"), "iou"] = 0.0
    c = envelope.envelope_curves(t)
    r01 = c[(c["model"] == RITM) & (c["robot"] == "r01")]
    np.testing.assert_allclose(r01["mean"], 0.3)
    assert (c["images"] == 2).all()
    assert list(dict.fromkeys(c["robot"]))[:3] == ["rbest", "rworst", "r01"]


def test_lesson_states_the_computed_numbers():
    text = envelope.lesson(toy(width=0.4, gap=0.05))
    assert "IoU@5 by 0.400" in text and "differ by at most 0.050" in text and "8.0x" in text
    assert "no envelope" in envelope.lesson(toy().query("robot not in @ENVELOPE_NAMES")).lower()


@pytest.mark.parametrize(
    ("width", "gap", "verdict"),
    [(0.4, 0.05, "reproduced"), (0.05, 0.4, "not reproduced")],
)
def test_finding_verdicts(width, gap, verdict):
    row = envelope.oracle_vs_model(toy(width=width, gap=gap, noise=0.05), "toy", n_boot=200)
    assert set(row) == set(findings.FINDINGS_COLUMNS)
    assert row["verdict"] == verdict and row["images"] == 12
    assert row["margin"] == pytest.approx(width - gap)  # noise cancels: paired per image
    assert row["low"] <= row["margin"] <= row["high"]
    assert "IoU@5" in row["quantity"] and f"{width:.3f}" in row["measured"]


def test_finding_cannot_tell_with_few_images_or_a_missing_robot():
    few = envelope.oracle_vs_model(toy(envelope_images=4), n_boot=100)
    assert few["verdict"] == "these data cannot tell" and few["images"] == 4
    assert "too few" in few["measured"]
    t = toy()
    missing = envelope.oracle_vs_model(t[t["robot"] != "rworst"], n_boot=100)
    assert missing["verdict"] == "these data cannot tell" and np.isnan(missing["margin"])
    assert "rworst" in missing["measured"]


def test_finding_margin_is_the_smaller_width_minus_the_largest_gap():
    t = toy(width=0.4, gap=0.0)
    # gto99 gains 0.1 under rritm only: the largest gap is 0.1; shrink ritm's band to 0.3
    t.loc[(t["model"] == GTO) & (t["robot"] == "rritm"), "iou"] += 0.1
    t.loc[(t["model"] == RITM) & (t["robot"] == "rbest"), "iou"] -= 0.1
    row = envelope.oracle_vs_model(t, n_boot=50)
    assert row["margin"] == pytest.approx(0.3 - 0.1)


def test_figure_draws_one_panel_per_model_or_says_why():
    from iislib.drawing import figures

    fig = figures.fig_envelope(toy(envelope_images=3))
    axes = [a for a in fig.axes if a.get_title()]
    assert [a.get_title().split("\n")[0] for a in axes] == [RITM, GTO]
    assert "width@5 0.40" in axes[0].get_title() and "3 images" in axes[0].get_title()
    t = toy()
    assert figures.fig_envelope(t[~t["robot"].isin(ENVELOPE_NAMES)]) is None


def test_notebook_requests_the_envelope_and_the_runner_weighs_it(tmp_path, data_root):
    from iislib.apps import paper, runner

    cfg = paper.config(models="random_walker", n_images=20, max_clicks=3)
    sweeps = paper.robustness_sweeps(cfg, [0], 2, [], envelope_images=4)
    env = sweeps["envelope"]
    assert env.robots == ENVELOPE_NAMES and env.n_images == 4 and env.models == ("random_walker",)
    assert paper.robustness_sweeps(cfg, [0], 2, [], envelope_images=0)["envelope"].n_images is None
    plan = paper.make_plan([env, sweeps["main"]], cache=tmp_path)
    by_job = {j.image: j for j in plan.jobs}
    first = by_job[cfg.names[0]]  # the seven and the envelope in one job
    assert first.robots == (*ROBOT_NAMES, *ENVELOPE_NAMES)
    factor = runner.ROBOT_COST_FACTOR["rbest"]
    assert runner.weighted_clicks(first) == pytest.approx(3 * (7 + 2 * factor))
    assert runner.weighted_clicks(by_job[cfg.names[10]]) == pytest.approx(3 * 7)
    assert runner.cost_clicks(plan)["random_walker"] == pytest.approx(3 * (20 * 7 + 4 * 2 * factor))


def test_finding_intervals_hold_their_estimates_when_the_gaps_are_near_zero():
    # The models tie under every robot up to per-image noise, so the largest |gap| over seven
    # robots is small and biased upward in the resamples: a bootstrap of the max itself (BCa)
    # gave an interval that excluded its own estimate on GrabCut. Part by part, every interval
    # holds its estimate and the margin's is the smallest of the parts'.
    rng = np.random.default_rng(3)
    t = toy(n_images=10, width=0.4, gap=0.0)
    for robot in ROBOT_NAMES:  # gto99 differs per image, by 0 on average under each robot
        e = rng.normal(0, 0.05, 10)
        sel = (t["model"] == GTO) & (t["robot"] == robot)
        t.loc[sel, "iou"] += (e - e.mean())[t.loc[sel, "image"].str[3:].astype(int)]
    row = envelope.oracle_vs_model(t, "toy", n_boot=500)
    widths = envelope.envelope_widths(t, clicks=(5,))["@5"]
    gap = envelope.model_gap(t, clicks=(5,)).to_numpy().max()
    assert row["margin"] == pytest.approx(min(widths[RITM], widths[GTO]) - gap)
    assert row["low"] <= row["margin"] <= row["high"]
    import re

    for est, lo, hi in re.findall(r"([+-]?\d\.\d{3}) \[([+-]?\d\.\d{3}), ([+-]?\d\.\d{3})\]",
                                  row["measured"]):  # fmt: skip
        assert float(lo) <= float(est) <= float(hi), row["measured"]
    assert "28 parts" in row["measured"] and row["verdict"] == "reproduced"


def test_finding_pooled_weighs_each_dataset_the_same():
    # A: 12 images, widths 0.4, largest gap 0.05; B: 30 images, widths 0.1, gap 0.3. Equal
    # weights: widths 0.25, gap 0.175, margin +0.075. Weighted by images B would dominate
    # (widths 0.186, gap 0.229: a negative margin).
    a = toy(n_images=12, width=0.4, gap=0.05, noise=0.05).assign(dataset="A")
    b = toy(n_images=30, width=0.1, gap=0.3, noise=0.05).assign(dataset="B")
    both = pd.concat([a, b], ignore_index=True)
    rows = {ds: envelope.oracle_vs_model(both, ds, n_boot=300) for ds in ("A", "B")}
    assert rows["A"]["verdict"] == "reproduced" and rows["B"]["verdict"] == "not reproduced"
    pooled = envelope.oracle_vs_model(both, ["A", "B"], n_boot=300)
    assert pooled["dataset"] == findings.POOLED and pooled["images"] == 42
    assert pooled["margin"] == pytest.approx(0.075)
    assert pooled["low"] <= pooled["margin"] <= pooled["high"]
    assert pooled["verdict"] == "reproduced"  # the noise cancels: paired per image
    # a dataset without the envelope cannot be pooled; one with too few images gives no verdict
    gone = envelope.oracle_vs_model(both[~((both["dataset"] == "B") & (both["robot"] == "rbest"))],
                                    ["A", "B"], n_boot=100)  # fmt: skip
    assert gone["verdict"] == "these data cannot tell" and "B: missing" in gone["measured"]
    few = pd.concat([a, toy(n_images=4, noise=0.05).assign(dataset="C")], ignore_index=True)
    row = envelope.oracle_vs_model(few, ["A", "C"], n_boot=100)
    assert row["verdict"] == "these data cannot tell" and "too few" in row["measured"]
    with pytest.raises(ValueError, match="two datasets or more"):
        envelope.oracle_vs_model(both, ["A"])
