"""``make lab`` without a browser: the JupyterLab setting it ships, the server command, and the
plan a notebook prints before it computes anything (``runner.announce``).

The browser side (a double-click in JupyterLab's file browser opens a notebook) is
``tests/test_lab_browser.py``.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from iislib import paths
from iislib.apps import lab, paper, runner
from iislib.experiment.sweep import worker_count

SETTINGS_PACKAGE = paths.ROOT / "lab-settings"


# ----------------------------------------------------------------------------------------------
# the setting and where it is installed


def test_the_shipped_setting_opens_python_files_with_jupytext():
    shipped = json.loads((SETTINGS_PACKAGE / "overrides.d" / "iislib.json").read_text())
    assert shipped == {lab.DOCMANAGER: {"defaultViewers": lab.VIEWERS}}
    assert lab.VIEWERS == {"python": "Jupytext Notebook"}


def test_the_setting_is_a_valid_docmanager_setting_of_the_installed_jupyterlab():
    """JupyterLab drops an override that its plugin's schema refuses: check it against the
    schema of the JupyterLab installed here."""
    import jsonschema
    from jupyterlab.commands import get_app_dir

    schema = json.loads((Path(get_app_dir()) / "schemas" / "@jupyterlab" /
                         "docmanager-extension" / "plugin.json").read_text())  # fmt: skip
    shipped = json.loads((SETTINGS_PACKAGE / "overrides.d" / "iislib.json").read_text())
    jsonschema.validate(shipped[lab.DOCMANAGER], schema)


def test_the_package_installs_the_setting_where_jupyterlab_reads_it():
    """The data-files target is ``overrides.d`` of JupyterLab's application settings folder
    (``LabApp.app_settings_dir``) relative to the environment's prefix, and lab.py reads it
    there too."""
    import sys

    from jupyterlab.labapp import LabApp

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((SETTINGS_PACKAGE / "pyproject.toml").read_text())
    ((target, files),) = meta["tool"]["setuptools"]["data-files"].items()
    assert files == ["overrides.d/iislib.json"]
    settings_dir = Path(LabApp().app_settings_dir)
    assert Path(sys.prefix, target).resolve() == (settings_dir / "overrides.d").resolve()
    assert Path(target, "iislib.json") == lab.SETTINGS_FILE


def test_jupyterlab_reads_the_setting_from_overrides_d(tmp_path):
    """JupyterLab's own settings loader (jupyterlab_server) applies a file in overrides.d as
    the plugin's default, which a user's setting still overrides."""
    from jupyterlab.commands import get_app_dir
    from jupyterlab_server.settings_utils import get_settings

    settings = tmp_path / "app-settings"
    (settings / "overrides.d").mkdir(parents=True)
    shutil.copy(SETTINGS_PACKAGE / "overrides.d" / "iislib.json", settings / "overrides.d")
    user = tmp_path / "user-settings"
    schemas = str(Path(get_app_dir()) / "schemas")
    found, _ = get_settings(str(settings), schemas, str(user), labextensions_path=[])
    (plugin,) = [p for p in found["settings"] if p["id"] == lab.DOCMANAGER]
    assert plugin["schema"]["properties"]["defaultViewers"]["default"] == lab.VIEWERS

    empty, _ = get_settings(str(tmp_path / "none"), schemas, str(user), labextensions_path=[])
    (plugin,) = [p for p in empty["settings"] if p["id"] == lab.DOCMANAGER]
    assert plugin["schema"]["properties"]["defaultViewers"]["default"] == {}


def test_installed_viewers_reads_an_environment(tmp_path):
    assert lab.installed_viewers(tmp_path) == {}
    target = tmp_path / lab.SETTINGS_FILE
    target.parent.mkdir(parents=True)
    shutil.copy(SETTINGS_PACKAGE / "overrides.d" / "iislib.json", target)
    assert lab.installed_viewers(tmp_path) == {"python": "Jupytext Notebook"}


def test_environment_yml_and_make_env_install_the_setting():
    assert "- ./lab-settings" in (paths.ROOT / "environment.yml").read_text()
    makefile = (paths.ROOT / "Makefile").read_text()
    assert "install --no-compile --no-deps --force-reinstall ./lab-settings" in makefile
    assert "env: $(VENV)/.installed $(VENV)/.lab-settings" in makefile


def test_library_modules_survive_being_opened_as_notebooks(tmp_path):
    """The setting applies to every Python file: a library module opened as a notebook (through
    jupytext's contents manager, as JupyterLab does) and saved unchanged keeps its bytes, and
    no paired .ipynb appears beside it (docs/decisions.md, "Notebooks open as notebooks")."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

    root = tmp_path / "project"
    shutil.copytree(paths.ROOT / "iislib", root / "iislib",
                    ignore=shutil.ignore_patterns("__pycache__", "weights"))  # fmt: skip
    shutil.copy(paths.ROOT / "jupytext.toml", root)
    files = sorted(root.rglob("*.py"))
    before = {p: p.read_bytes() for p in files}
    manager = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)(root_dir=str(root))

    async def open_and_save() -> None:
        for p in files:
            rel = p.relative_to(root).as_posix()
            model = await manager.get(rel, type="notebook")
            assert model["type"] == "notebook" and model["content"]["cells"], rel
            await manager.save(model, rel)

    asyncio.run(open_and_save())
    assert len(files) > 40
    assert [p for p in files if p.read_bytes() != before[p]] == []
    assert sorted(root.rglob("*.ipynb")) == []


