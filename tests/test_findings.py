"""The paper's claims (iislib.experiment.findings): per dataset and pooled, on synthetic tables
whose verdicts are worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iislib.experiment import findings as fd
from iislib.experiment.sweep import COLUMNS

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
    assert list(f.columns) == list(fd.FINDINGS_COLUMNS)
    return f.set_index("claim")


@pytest.mark.parametrize(
    ("holds", "margins", "expected"),
    [(True, [0.05, 0.15, 0.5, 0.45, 0.15], "reproduced"),
     (False, [-0.1, -0.15, -0.15, -0.375, -0.15], "not reproduced")],
)  # fmt: skip
def test_findings_clear_cases(holds, margins, expected):
    f = by_claim(fd.findings(findings_table(findings_spec(holds)), n_boot=300))
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
    f = by_claim(fd.findings(t, n_boot=300))
    assert (f["verdict"] == "these data cannot tell").all(), f[["low", "high"]]
    assert ((f["low"] < 0) & (f["high"] > 0)).all()


def test_findings_missing_models_robots_datasets():
    t = findings_table(findings_spec(True))
    f = by_claim(fd.findings(t[t["model"] != GR], n_boot=100))
    assert f.loc[4, "verdict"] == "these data cannot tell" and np.isnan(f.loc[4, "margin"])
    assert "missing from the table" in f.loc[4, "measured"] and GR in f.loc[4, "measured"]
    assert (f.drop(index=4)["verdict"] == "reproduced").all()
    # without rritm only nothing can be said: claims 1, 2, 5 need it, 3 and 4 need all seven
    f = by_claim(fd.findings(t[t["robot"] != "rritm"], n_boot=100))
    assert (f["verdict"] == "these data cannot tell").all() and (f["images"] == 0).all()
    assert f["measured"].str.contains("under rritm").all()
    f = fd.findings(t, ["berkeley", "grabcut"], n_boot=100)
    assert f.groupby("dataset").size().to_dict() == {"berkeley": 5, "grabcut": 5, "pooled": 5}
    gc = f[f["dataset"] == "grabcut"]
    assert (gc["verdict"] == "these data cannot tell").all()
    assert gc["measured"].str.contains("dataset grabcut").all()
    # pooled over a dataset the table lacks: nothing can be said, and the row says why
    pooled = f[f["dataset"] == "pooled"]
    assert (pooled["verdict"] == "these data cannot tell").all() and (pooled["images"] == 0).all()
    assert pooled["measured"].str.contains("grabcut: dataset grabcut").all()


def test_findings_verdict_per_dataset():
    t = pd.concat([findings_table(findings_spec(True), dataset="berkeley"),
                   findings_table(findings_spec(False), dataset="grabcut")])  # fmt: skip
    f = fd.findings(t, n_boot=100).set_index(["dataset", "claim"])["verdict"]
    assert (f["berkeley"] == "reproduced").all() and (f["grabcut"] == "not reproduced").all()
    assert fd.findings(t, ["grabcut"], n_boot=100)["dataset"].unique().tolist() == ["grabcut"]


def test_findings_few_clicks_are_the_first_clicks():
    # Claim 1 holds over clicks 1-5 and reverses over clicks 6-8, more strongly.
    s = findings_spec(True)
    s[(GTO, "rgto99")].update(precision=[0.7] * 5 + [0.2] * 3, dice=[0.65] * 5 + [0.2] * 3,
                              recall=[0.5] * 5 + [0.9] * 3)  # fmt: skip
    t = findings_table(s, clicks=8)
    f = by_claim(fd.findings(t, n_boot=100))
    assert f.loc[1, "verdict"] == "reproduced" and "clicks 1-5" in f.loc[1, "statement"]
    f = by_claim(fd.findings(t, few_clicks=8, n_boot=100))
    assert f.loc[1, "verdict"] == "not reproduced" and "clicks 1-8" in f.loc[1, "statement"]
    # a table shorter than few_clicks uses all its clicks, and says so
    f = by_claim(fd.findings(t[t["click"] <= 3], n_boot=100))
    assert "clicks 1-3" in f.loc[1, "statement"] and "clicks 1-3" in f.loc[2, "statement"]


def test_findings_too_few_images_cannot_tell():
    f = by_claim(fd.findings(findings_table(findings_spec(True), n_images=4), n_boot=100))
    assert (f["verdict"] == "these data cannot tell").all()
    assert (f["images"] == 4).all() and (f["margin"] > 0).all()
    assert f["measured"].str.contains("too few for a verdict").all()
    f = fd.findings(findings_table(findings_spec(True), n_images=4), min_images=4, n_boot=100)
    assert (f["verdict"] == "reproduced").all()


def test_findings_rejects_bad_input():
    t = findings_table(findings_spec(True), n_images=3)
    mixed = pd.concat([t, t.assign(settings="direct")])
    with pytest.raises(ValueError, match="several settings"):
        fd.findings(mixed)
    with pytest.raises(ValueError, match="lacks columns"):
        fd.findings(t.drop(columns="robot"))
    with pytest.raises(ValueError, match="few_clicks"):
        fd.findings(t, few_clicks=0)
    with pytest.raises(ValueError, match="unknown metric"):
        fd.findings(t, metric="nope")


def test_verdict_rule():
    assert fd.verdict(0.01, 0.2) == "reproduced"
    assert fd.verdict(-0.2, -0.01) == "not reproduced"
    assert fd.verdict(-0.1, 0.1) == "these data cannot tell"
    assert fd.verdict(0.0, 0.1) == "these data cannot tell"  # touching 0 is not excluding it
    assert fd.verdict(1e-17, 0.1) == "these data cannot tell"  # rounding does not decide
    assert fd.verdict(np.nan, 0.1) == "these data cannot tell"


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
    a = by_claim(fd.findings(t, claims=[3], n_boot=60)).loc[3]
    b = by_claim(fd.findings(swapped, claims=[3], n_boot=60)).loc[3]
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
    d = fd.paper_vs_compact()
    assert d.loc[("ritm", "network"), "here"] == "ritm-compact: 1,234 parameters"
    assert d.loc[("ritm", "training"), "here"].startswith("crops 160x160, batch 16, 6400 steps")
    assert "Weizmann horses, BSDS500" in d.loc[("ritm", "training data"), "here"]
    assert d.loc[("gto99", "network"), "here"] == "gto99-compact: no shipped weights"
    assert d.loc[("ritm", "training data"), "paper"] == "SBD"


# ----------------------------------------------------------------------------------------------
# pooled over datasets: equal weights, images resampled within each dataset


def two_datasets(berkeley: dict, grabcut: dict, n_b: int = 12, n_g: int = 36, **kw) -> pd.DataFrame:
    return pd.concat([findings_table(berkeley, n_images=n_b, dataset="berkeley", **kw),
                      findings_table(grabcut, n_images=n_g, dataset="grabcut", **kw)],
                     ignore_index=True)  # fmt: skip


def test_pooled_datasets_that_disagree_in_sign_weigh_the_same():
    # Berkeley (12 images) holds every claim, GrabCut (36 images) fails every one.
    f = fd.findings(two_datasets(findings_spec(True), findings_spec(False)), n_boot=300)
    v = f.set_index(["dataset", "claim"])
    assert (v.loc["berkeley", "verdict"] == "reproduced").all()
    assert (v.loc["grabcut", "verdict"] == "not reproduced").all()
    pooled = v.loc["pooled"]
    # By hand, from the pooled means (each dataset 1/2, whatever its images):
    # 1: precision (0.1 - 0.1) / 2 = 0, Dice 0, recall 0; 2: under rritm (0.15 - 0.15) / 2 = 0;
    # 3: gto99's pooled means r01 0.45, rgto99 0.8 -> spread 0.35, ritm's r01 0.35 -> 0.25;
    # 4: spreads ritm 0.25, gto99-ritmproc 0.3, gto99 0.35, ritm-gto99proc 0.2 -> effect 0;
    # 5: under rritm 0, under rgto99 -0.2 -> the larger is 0.
    # Weighted by images instead, claim 2 would be (12 x 0.15 - 36 x 0.15) / 48 = -0.075.
    assert pooled["margin"].tolist() == pytest.approx([0.0, 0.0, 0.1, 0.0, 0.0], abs=1e-9)
    assert pooled.loc[3, "verdict"] == "reproduced"
    assert (pooled.drop(index=3)["verdict"] == "these data cannot tell").all()
    assert ((pooled["low"] < 0) & (pooled["high"] > 0)).drop(index=3).all()
    # the pooled claim 3 is read on the pooled means, not the mean of the two margins (0.175)
    assert v.loc[("berkeley", 3), "margin"] == pytest.approx(0.5)
    assert v.loc[("grabcut", 3), "margin"] == pytest.approx(-0.15)
    assert (pooled["images"] == 48).all()
    assert list(f["dataset"][:3]) == ["berkeley", "grabcut", "pooled"]  # per claim, pooled last


def test_pooled_sign_follows_the_equal_weight_mean_not_the_image_count():
    # gto99 - ritm under rritm: +0.1 on 12 Berkeley images, -0.06 on 36 GrabCut images:
    # equal weights +0.02 (claim 2 holds pooled); weighted by images it would be -0.02.
    def spec(d: float) -> dict:
        s = {(m, r): {"iou": 0.6} for m in (RITM, GTO) for r in ("rgto99", "rritm")}
        s[(GTO, "rgto99")]["iou"] = 0.8
        s[(GTO, "rritm")]["iou"] = 0.6 + d
        return s

    t = two_datasets(spec(0.1), spec(-0.06), jitter=0.01)
    f = fd.findings(t, claims=[2], n_boot=500).set_index("dataset")
    assert f.loc["berkeley", "verdict"] == "reproduced"
    assert f.loc["grabcut", "verdict"] == "not reproduced"
    assert f.loc["pooled", "margin"] == pytest.approx(0.02, abs=1e-9)
    assert f.loc["pooled", "verdict"] == "reproduced", f.loc["pooled", "measured"]
    assert "under rritm +0.020 [" in f.loc["pooled", "measured"]


def test_pooling_two_agreeing_datasets_narrows_the_interval():
    t = two_datasets(findings_spec(True), findings_spec(True), n_g=12)
    f = fd.findings(t, n_boot=500)
    width = (f["high"] - f["low"]).to_numpy().reshape(5, 3)  # claim x (berkeley, grabcut, pooled)
    assert (width[:, 2] < width[:, :2].min(axis=1)).all(), width
    assert (f[f["dataset"] == "pooled"]["verdict"] == "reproduced").all()
    table = fd.side_by_side(f)
    assert list(table.columns[:3]) == [("berkeley", "verdict"), ("berkeley", "interval"),
                                       ("berkeley", "width")]  # fmt: skip
    assert [c[0] for c in table.columns[::3]] == ["berkeley", "grabcut", "pooled"]
    assert table.loc[2, ("pooled", "width")] == pytest.approx(round(width[1, 2], 3))
    assert table.loc[3, ("berkeley", "interval")].startswith("+0.500 [")


def test_pooled_needs_every_dataset_measured_and_large_enough():
    t = two_datasets(findings_spec(True), findings_spec(True), n_g=4)
    f = fd.findings(t, claims=[2], n_boot=100).set_index("dataset")
    assert f.loc["berkeley", "verdict"] == "reproduced"
    assert f.loc["grabcut", "verdict"] == f.loc["pooled", "verdict"] == "these data cannot tell"
    assert "(only 4 images in grabcut: too few for a verdict)" in f.loc["pooled", "measured"]
    # a model missing on one dataset: the pooled row says where
    t = t[~((t["dataset"] == "grabcut") & (t["model"] == GTO))]
    f = fd.findings(t, claims=[2], n_boot=100).set_index("dataset")
    assert f.loc["pooled", "verdict"] == "these data cannot tell"
    assert f.loc["pooled", "measured"].startswith("missing from the table: grabcut: gto99-compact")


def test_pooled_rows_when_asked_and_their_clicks():
    one = findings_table(findings_spec(True))
    assert "pooled" not in set(fd.findings(one, claims=[2], n_boot=50)["dataset"])
    f = fd.findings(one, claims=[2], pooled=True, n_boot=50).set_index("dataset")
    # pooled over one dataset is that dataset
    assert f.loc["pooled", ["margin", "low", "high"]].tolist() == pytest.approx(
        f.loc["berkeley", ["margin", "low", "high"]].tolist())  # fmt: skip
    t = two_datasets(findings_spec(True), findings_spec(True), n_g=12)
    assert "pooled" not in set(fd.findings(t, claims=[2], pooled=False, n_boot=50)["dataset"])
    # datasets run with other click counts are pooled on the clicks they share
    t = t[(t["dataset"] == "berkeley") | (t["click"] <= 4)]
    f = fd.findings(t, claims=[2], n_boot=50).set_index("dataset")
    assert "clicks 1-6" in f.loc["berkeley", "statement"]
    assert (
        "clicks 1-4" in f.loc["grabcut", "statement"]
        and "clicks 1-4" in f.loc["pooled", "statement"]
    )


def test_another_claim_can_be_registered(monkeypatch):
    monkeypatch.setattr(fd, "CLAIMS", dict(fd.CLAIMS))

    def oracle_gap(t: pd.DataFrame, s: fd.Setup) -> fd.Measurement:
        w, missing = fd.columns(t, s.metric, [(RITM, "r01"), (RITM, "rritm")], s.last)
        if w is None:
            return fd.Measurement("rritm - r01", missing=missing)
        d = (w[(RITM, "rritm")] - w[(RITM, "r01")]).to_numpy()
        return fd.Measurement("rritm - r01", (fd.Quantity("ritm-compact", d),))

    fd.register(fd.Claim(6, "an envelope", "The robot moves the score (clicks 1-{last}).",
                         oracle_gap))  # fmt: skip
    with pytest.raises(ValueError, match="claim 6 is already registered"):
        fd.register(fd.Claim(6, "again", "", oracle_gap))
    s = findings_spec(True)
    s[(RITM, "rritm")]["iou"] = 0.9
    t = two_datasets(s, s, n_g=12)
    f = fd.findings(t, n_boot=100)
    assert f.groupby("claim").size().to_dict() == {c: 3 for c in (1, 2, 3, 4, 5, 6)}
    six = fd.findings(t, claims=[6], n_boot=100).set_index("dataset")
    assert six["margin"].tolist() == pytest.approx([0.3, 0.3, 0.3])
    assert (six["verdict"] == "reproduced").all() and "clicks 1-6" in six.loc["pooled", "statement"]
    with pytest.raises(ValueError, match=r"unknown claim\(s\) \[7\]"):
        fd.findings(t, claims=[7])


# ---- `iislib findings`: the claims from the notebooks' cached sweeps, with the chosen bootstrap ----
def test_cli_findings_reads_the_notebook_sweeps_and_uses_the_chosen_bootstrap(
    data_root, tmp_path, monkeypatch, capsys
):
    from iislib import paths
    from iislib.apps import paper
    from iislib.apps.cli import main

    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    args = ["findings", "--datasets", "berkeley,grabcut", "--n-images", "3", "--max-clicks",
            "2", "--jobs", "1", "--n-boot", "200", "--quiet"]  # fmt: skip
    out = tmp_path / "percentile.csv"
    assert main([*args, "--method", "percentile", "--out", str(out)]) == 0
    got = pd.read_csv(out)
    assert list(got["dataset"].unique()) == ["berkeley", "grabcut", fd.POOLED]
    assert set(got["claim"]) == set(fd.CLAIMS)
    # 3 images are fewer than a verdict needs, whatever the margins
    assert set(got["verdict"]) == {fd.VERDICTS[2]}
    # the same sweeps as notebook 04 (the cache now answers them all) and the same call
    cfg = paper.config(dataset="berkeley", n_images=3, max_clicks=2, n_jobs=1)
    reqs = paper.findings_requests(cfg, ["berkeley", "grabcut"])
    assert not paper.make_plan(list(reqs.values())).jobs
    table = pd.concat([r.run(progress=False) for r in reqs.values()], ignore_index=True)
    want = fd.findings(table, ["berkeley", "grabcut"], n_boot=200, method="percentile")
    np.testing.assert_allclose(got[["margin", "low", "high"]], want[["margin", "low", "high"]],
                               atol=1e-5)  # fmt: skip
    bca = tmp_path / "bca.csv"
    assert main([*args, "--out", str(bca)]) == 0
    assert not np.allclose(pd.read_csv(bca)[["low", "high"]].fillna(0),
                           got[["low", "high"]].fillna(0))  # fmt: skip
    capsys.readouterr()
    assert main(["findings", "--datasets", "berkeley,coco", "--out", str(tmp_path / "x.csv")]) == 2
    assert "--datasets must name some of" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_describe_prints_each_claim_with_its_datasets_and_pooled_row():
    spec = {(m, r): {"iou": v} for m, v in ((RITM, 0.6), (GTO, 0.7)) for r in ROBOTS}
    t = pd.concat(
        [findings_table(spec, dataset="berkeley"), findings_table(spec, dataset="grabcut")],
        ignore_index=True,
    )
    found = fd.findings(t, n_boot=100, claims=[2, 5])
    text = fd.describe(found)
    blocks = text.split("\n\n")
    assert len(blocks) == 2
    assert blocks[0].startswith("Claim 2 (") and blocks[1].startswith("Claim 5 (")
    lines = blocks[0].splitlines()
    assert [x.split(":")[0].strip() for x in lines[1:]] == ["berkeley", "grabcut", fd.POOLED]
    r = found.iloc[0]
    assert f"{r.margin:+.3f} [{r.low:+.3f}, {r.high:+.3f}], {r.images} images. Measured: " in text
    assert "Measured" not in fd.describe(found, measured=False)
