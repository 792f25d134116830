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


def _papermill(**raw: str) -> dict:
    """Parameters as ``papermill -p NAME VALUE`` hands them to the notebook."""
    from papermill.cli import _resolve_type

    return {k: _resolve_type(v) for k, v in raw.items()}


@pytest.mark.parametrize(
    ("raw", "mistake"),
    [
        ({"n_images": "-1"}, "n_images must be a whole number >= 0 (the first N images; 0: all"),
        ({"max_clicks": "2.9"}, "max_clicks must be a whole number >= 1 (clicks per trajectory), "
                                "got 2.9"),
        ({"seeds": "[]"}, "seeds must hold at least one seed, got '[]'"),
        ({"seeds": "1.5"}, "seeds must be a list of whole numbers such as [0, 1]"),
        ({"seeds": "[0, 0]"}, "seeds gives seed(s) [0] more than once"),
        ({"n_jobs": "0"}, "n_jobs must be a whole number: N >= 1 worker processes, or -1"),
        ({"smoke": "yes"}, "smoke must be True or False, got 'yes'"),
        ({"settings": "fast"}, "settings: unknown settings 'fast'"),
        ({"robots": "r01,r99"}, "robots: unknown robot 'r99'"),
        ({"robots": ","}, "robots names nothing, got ','"),
        ({"k": "0"}, "k must be a whole number >= 1"),
        ({"variance_seeds": "abc"}, "variance_seeds must be a list of whole numbers"),
        ({"findings_datasets": "[]"}, "findings_datasets must be a non-empty list"),
    ],
)  # fmt: skip
def test_notebook_parameters_are_checked_as_papermill_passes_them(raw, mistake, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(paper.ParameterError, match="1 notebook parameter is wrong") as e:
        paper.notebook_config(_papermill(**raw))
    assert mistake in str(e.value)


def test_every_mistake_is_listed_at_once(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(paper.ParameterError) as e:
        paper.notebook_config(_papermill(n_images="-1", seeds="[]", max_clicks="2.9", k="x"))
    lines = str(e.value).splitlines()
    assert lines[0] == "4 notebook parameters are wrong:" and len(lines) == 5
    assert [line.split()[1] for line in lines[1:]] == ["n_images", "seeds", "max_clicks", "k"]


def test_parameters_given_as_text_are_read_as_their_literal(monkeypatch):
    """papermill's ``-p`` passes a list as text: it is read as the list (``"12"`` is seed 12,
    never seeds 1 and 2), and a notebook's own parameter is written back as read."""
    monkeypatch.delenv("CI", raising=False)
    params = _papermill(seeds="12", n_images="0", variance_seeds="[3, 4]",
                        findings_datasets="berkeley,grabcut")  # fmt: skip
    cfg = paper.notebook_config(params)
    assert cfg.seeds == [12] and cfg.n_images is None  # 0: every image
    assert params["variance_seeds"] == [3, 4]
    assert params["findings_datasets"] == ["berkeley", "grabcut"]
    assert paper.notebook_config(_papermill(seeds="[0, 1]")).seeds == [0, 1]
    assert paper.config(seeds=(2,), n_images=5).seeds == [2]


def test_zero_images_means_all_in_the_notebooks_and_the_cli(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert paper.config(str(tiny_dataset.folder), n_images=0).names == tiny_dataset.names
    rc = main(["evaluate", "--dataset", str(tiny_dataset.folder), "--models", "random_walker",
               "--robots", "r01", "--max-clicks", "1", "--n-images", "0", "--no-cache",
               "--quiet", "--out", str(tmp_path), "--figures", str(tmp_path)])  # fmt: skip
    assert rc == 0
    table = (tmp_path / f"{tiny_dataset.name}_{DEFAULT_SETTINGS}.csv").read_text()
    assert len(table.splitlines()) == 1 + len(tiny_dataset)


def test_stock_papermill_stops_at_the_first_cell_with_every_mistake(tmp_path, monkeypatch):
    """``papermill 03_quantitative.ipynb out.ipynb -p n_images -1 -p seeds "[]"``: the first
    code cell raises one ParameterError naming both, before any sweep (the old code ran 99
    images for -1, then failed deep inside on the seeds)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("PYTHONPATH", str(root))  # the kernel imports this checkout's iislib
    ipynb = runner.to_ipynb(root / "notebooks" / "03_quantitative.py", tmp_path)
    params = _papermill(n_images="-1", seeds="[]", max_clicks="2.9")
    with pytest.raises(PapermillExecutionError) as e:
        pm.execute_notebook(str(ipynb), str(tmp_path / "out.ipynb"), parameters=params,
                            kernel_name="python3", progress_bar=False,
                            cwd=str(tmp_path), **runner.kernel_options())  # fmt: skip
    assert e.value.ename == "ParameterError"
    assert "3 notebook parameters are wrong" in e.value.evalue
    for name in ("n_images", "seeds", "max_clicks"):
        assert f"- {name} " in e.value.evalue
