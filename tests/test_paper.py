"""The notebooks' configuration: model sets, the shared parameters and the smoke rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from iislib.apps import paper, runner
from iislib.apps.cli import build_parser, main
from iislib.models import CROSS_TRAINED, ready_models
from iislib.models.settings import DEFAULT_SETTINGS, get_settings


def test_ready_is_every_ready_model_and_paper_leaves_out_the_controls():
    ready, pair = paper.resolve_models("ready"), paper.resolve_models("paper")
    assert ready == ready_models()
    assert set(CROSS_TRAINED) <= set(ready)  # the controls ship with the package
    assert pair == [m for m in ready if m not in CROSS_TRAINED]
    assert pair == ["random_walker", "ritm-compact", "gto99-compact"]
    assert paper.resolve_models("gto99-compact, random_walker") == [
        "gto99-compact",
        "random_walker",
    ]
    with pytest.raises(ValueError, match=r"unknown model\(s\) \['nope'\].*'ready', 'paper'"):
        paper.resolve_models("random_walker,nope")


def test_one_default_settings_everywhere():
    assert DEFAULT_SETTINGS == "ipol" and get_settings(DEFAULT_SETTINGS).name == "ipol"
    assert paper.NOTEBOOK_DEFAULTS["settings"] == DEFAULT_SETTINGS
    assert paper.config().settings == DEFAULT_SETTINGS
    args = build_parser().parse_args(["evaluate"])
    assert args.settings == DEFAULT_SETTINGS and args.models == "ready"


def test_notebook_config_takes_the_shared_parameters_and_turns_smoke_on_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    variables = {"models": "random_walker", "max_clicks": 7, "k": 5, "paper": paper}
    cfg = paper.notebook_config(variables)  # other variables of the notebook are ignored
    assert (cfg.models, cfg.max_clicks, cfg.smoke) == (["random_walker"], 7, False)
    assert cfg.dataset_name == "berkeley" and cfg.n_images == 100 and cfg.seeds == [0]
    monkeypatch.setenv("CI", "")  # set, whatever its value
    cfg = paper.notebook_config(variables)
    assert cfg.smoke and (cfg.max_clicks, cfg.n_images) == (paper.SMOKE_CLICKS, paper.SMOKE_IMAGES)
    assert cfg.models == ["random_walker"]


def test_the_runner_plans_with_the_notebooks_rule(data_root: Path, monkeypatch):
    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    monkeypatch.setenv("CI", "1")
    (req,) = runner.figure_plan(only=["03"])
    assert req.cfg.smoke and req.cfg.models == paper.resolve_models("paper")


def test_cli_model_sets(tiny_dataset, tmp_path, capsys):
    rc = main(["evaluate", "--dataset", str(tiny_dataset.folder), "--models", "nope",
               "--no-cache", "--quiet", "--out", str(tmp_path)])  # fmt: skip
    assert rc == 2 and "unknown model(s) ['nope']" in capsys.readouterr().err
    rc = main(["evaluate", "--dataset", str(tiny_dataset.folder), "--models", "random_walker",
               "--robots", "random", "--max-clicks", "2", "--n-images", "1", "--no-cache",
               "--quiet", "--out", str(tmp_path), "--figures", str(tmp_path)])  # fmt: skip
    assert rc == 0
    table = (tmp_path / f"{tiny_dataset.name}_{DEFAULT_SETTINGS}.csv").read_text()
    assert {line.split(",")[3] for line in table.splitlines()[1:]} == set(
        paper.resolve_robots("random")
    )