# ----------------------------------------------------------------------------------------------
# the server command


def test_the_server_listens_on_loopback_only_on_the_given_port(tmp_path):
    cmd = lab.command(8123, tmp_path, as_root=False)
    assert Path(cmd[0]).name == "jupyter-lab"
    assert "--ServerApp.ip=127.0.0.1" in cmd and "--ServerApp.port=8123" in cmd
    assert "--ServerApp.port_retries=0" in cmd  # the printed address is the one it serves
    assert f"--ServerApp.root_dir={tmp_path}" in cmd and "--no-browser" in cmd
    assert "--LabApp.default_url=/lab/tree/notebooks/00_start_here.py" in cmd
    assert "--allow-root" not in cmd
    assert "--allow-root" in lab.command(8123, tmp_path, as_root=True)
    assert not [a for a in cmd if "token" in a.lower()]  # never on a command line


def test_the_server_environment_keeps_the_token_out_of_argv_and_draws_inline():
    env = lab.environment("abc", {"MPLBACKEND": "Agg", "IISLIB_DATA": "../data", "X": "1"})
    assert env["JUPYTER_TOKEN"] == "abc" and env["X"] == "1" and "MPLBACKEND" not in env
    assert Path(env["IISLIB_DATA"]).is_absolute()
    assert env["IISLIB_DATA"] == str(Path("../data").absolute())


