"""The shipped compact models load and reproduce their cards' numbers."""

from __future__ import annotations

import json

import pytest

from iislib.cards import CARDS_DIR, subset_check
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


def test_notebooks_ready_leaves_out_the_cross_trained_controls():
    from iislib.models import CROSS_TRAINED
    from iislib.notebooks import resolve_models

    paper = resolve_models("ready")
    assert {"random_walker", "ritm-compact", "gto99-compact"} <= set(paper)
    assert not set(CROSS_TRAINED) & set(paper)
    assert set(CROSS_TRAINED) <= set(ready_models(cross_trained=True))
