"""A user's own model by name: an installed entry point (group ``iislib.models``) or an import
string, through the registry, ``evaluate`` (its cache key), the CLI and a notebook.

The packages are written into a temporary folder put on ``sys.path`` (and on ``PYTHONPATH`` for
subprocesses) with a ``.dist-info`` holding ``entry_points.txt``, as pip would install them; the
shared virtual environment is left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import iislib.models as registry
from iislib import paths
from iislib.apps import paper
from iislib.experiment.sweep import as_specs, cache_entry, evaluate
from iislib.models import IISModel, available_models, get_model, ready_models
from iislib.models.settings import get_settings

MYPKG = '''
"""The smallest model a user writes: predict(image, clicks, prev) -> prob."""
import numpy as np


class Disks:
    """Foreground within 6 pixels of a positive click, background near a negative one."""

    def predict(self, image, clicks, prev):
        h, w = image.shape[:2]
        rr, cc = np.indices((h, w))
        prob = prev.copy()
        for c in clicks:
            prob[(rr - c.row) ** 2 + (cc - c.col) ** 2 <= 36] = float(c.positive)
        return prob


def factory(**kwargs):
    return Disks()


factory.cache_version = "1"


def unversioned(**kwargs):
    return Disks()
'''


def install(site: Path, dist: str, modules: dict[str, str], entry_points: str) -> None:
    """A package as pip leaves it: its modules and ``<dist>-0.1.dist-info``."""
    for name, text in modules.items():
        (site / name).mkdir(parents=True, exist_ok=True)
        (site / name / "__init__.py").write_text(textwrap.dedent(text))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def site(tmp_path: Path, monkeypatch) -> Path:
    """Two installed packages: mypkg (two models) and brokenpkg (its import fails)."""
    site = tmp_path / "site"
    site.mkdir()
    install(site, "mypkg", {"mypkg": MYPKG},
            "[iislib.models]\nmymodel = mypkg:factory\nunversioned = mypkg:unversioned\n")  # fmt: skip
    install(site, "brokenpkg", {"brokenpkg": "raise ImportError('needs libfoo')\n"},
            "[iislib.models]\nbroken = brokenpkg:factory\n")  # fmt: skip
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(registry, "_WARNED", set())
    for mod in ("mypkg", "brokenpkg"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    return site


def test_entry_points_appear_by_name_and_a_broken_one_hides_nothing(site):
    assert {"mymodel", "unversioned", "broken"} <= set(available_models())
    with pytest.warns(UserWarning, match=r"model 'broken' of package brokenpkg 0\.1 .*"
                      r"ImportError: needs libfoo; the other models are unaffected"):  # fmt: skip
        ready = ready_models()
    assert {"mymodel", "unversioned", "random_walker", "ritm-compact"} <= set(ready)
    assert "broken" not in ready
    with pytest.raises(ValueError, match=r"'broken' of package brokenpkg 0\.1 \(entry point "
                       r"brokenpkg:factory\) cannot be loaded: ImportError: needs libfoo"):  # fmt: skip
        get_model("broken")
    with pytest.raises(ValueError, match="brokenpkg"):
        paper.resolve_models("random_walker,broken")
    assert paper.resolve_models("mymodel,random_walker") == ["mymodel", "random_walker"]
    assert "mymodel" not in paper.resolve_models("paper")  # the notebooks' default stays put


def test_the_smallest_model_runs_by_entry_point_and_import_string(site):
    import numpy as np

    from iislib.core.clicks import Click

    for name in ("mymodel", "mypkg:factory"):
        model = get_model(name)
        assert isinstance(model, IISModel) and model.name == name
        prob = model.predict(np.zeros((20, 30, 3), np.uint8), [Click(10, 10, True)])
        assert prob.dtype == np.float32 and prob.shape == (20, 30)
        assert prob[10, 10] == 1 and prob[10, 17] == 0 and prob.sum() == 113  # 113 pixels: r <= 6
    with pytest.raises(ValueError, match=r"'mypkg:nope'.*AttributeError"):
        get_model("mypkg:nope")
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        get_model("nope")


def test_a_user_model_enters_the_cache_key_by_its_cache_version(site, tiny_dataset, tmp_path,
                                                                monkeypatch):  # fmt: skip
    data, settings = tiny_dataset.subset(1), get_settings("ipol")
    kw = dict(max_clicks=3, progress=False, cache_dir=tmp_path / "c")
    table = evaluate(["mymodel", "random_walker"], ["rritm", "r01"], data, **kw)
    assert set(table["model"]) == {"mymodel", "random_walker"}
    assert table[table.model == "mymodel"]["iou"].iloc[-1] > 0

    def entry(name):
        (spec,) = as_specs([name])
        return cache_entry(tmp_path / "c", spec, settings, data, data.names[0], "rritm", 0, 3)

    assert '"cache_version=1"' in as_specs(["mymodel"])[0].key()
    first = entry("mymodel")
    assert first.path.is_file()
    import mypkg

    monkeypatch.setattr(mypkg.factory, "cache_version", "2", raising=False)
    assert entry("mymodel").path != first.path  # version 2 never reads version 1's results
    # no cache_version: keyed by the name alone, with one warning
    with pytest.warns(UserWarning, match="'unversioned' declares no cache_version") as w:
        as_specs(["unversioned"])[0].key()
        as_specs(["unversioned"])[0].key()
    assert len([x for x in w if "cache_version" in str(x.message)]) == 1
    # a built-in model's key is what it was (the cache of earlier runs stays valid)
    assert "cache_version" not in as_specs(["random_walker"])[0].key()


def _env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(paths.ROOT), env.get("PYTHONPATH", "")])
    return env


def test_the_cli_sees_entry_points(site, tiny_dataset, tmp_path):
    args = [sys.executable, "-m", "iislib", "evaluate", "--dataset", str(tiny_dataset.folder),
            "--robots", "rritm", "--max-clicks", "2", "--no-cache", "--quiet",
            "--out", str(tmp_path), "--figures", str(tmp_path)]  # fmt: skip
    ok = subprocess.run([*args, "--models", "mymodel,mypkg:factory"], env=_env(site),
                        capture_output=True, text=True, timeout=300)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    table = pd.read_csv(tmp_path / f"{tiny_dataset.name}_ipol.csv")
    assert set(table["model"]) == {"mymodel", "mypkg:factory"}
    bad = subprocess.run([*args, "--models", "mymodel,broken"], env=_env(site),
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2
    assert "brokenpkg 0.1" in bad.stderr and "needs libfoo" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_notebook_runs_an_entry_point_model(site, data_root, tmp_path, monkeypatch):
    """Notebook 03 in smoke mode under stock papermill with models="mymodel,random_walker":
    the kernel finds the package through PYTHONPATH, as it would through site-packages."""
    import papermill as pm

    from iislib.apps.runner import notebook_sources, to_ipynb

    for k, v in _env(site).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    monkeypatch.setenv("IISLIB_HOME", str(tmp_path / "home"))
    src = next(iter(notebook_sources(["03"])))
    out = pm.execute_notebook(
        str(to_ipynb(src, tmp_path)), str(tmp_path / "out.ipynb"),
        parameters={"smoke": True, "models": "mymodel,random_walker"},
        kernel_name="python3", cwd=str(paths.NOTEBOOKS), progress_bar=False,
        execution_timeout=300,
    )  # fmt: skip
    code = [c for c in out.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    text = "".join(str(o.get("data", {}).get("text/plain", "")) for c in code for o in c.outputs)
    assert "mymodel" in text
    assert (tmp_path / "home" / "figures" / "smoke" / "fig4.png").is_file()


def test_the_cards_command_measures_a_user_model(site, data_root, tmp_path, monkeypatch):
    from iislib.experiment import cards

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    assert cards.main(["mymodel", "--images", "1", "--jobs", "1", "--out", str(tmp_path)]) == 0
    card = (tmp_path / "mymodel.md").read_text()
    assert "cache_version 1" in card and "| berkeley | rritm | mymodel |" in card
    measured = pd.read_csv(tmp_path / "measured.csv")
    assert set(measured["model"]) == {"mymodel", "random_walker"}
    assert cards.main(["broken", "--out", str(tmp_path)]) == 2
    assert cards.main(["mymodel", "ritm-compact", "--out", str(tmp_path)]) == 2
