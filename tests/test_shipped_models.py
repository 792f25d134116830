"""The shipped compact models load and reproduce their cards' numbers."""

from __future__ import annotations

import json

import pytest

from iislib.experiment.cards import CARDS_DIR, subset_check
from iislib.models import get_model, ready_models
from iislib.models.compact import COMPACT_NAMES, shipped_weights

SHIPPED = [n for n in COMPACT_NAMES if shipped_weights(n).is_file()]


def test_the_papers_pair_is_shipped():
    assert {"ritm-compact", "gto99-compact"} <= set(SHIPPED)
    assert set(SHIPPED) <= set(ready_models())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_are_small_and_load(name):
    assert shipped_weights(name).stat().st_size <= 8_000_000
    model = get_model(name)
    n_params = sum(p.numel() for p in model.net.parameters())
    assert n_params <= 3_000_000
    assert (CARDS_DIR / f"{name}.md").is_file()


@pytest.mark.parametrize("name", SHIPPED)
def test_card_subset_miou_is_reproduced(name, data_root):
    checks = json.loads((CARDS_DIR / "checks.json").read_text())
    expected = checks[name]["berkeley_first10_rgto99_ipol_miou@5"]
    assert subset_check(name, str(data_root)) == pytest.approx(expected, abs=0.01)


def test_missing_weights_give_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train them with"):
        get_model("ritm-compact", weights=tmp_path / "none.pt")


def test_paper_leaves_out_the_cross_trained_controls_and_ready_holds_them():
    from iislib.apps.paper import resolve_models
    from iislib.models import CROSS_TRAINED

    paper = resolve_models("paper")
    assert {"random_walker", "ritm-compact", "gto99-compact"} <= set(paper)
    assert not set(CROSS_TRAINED) & set(paper)
    assert set(CROSS_TRAINED) <= set(resolve_models("ready")) == set(ready_models())


def test_design_differences_names_the_contrast_each_difference_confounds(tmp_path, monkeypatch):
    import torch

    from iislib.models import compact

    monkeypatch.setattr(compact, "WEIGHTS_DIR", tmp_path)
    base = {"recipe": {"steps": 2000, "lr": 1e-3}, "seed": 0, "sets": ["horses", "bsds"]}
    longer = {**base, "recipe": {"steps": 3200, "lr": 1e-3, "checkpoint_every": 7}}

    def ship(**configs):
        for name, config in configs.items():
            torch.save({"config": config, "state_dict": {}}, tmp_path / f"{name}.pt")

    ship(**{"ritm-compact": base, "gto99-compact": base, "ritm-compact-gto99proc": base})
    assert compact.design_differences() == []  # the missing fourth model is left out
    # one model trained longer: it breaks its family's pair and its procedure's pair
    ship(**{"gto99-compact-ritmproc": longer})
    proc, fam = compact.design_differences()
    assert proc == (
        "procedure effect: recipe differs: gto99-compact {'steps': 2000}; "
        "gto99-compact-ritmproc {'steps': 3200}"
    )
    assert fam.startswith("family effect: recipe differs: ritm-compact {'steps': 2000}")
    assert "lr" not in proc + fam and "checkpoint_every" not in proc + fam  # same, or no effect
    # one family trained longer, each pair alike: the procedure effect stays clean
    ship(
        **{"ritm-compact": longer, "ritm-compact-gto99proc": longer, "gto99-compact-ritmproc": base}
    )
    problems = compact.design_differences()
    assert len(problems) == 2 and all(p.startswith("family effect: ") for p in problems)
    ship(**{"gto99-compact": {**base, "seed": 1}})
    assert any(p.startswith("procedure effect: seed differs") for p in compact.design_differences())