def test_main_prints_the_start_page_and_execs_jupyterlab(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(os, "execvpe", lambda *a: calls.append(a))
    monkeypatch.setenv("JUPYTER_TOKEN", "t0k")
    monkeypatch.delenv("LAB_PORT", raising=False)
    assert lab.main(["--port", "8765"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8765/lab/tree/notebooks/00_start_here.py?token=t0k" in out
    ((exe, argv, env),) = calls
    assert argv[0] == exe and "--ServerApp.port=8765" in argv
    assert f"--ServerApp.root_dir={paths.ROOT}" in argv and env["JUPYTER_TOKEN"] == "t0k"

    calls.clear()
    monkeypatch.setenv("LAB_PORT", "8766")
    lab.main([])
    assert "--ServerApp.port=8766" in calls[0][1]


def test_main_refuses_a_folder_without_the_notebooks(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "execvpe", lambda *a: pytest.fail("started a server"))
    assert lab.main(["--root", str(tmp_path), "--port", "8765"]) == 2
    assert "00_start_here.py not found" in capsys.readouterr().err


def test_main_says_when_the_setting_is_not_installed(monkeypatch, capsys):
    monkeypatch.setattr(os, "execvpe", lambda *a: None)
    monkeypatch.setattr(lab, "installed_viewers", lambda prefix=None: {})
    lab.main(["--port", "8765"])
    err = capsys.readouterr().err
    assert "open as text" in err and "pip install ./lab-settings" in err


# ----------------------------------------------------------------------------------------------
# no surprise sweeps: the plan before any computation


def test_the_notebooks_use_every_core_by_default(monkeypatch):
    assert paper.NOTEBOOK_DEFAULTS["n_jobs"] == -1
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert worker_count(paper.config(models="random_walker").n_jobs) == 6
    assert paper.config(models="random_walker", smoke=True).n_jobs == 1


def test_plan_jobs_counts_the_workers_of_the_default(tiny_dataset, tmp_path, monkeypatch):
    """``make figures`` with the notebooks' default n_jobs (-1) runs one worker and one
    notebook kernel per core (it ran one: ``min(-1, ...)``)."""
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    cfg = paper.config(str(tiny_dataset.folder), "random_walker", "r01", settings="direct")
    plan = paper.make_plan([paper.request(cfg)], cache=tmp_path)
    assert cfg.n_jobs == -1 and runner.plan_jobs(plan) == 3


def _tiny_plan(tiny_dataset, cache: Path, **kw):
    cfg = paper.config(str(tiny_dataset.folder), "random_walker", "r01,r02", n_images=3,
                       max_clicks=2, settings="direct", **kw)  # fmt: skip
    return {"main": paper.request(cfg), "skipped": None}


def test_a_cold_cache_prints_the_plan_and_its_cost_here(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    reqs = _tiny_plan(tiny_dataset, tmp_path)
    plan = paper.make_plan([reqs["main"]], cache=tmp_path / "cache")
    # 3 images x 2 robots x 2 clicks = 12 clicks at 10 s each, over 4 workers: 30 s
    text = runner.format_announcement(plan, -1, {"random_walker": 10.0})
    assert text.startswith(runner.format_plan(plan, -1, {"random_walker": 10.0}) + "\n")
    assert "missing, computed by 4 worker(s)" in text
    assert "6 of 6 trajectories are not in the cache" in text
    assert "about 30 s for these, with 4 worker(s) on this machine's 4 core(s)" in text
    assert "`make figures` instead computes the sweeps of every notebook in one pass" in text
    assert "about 3 min for these, with 1 worker(s)" in runner.format_announcement(
        plan, 1, {"random_walker": 15.0}
    )  # 12 x 15 s
    assert "(+ random_walker: no measured cost)" in runner.format_announcement(plan, 1, {})


def test_announce_computes_nothing_and_is_one_line_once_cached(tiny_dataset, tmp_path,
                                                               monkeypatch, capsys):  # fmt: skip
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    reqs = _tiny_plan(tiny_dataset, tmp_path)
    plan = runner.announce(reqs)  # the None entry (a skipped sweep) is left out
    out = capsys.readouterr().out
    assert "6 of 6 trajectories are not in the cache" in out and len(plan.jobs) == 3
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.csv"))
    runner.compute(plan, progress=False)
    runner.announce(reqs)
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    assert out.startswith("[plan] all 6 trajectories these sweeps read are cached in ")
    assert out.rstrip().endswith(": nothing to compute")


def _first_call_line(src: Path, names: tuple[str, ...]) -> int | None:
    """Line (in the code cells' concatenation) of the first call of an attribute in ``names``."""
    import jupytext

    code = "\n".join(c.source for c in jupytext.read(src).cells if c.cell_type == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    lines = [n.lineno for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr in names]  # fmt: skip
    return min(lines, default=None)


@pytest.mark.parametrize("prefix", sorted(paper.NOTEBOOK_SWEEPS))
def test_each_sweeping_notebook_announces_before_its_first_sweep(prefix):
    (src,) = runner.notebook_sources([prefix])
    first_sweep = _first_call_line(src, ("run", "family_sweep", "sweep", "evaluate"))
    announce = _first_call_line(src, ("announce",))
    assert first_sweep is not None and announce is not None and announce < first_sweep, src.name
