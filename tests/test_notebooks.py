"""The notebooks: structure of the sources, jupytext round trip, and a smoke run of each.

The smoke run executes every ``notebooks/NN_*.py`` with papermill (``smoke=True``: 2 images, 4
clicks) into ``build/notebooks/smoke/`` (where ``make test`` then runs nbval on them) and checks
that each figure a notebook promises (``figures.NOTEBOOK_FIGURES``) was written as a valid PNG
and PDF into ``figures/smoke/``. Two more runs go through the stock ``papermill.execute_notebook``
API, as a reader or a CI system would run a notebook: widget cells must not wait out the cell
timeout (see ``iislib.drawing.widgets`` for why an Output widget made them do so).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from iislib import paths
from iislib.apps import paper
from iislib.apps.runner import execute, notebook_parameters, notebook_sources, to_ipynb
from iislib.drawing.figures import NOTEBOOK_FIGURES

SOURCES = notebook_sources()
OURS = [s for s in SOURCES if s.stem in NOTEBOOK_FIGURES]
SMOKE_OUT = paths.BUILD / "notebooks" / "smoke"


def test_every_promised_notebook_exists():
    assert sorted(s.stem for s in OURS) == sorted(NOTEBOOK_FIGURES)


@pytest.mark.parametrize("src", OURS, ids=lambda p: p.stem)
def test_notebook_structure(src: Path, tmp_path: Path):
    nb = nbformat.read(to_ipynb(src, tmp_path), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    text = params[0].source
    for name in ("dataset", "models", "robots", "n_images", "max_clicks", "seeds", "settings",
                 "n_jobs"):  # fmt: skip
        assert f"\n{name}: " in f"\n{text}", f"parameter {name} missing or untyped"
    # the shared parameters' defaults are the library's (one place for them and the smoke rule)
    shared = {k: v for k, v in notebook_parameters(src).items() if k in paper.NOTEBOOK_DEFAULTS}
    assert shared == paper.NOTEBOOK_DEFAULTS
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any("cfg = paper.notebook_config(globals())" in c.source for c in code)
    for c in code:
        if "widgets." in c.source:
            assert "nbval-ignore-output" in c.metadata.get("tags", []), c.source
        # notebooks only call the library: no function or class definitions
        assert "\ndef " not in f"\n{c.source}" and "\nclass " not in f"\n{c.source}"
    assert nb.cells[0].cell_type == "markdown", "narrative first"


def test_jupytext_round_trip_is_byte_identical(tmp_path: Path):
    """py -> ipynb -> py with the repository's jupytext.toml gives the same bytes (tags kept)."""
    shutil.copy(paths.ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    copies = [shutil.copy(s, tmp_path / s.name) for s in OURS]
    jt = [sys.executable, "-m", "jupytext", "--quiet"]
    subprocess.run([*jt, "--to", "ipynb", *map(str, copies)], check=True, cwd=tmp_path)
    for c in copies:
        Path(c).unlink()
    subprocess.run([*jt, "--to", "py:percent", *[str(Path(c).with_suffix(".ipynb")) for c in copies]],
                   check=True, cwd=tmp_path)  # fmt: skip
    for src in OURS:
        assert (tmp_path / src.name).read_bytes() == src.read_bytes(), src.name


def _valid_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert min(im.size) > 100, f"{path}: suspiciously small {im.size}"


def _valid_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and data.rstrip().endswith(b"%%EOF"), path


@pytest.fixture(scope="module")
def smoke_sweeps(data_root: Path):
    """The runner's smoke plan, computed into the cache first as ``run_all`` does."""
    from iislib.apps import paper, runner

    with pytest.MonkeyPatch.context() as mp:
        # the kernel runs in notebooks/: a relative IISLIB_DATA (../shared/data) must not break it
        mp.setenv("IISLIB_DATA", str(data_root.resolve()))
        plan = paper.make_plan(runner.figure_plan(smoke=True))
        runner.compute(plan, progress=False)
        yield plan


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_smoke_run(src: Path, smoke_sweeps, data_root: Path, monkeypatch, tmp_path):
    """Each notebook runs, writes its figures, and its sweeps are exactly the runner's plan for
    it and were all cached by the runner's pass: no evaluate job runs inside the kernel."""
    from iislib.apps import paper, runner

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    log = tmp_path / "sweeps.jsonl"
    monkeypatch.setenv("IISLIB_SWEEP_LOG", str(log))
    folder = paths.FIGURES / "smoke"
    promised = NOTEBOOK_FIGURES.get(src.stem, ())
    for name in promised:  # stale files from an earlier run must not pass the test
        for ext in ("png", "pdf"):
            (folder / f"{name}.{ext}").unlink(missing_ok=True)
    out = execute(src, SMOKE_OUT, {"smoke": True}, timeout=300)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    for name in promised:
        _valid_png(folder / f"{name}.png")
        _valid_pdf(folder / f"{name}.pdf")
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    planned = paper.make_plan(runner.figure_plan(smoke=True, only=[src.stem[:2]]))
    assert {e for c in calls for e in c["entries"]} == {
        str(p.relative_to(planned.cache)) for p in planned.entries
    }
    assert [c["missing"] for c in calls] == [0] * len(calls), "a sweep computed in the kernel"
    assert not planned.jobs


def test_every_run_has_a_cell_timeout(monkeypatch, tmp_path):
    """A kernel that goes silent must end in a retry or an error, never in an endless wait."""
    from iislib.apps import runner

    seen = []
    monkeypatch.setattr(runner, "execute", lambda src, out, params, **kw: seen.append(kw) or out)
    runner.run_all(smoke=False, only=["01"], out_dir=tmp_path)
    runner.run_all(smoke=True, only=["01"], out_dir=tmp_path)
    runner.run_all(smoke=False, only=["01"], out_dir=tmp_path, timeout=7)
    assert [kw["timeout"] for kw in seen] == [
        runner.FULL_CELL_TIMEOUT,
        runner.SMOKE_CELL_TIMEOUT,
        7,
    ]


def test_notebooks_run_two_at_a_time_after_the_sweep_pass(monkeypatch, tmp_path):
    """After the sweep pass, notebooks overlap (one kernel per worker); all run even when one
    fails, and the first failure in notebook order is raised. Without the pass, one at a time."""
    import threading
    import time

    from iislib.apps import runner

    live, most, lock = [0], [0], threading.Lock()

    def fake(src, out, params, **kw):
        with lock:
            live[0] += 1
            most[0] = max(most[0], live[0])
        time.sleep(0.2)
        with lock:
            live[0] -= 1
        if src.stem.startswith(("02", "03")):
            raise RuntimeError(f"cell failed in {src.stem}")
        return out / src.name

    monkeypatch.setattr(runner, "execute", fake)
    ran = []
    monkeypatch.setattr(runner, "notebook_sources", lambda only=None: ran.append(1) or SOURCES)
    with pytest.raises(RuntimeError, match="02_"):
        runner.run_all(smoke=True, out_dir=tmp_path, precompute=False, notebook_jobs=2)
    assert most[0] == 2
    ok = [s for s in SOURCES if not s.stem.startswith(("02", "03"))]
    monkeypatch.setattr(runner, "notebook_sources", lambda only=None: ok)
    most[0] = 0
    report = runner.run_all(smoke=True, out_dir=tmp_path, precompute=False)
    assert most[0] == 1 and [p.name for p, _ in report.notebooks] == [s.name for s in ok]


def test_each_notebook_gets_only_the_parameters_it_declares(monkeypatch, tmp_path):
    """The demo declares no n_jobs: it is not passed there (papermill would warn), the
    others get it; a parameter no notebook declares is refused before any notebook runs."""
    from iislib.apps import runner

    got = {}
    monkeypatch.setattr(runner, "execute",
                        lambda src, out, params, **kw: got.setdefault(src.stem, params) and out)  # fmt: skip
    runner.run_all(smoke=True, parameters={"n_jobs": 1}, out_dir=tmp_path, precompute=False)
    assert got["05_demo"] == {"smoke": True}
    assert got["03_quantitative"] == {"n_jobs": 1, "smoke": True}
    got.clear()
    with pytest.raises(ValueError, match="no notebook has the parameter.*n_imagez"):
        runner.run_all(smoke=True, parameters={"n_imagez": 3}, out_dir=tmp_path, precompute=False)
    assert got == {}


def _code_durations(nb) -> list[tuple[str, float]]:
    return [(c.source, c.metadata["papermill"]["duration"]) for c in nb.cells
            if c.cell_type == "code"]  # fmt: skip


def _widget_images(nb) -> list[bytes]:
    """The PNG bytes of every Image widget stored in an executed notebook's widget state."""
    import base64

    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [base64.b64decode(b["data"]) for m in state.values() if m["model_name"] == "ImageModel"
            for b in m.get("buffers", []) if b["path"] == ["value"]]  # fmt: skip


# Large PNGs make nbclient's iopub handling slow enough that the execute_reply is always waiting
# on the shell socket when the mirror of an Output widget would be sent: with the former
# interact-style sliders every such cell waited out the whole cell timeout (measured 10/10).
_BIG_FIGURE_SLIDER = """\
import numpy as np
from matplotlib.figure import Figure
from iislib.drawing import widgets

def draw(k):
    fig = Figure(figsize=(12, 8))
    fig.subplots().imshow(np.random.default_rng(k).random((600, 900)))
    return fig

widgets.click_slider(draw, 10, start=3)
"""


def test_widget_cells_do_not_stall_stock_papermill(tmp_path: Path):
    import papermill as pm
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(_BIG_FIGURE_SLIDER) for _ in range(2)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "in.ipynb")
    timeout = 30
    out = pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"),
                              kernel_name="python3", cwd=str(tmp_path), progress_bar=False,
                              execution_timeout=timeout)  # fmt: skip
    durations = [d for _, d in _code_durations(out)]
    assert len(durations) == 2 and all(d < timeout / 3 for d in durations), durations
    pngs = _widget_images(out)
    assert len(pngs) == 2 and all(p[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_stock_papermill_runs_a_notebook(data_root: Path, tmp_path: Path, monkeypatch):
    """01 in smoke mode through ``papermill.execute_notebook`` itself (not iislib's runner)."""
    import papermill as pm

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))  # the kernel runs in notebooks/

    src = next(s for s in SOURCES if s.stem.startswith("01_"))
    timeout = 120
    out = pm.execute_notebook(
        str(to_ipynb(src, tmp_path)), str(tmp_path / "out.ipynb"), parameters={"smoke": True},
        kernel_name="python3", cwd=str(paths.NOTEBOOKS), progress_bar=False,
        execution_timeout=timeout,
    )  # fmt: skip
    code = [c for c in out.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    sliders = [(s, d) for s, d in _code_durations(out) if "widgets.click_slider" in s]
    assert len(sliders) == 2, "01 has two click sliders"
    assert all(d < timeout / 4 for _, d in sliders), sliders  # no wait for the cell timeout
    assert len(_widget_images(out)) == 2  # each slider's figure is stored in the widget state


def test_estimate_arithmetic():
    from iislib.apps.runner import estimate_seconds

    costs = {"a": 0.1, "b": 0.04}
    # 200 clicks x 0.1 s / 2 workers; 50 x 0.04 / 2; c has no measured cost
    assert estimate_seconds({"a": 200, "b": 50, "c": 7}, 2, costs) == pytest.approx(
        {"a": 10.0, "b": 1.0, "c": None}
    )
    assert estimate_seconds({"a": 30}, 1, costs) == pytest.approx({"a": 3.0})
    with pytest.raises(ValueError, match="workers"):
        estimate_seconds({"a": 1}, 0, costs)


def test_time_left_rescales_the_plan_to_the_speed_shown():
    from iislib.apps.runner import time_left

    assert time_left(5.0, 0.0, 100.0) is None  # nothing estimated done yet
    # 25 of 100 estimated worker-seconds done in 10 s of wall: the 75 left take 30 s
    assert time_left(10.0, 25.0, 100.0) == pytest.approx(30.0)
    # a machine twice as fast as the costs' one: half the estimate remains
    assert time_left(5.0, 50.0, 100.0) == pytest.approx(5.0)
    assert time_left(40.0, 100.0, 100.0) == 0.0
    assert time_left(40.0, 120.0, 100.0) == 0.0  # more done than planned (unknown costs)


def test_plan_merges_requests_and_compute_fills_the_cache(tiny_dataset, tmp_path, monkeypatch):
    """Two requests sharing (model, image, seed) give one job per image with both robots; after
    ``compute`` the requests read every trajectory from the cache (nothing missing)."""
    from iislib.apps import paper, runner

    cfg = paper.config(str(tiny_dataset.folder), "random_walker", "r01,r02", n_images=3,
                           max_clicks=2, settings="direct")  # fmt: skip
    reqs = [paper.request(cfg, robots=["r02"], n_images=2), paper.request(cfg)]
    plan = paper.make_plan(reqs, cache=tmp_path / "cache")
    assert len(plan.entries) == 6 and not any(plan.entries.values())
    assert [(j.image, j.robots) for j in plan.jobs] == [
        ("img0", ("r01", "r02")), ("img1", ("r01", "r02")), ("img2", ("r01", "r02"))
    ]  # fmt: skip
    assert plan.by_model().loc["random_walker"].tolist() == [3, 6, 12]
    assert "random_walker" in runner.format_plan(plan, 1)
    report = runner.compute(plan, n_jobs=1, progress=False)
    assert report.jobs == 3 and set(report.busy) == {"random_walker"}
    assert report.model_wall()["random_walker"] == pytest.approx(report.wall)
    again = paper.make_plan(reqs, cache=tmp_path / "cache")
    assert not again.jobs and all(again.entries.values())
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv("IISLIB_SWEEP_LOG", str(log))
    table = reqs[1].run(progress=False)
    assert len(table) == 3 * 2 * 2
    (line,) = [json.loads(x) for x in log.read_text().splitlines()]
    assert line["missing"] == 0 and len(line["entries"]) == 6


def test_figure_plan_follows_the_notebook_parameters(data_root: Path, monkeypatch):
    from iislib.apps import paper, runner

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    monkeypatch.delenv("CI", raising=False)
    assert runner.figure_plan(only=["01"]) == []
    params = {"robots": "r01,rritm", "variance_seeds": [5], "findings_datasets": ["grabcut"],
              "n_images": 3}  # fmt: skip
    reqs = runner.figure_plan(parameters=params, only=["04"])
    by = {r.purpose: r for r in reqs}
    assert by["seed variance"].robots == ("r01",) and by["seed variance"].seeds == (5,)
    assert {r.cfg.dataset_name for r in reqs} == {"berkeley", "grabcut"}
    assert all(r.cfg.max_clicks == 20 and len(r.data) == 3 for r in reqs)  # 04's default clicks
    (smoke,) = runner.figure_plan(smoke=True, only=["03"])
    assert (smoke.cfg.max_clicks, len(smoke.data)) == (
        paper.SMOKE_CLICKS,
        paper.SMOKE_IMAGES,
    )


def test_the_full_run_runs_03_and_04_once_per_dataset(data_root: Path, monkeypatch, tmp_path):
    """``--datasets all``: 03 and 04 on Berkeley, GrabCut and DAVIS (all images, 04's findings
    on the three), each into its own folder; the others once; the plan holds every dataset's
    sweeps; the scheduler reaches the sweep pass."""
    from iislib.apps import runner

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    monkeypatch.delenv("CI", raising=False)
    runs = runner.notebook_runs(datasets=runner.resolve_datasets("all"))
    per = [(r.src.stem[:2], r.folder, r.parameters.get("dataset")) for r in runs]
    assert per == [("00", "", None), ("01", "", None), ("02", "", None),
                   *[(nb, ds, ds) for nb in ("03", "04") for ds in ("berkeley", "grabcut", "davis")],
                   ("05", "", None), ("06", "", None)]  # fmt: skip
    four = [r for r in runs if r.src.stem.startswith("04")]
    assert all(r.parameters["findings_datasets"] == ["berkeley", "grabcut", "davis"] for r in four)
    assert all(r.parameters["n_images"] == 0 for r in four)  # all 345 DAVIS frames
    # the user's parameters win over the full run's, but the dataset is the run's own
    (r,) = runner.notebook_runs({"n_images": 5}, only=["03"], datasets=["davis"])
    assert r.parameters == {"n_images": 5, "findings_datasets": ["davis"], "dataset": "davis"}
    with pytest.raises(ValueError, match="not both"):
        runner.notebook_runs({"dataset": "grabcut"}, datasets=["davis"])
    with pytest.raises(ValueError, match="some of berkeley, grabcut, davis, got 'pascal'"):
        runner.resolve_datasets("pascal")
    assert runner.resolve_datasets("davis, berkeley") == ["davis", "berkeley"]
    assert runner.main(["--plan", "--datasets", "pascal"]) == 2

    reqs = runner.figure_plan(smoke=True, only=["03", "04"], datasets=["berkeley", "davis"])
    assert {(r.notebook, r.purpose, r.cfg.dataset_name) for r in reqs} >= {
        ("03", "main", "berkeley"), ("03", "main", "davis"), ("04", "findings davis", "davis"),
        ("04", "findings berkeley", "berkeley"), ("04", "main", "davis")}  # fmt: skip

    got, computed = [], []
    monkeypatch.setattr(runner, "execute", lambda src, out, params, **kw: got.append(
        (src.stem[:2], out.relative_to(tmp_path).as_posix(), params)) or out)  # fmt: skip
    monkeypatch.setattr(runner, "compute", lambda plan, n_jobs, progress, scheduler: computed.append(
        scheduler) or runner.ComputeReport(0.0, 0, 1, {}))  # fmt: skip
    runner.run_all(smoke=True, only=["03", "04"], out_dir=tmp_path, datasets="grabcut,davis",
                   scheduler="tcp://10.0.0.1:8786")  # fmt: skip
    assert computed == ["tcp://10.0.0.1:8786"]
    assert [(nb, out) for nb, out, _ in got] == [("03", "grabcut"), ("03", "davis"),
                                                 ("04", "grabcut"), ("04", "davis")]  # fmt: skip
    assert got[0][2] == {"n_images": 0, "dataset": "grabcut", "smoke": True}  # 03 lacks findings_
    assert got[3][2]["findings_datasets"] == ["grabcut", "davis"]


def test_each_dataset_keeps_its_own_figures():
    cfg = paper.config("davis", "random_walker")
    assert cfg.figures == paths.FIGURES / "davis"
    assert paper.config("berkeley", "random_walker").figures == paths.FIGURES
    assert paper.config("grabcut", "random_walker", smoke=True).figures == (
        paths.FIGURES / "smoke" / "grabcut"
    )


def test_notebook_04_pools_the_findings_and_the_envelope_over_two_datasets(
    smoke_sweeps, data_root: Path, monkeypatch, tmp_path
):
    """04 with two findings datasets (smoke size): every claim and the envelope finding per
    dataset and pooled, all read from the runner's pass (the pooled envelope reads the other
    dataset's envelope sweep)."""
    from iislib.apps import paper, runner

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    params = {"smoke": True, "findings_datasets": ["berkeley", "grabcut"]}
    plan = paper.make_plan(runner.figure_plan(smoke=True, parameters=params, only=["04"]))
    runner.compute(plan, progress=False)
    log = tmp_path / "sweeps.jsonl"
    monkeypatch.setenv("IISLIB_SWEEP_LOG", str(log))
    src = next(s for s in SOURCES if s.stem.startswith("04"))
    out = execute(src, tmp_path, params, timeout=300)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["missing"] for c in calls] == [0] * len(calls), "a sweep computed in the kernel"
    assert any("envelope grabcut" in c["request"] for c in calls)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "envelope_table" in c.source)
    shown = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "")
                    for o in cell.outputs)  # fmt: skip
    assert "pooled" in shown and "grabcut" in shown and "oracle" in shown