@pytest.mark.parametrize("name", ["ritm-compact", "gto99-compact"])
def test_fast_inference_matches_the_plain_network(name):
    import numpy as np
    import torch

    from iislib.core.clicks import Click

    fast, plain = get_model(name), get_model(name, fast=False)
    w = next(p for p in fast.net.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert w.is_contiguous(memory_format=torch.channels_last)  # the fast layout is in use
    w = next(p for p in plain.net.parameters() if p.dim() == 4 and p.shape[-1] > 1)
    assert w.is_contiguous() and not w.is_contiguous(memory_format=torch.channels_last)
    assert fast.net.state_dict().keys() == plain.net.state_dict().keys()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    clicks = [Click(30, 40, True), Click(10, 80, False)]
    prev = rng.random((64, 96)).astype(np.float32)
    # docs/decisions.md "Tolerances"
    np.testing.assert_allclose(fast.predict(image, clicks, prev),
                               plain.predict(image, clicks, prev), atol=1e-4)  # fmt: skip


def test_card_wall_time_says_where_each_stretch_of_steps_ran():
    from iislib.experiment.cards import wall_time

    cfg = {"wall_seconds": 600, "torch": "2.13.0+cpu", "threads": 1, "machine_note": "note"}
    runs = [{"steps": [0, 4400], "device": "cuda (NVIDIA H200)", "threads": 2, "wall_seconds": 420},
            {"steps": [4400, 6400], "device": "cpu", "threads": 1, "wall_seconds": 180}]  # fmt: skip
    assert wall_time({**cfg, "runs": runs}) == (
        "10.0 min in all: steps 0-4400 on cuda (NVIDIA H200), 7.0 min (2 torch thread(s)); "
        "steps 4400-6400 on the 2-core CPU, 3.0 min (1 torch thread(s)); note"
    )
    assert wall_time({**cfg, "runs": runs[1:]}) == (
        "10.0 min on a 2-core CPU (1 torch thread(s), torch 2.13.0+cpu); note"
    )


def test_card_states_the_baseline_comparison_per_dataset_and_robot(monkeypatch):
    """The card's verdict against random_walker, read from the measured rows: fewer clicks win."""
    import pandas as pd

    from iislib.experiment import cards

    monkeypatch.setattr(cards, "predict_ms", lambda name, threads: (30.0, 25.0))
    rows = []
    for ds, mine, base in (("berkeley", 8.0, 12.0), ("grabcut", 9.0, 8.5)):
        for model, noc in (("ritm-compact", mine), ("random_walker", base)):
            for robot in ("rgto99", "rritm"):
                rows.append(dict(dataset=ds, model=model, robot=robot, images=3, **{
                    "NoC@85": noc, "NoC@90": noc, "NoF@90": 0, "mIoU@1": 0.1, "mIoU@5": 0.5,
                    "mIoU@10": 0.7, "mIoU@20": 0.8}))  # fmt: skip
    text = cards.card("ritm-compact", pd.DataFrame(rows))
    assert "berkeley: under rgto99 **yes** (8.00 against 12.00)" in text
    assert "grabcut: under rgto99 **no** (9.00 against 8.50), under rritm **no**" in text


def test_cards_rewritten_from_measured_csv_without_a_sweep(monkeypatch, tmp_path):
    """``--from-measured`` rewrites a card from measured.csv alone; a model without rows is refused."""
    import pandas as pd

    from iislib.experiment import cards

    monkeypatch.setattr(cards, "predict_ms", lambda name, threads: (30.0, 25.0))
    monkeypatch.setattr(cards, "measure", lambda *a, **k: pytest.fail("no sweep expected"))
    monkeypatch.setattr(cards, "CARDS_DIR", tmp_path)
    rows = [dict(dataset="berkeley", model=m, robot=r, images=3, **{
                 "NoC@85": n, "NoC@90": n, "NoF@90": 0, "mIoU@1": 0.1, "mIoU@5": 0.5,
                 "mIoU@10": 0.7, "mIoU@20": 0.8})
            for m, n in (("ritm-compact", 7.5), ("random_walker", 11.0)) for r in ("rgto99", "rritm")]  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "measured.csv", index=False)
    assert cards.main(["ritm-compact", "--from-measured"]) == 0
    assert "under rgto99 **yes** (7.50 against 11.00)" in (tmp_path / "ritm-compact.md").read_text()
    assert cards.main(["gto99-compact", "--from-measured"]) == 2
    assert not (tmp_path / "gto99-compact.md").exists()


def test_cards_measure_the_datasets_asked_for(monkeypatch, tmp_path, capsys):
    """``--datasets berkeley,grabcut,davis`` reaches the sweep; a card lists only the datasets
    its model was measured on, even when the baseline has more rows."""
    import pandas as pd

    from iislib.experiment import cards

    asked = []

    def measure(names, data, jobs, max_clicks=20, images=None, datasets=cards.DATASETS):
        asked.append(datasets)
        return pd.DataFrame([dict(dataset=d, model=m, robot=r, images=3, **{
            "NoC@85": 5.0, "NoC@90": 6.0, "NoF@90": 0, "mIoU@1": 0.1, "mIoU@5": 0.5,
            "mIoU@10": 0.7, "mIoU@20": 0.8}) for d in datasets
            for m in (*names, "random_walker") for r in ("rgto99", "rritm")])  # fmt: skip

    monkeypatch.setattr(cards, "predict_ms", lambda name, threads: (30.0, 25.0))
    monkeypatch.setattr(cards, "subset_check", lambda name, data=None: 0.5)
    monkeypatch.setattr(cards, "measure", measure)
    monkeypatch.setattr(cards, "CARDS_DIR", tmp_path)
    assert cards.main(["ritm-compact", "--datasets", "berkeley,grabcut,davis"]) == 0
    assert asked == [("berkeley", "grabcut", "davis")]
    assert (
        "davis: under rgto99 **no** (5.00 against 5.00)"
        in (tmp_path / "ritm-compact.md").read_text()
    )
    # a second model measured without DAVIS: its card leaves out the baseline's DAVIS rows,
    # which stay for the first model's card
    assert cards.main(["gto99-compact"]) == 0 and asked[-1] == ("berkeley", "grabcut")
    text = (tmp_path / "gto99-compact.md").read_text()
    assert "Images per dataset: berkeley 3, grabcut 3." in text and "| davis |" not in text
    rows = pd.read_csv(tmp_path / "measured.csv").groupby("model")["dataset"].unique()
    assert set(rows["random_walker"]) == {"berkeley", "grabcut", "davis"}
    assert set(rows["gto99-compact"]) == {"berkeley", "grabcut"}
    assert cards.main(["ritm-compact", "--from-measured"]) == 0
    assert "| davis |" in (tmp_path / "ritm-compact.md").read_text()
    assert cards.main(["ritm-compact", "--datasets", "berkeley,pascal"]) == 2
    assert "--datasets must name some of berkeley, grabcut, davis" in capsys.readouterr().err
