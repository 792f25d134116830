"""The official weights by name: the weights folder, the structure check, sweeps by name, the
``official`` set, the cache key, the CLI, and the device check, on official-format files with
random weights written under the official names (the real files cannot be shipped)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from iislib import paths
from iislib.apps import paper
from iislib.apps.cli import main
from iislib.experiment import findings
from iislib.experiment.sweep import as_specs, cache_entry, evaluate
from iislib.models import (
    OFFICIAL_PAIR,
    available_models,
    check_device,
    get_model,
    ready_models,
)
from iislib.models import official as off
from iislib.models.gto99 import build_gto99
from iislib.models.ritm import build_ritm
from iislib.models.settings import get_settings
from tests.test_ritm import official_config, randomised

ROBOTS = ["rgto99", "rritm"]


def write_ritm(path: Path, variant: str, seed: int = 0) -> Path:
    """RITM's checkpoint layout ({'state_dict', 'config'}) with random weights."""
    torch.manual_seed(seed)
    net = randomised(build_ritm(variant), seed)
    v = {"h18": (18, 64, False), "h18s": (18, 48, True), "h32": (32, 128, False)}[variant]
    torch.save({"state_dict": net.state_dict(), "config": official_config(*v)}, path)
    return path


def write_gto99(path: Path, seed: int = 0) -> Path:
    """gto99's layout (a plain state dict) with random weights."""
    torch.manual_seed(seed)
    torch.save(build_gto99().state_dict(), path)
    return path


@pytest.fixture
def weights(official_files: Path, monkeypatch) -> Path:
    monkeypatch.setenv("IISLIB_WEIGHTS", str(official_files))
    return official_files


@pytest.fixture
def empty_weights(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "no-weights"
    monkeypatch.setenv("IISLIB_WEIGHTS", str(folder))
    return folder


def test_the_table_names_every_file_with_its_link(empty_weights):
    assert set(off.OFFICIAL) == {"ritm-sbd-h18", "ritm-cocolvis-h18s", "ritm-cocolvis-h18",
                                 "ritm-cocolvis-h32", "gto99-synthft"}  # fmt: skip
    assert OFFICIAL_PAIR == {"ritm": "ritm-sbd-h18", "gto99": "gto99-synthft"}
    sbd = off.OFFICIAL["ritm-sbd-h18"]
    assert sbd.url == ("https://github.com/saic-vul/ritm_interactive_segmentation/releases/"
                       "download/v1.0/sbd_h18_itermask.pth") and sbd.size == "38.8 MB"  # fmt: skip
    assert sbd.published[("grabcut", "NoC@90")] == 2.04
    assert off.OFFICIAL["gto99-synthft"].published[("berkeley", "NoC@90")] == 2.93
    assert not off.OFFICIAL["gto99-synthft"].direct
    assert off.weights_dir() == empty_weights


def test_default_folder_is_data_weights(monkeypatch):
    monkeypatch.delenv("IISLIB_WEIGHTS", raising=False)
    assert off.weights_dir() == paths.DATA / "weights"


def test_a_missing_file_is_one_line_naming_file_link_and_folder(empty_weights):
    assert not set(off.OFFICIAL) & set(ready_models())
    assert not set(off.OFFICIAL) & set(available_models())  # the demo lists present files only
    with pytest.raises(FileNotFoundError) as e:
        paper.resolve_models("official")
    lines = str(e.value).splitlines()
    assert len(lines) == 2
    for line, name in zip(lines, OFFICIAL_PAIR.values(), strict=True):
        w = off.OFFICIAL[name]
        assert w.file in line and w.url in line and str(empty_weights) in line
    with pytest.raises(FileNotFoundError, match="sbd_h18_itermask.pth"):
        get_model("ritm-sbd-h18")
    with pytest.raises(FileNotFoundError, match="InterSegSynthFT.pth"):
        as_specs(["gto99-synthft"])


def test_present_files_build_by_name_and_join_the_sets(weights):
    present = ["ritm-sbd-h18", "ritm-cocolvis-h18s", "gto99-synthft"]
    assert [m for m in ready_models() if m in off.OFFICIAL] == [
        "ritm-sbd-h18", "ritm-cocolvis-h18s", "gto99-synthft"]  # fmt: skip
    assert set(present) <= set(available_models())
    assert paper.resolve_models("official") == ["ritm-sbd-h18", "gto99-synthft"]
    assert paper.resolve_models("official,random_walker,official") == [
        "ritm-sbd-h18", "gto99-synthft", "random_walker"]  # fmt: skip
    assert set(present) <= set(paper.resolve_models("ready"))
    assert not set(present) & set(paper.resolve_models("paper"))  # the notebooks' default
    model = get_model("ritm-cocolvis-h18s")
    assert model.name == "ritm-cocolvis-h18s" and model.weights_file.endswith("h18s_itermask.pth")
    img = np.zeros((40, 50, 3), np.uint8)
    assert model.predict(img, []).shape == (40, 50)


def _same_results(a: pd.DataFrame, b: pd.DataFrame) -> None:
    cols = ["robot", "image", "click", "row", "col", "positive", "iou", "precision", "recall"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))


@pytest.mark.parametrize("name", ["ritm-cocolvis-h18s", "gto99-synthft"])
def test_a_sweep_by_name_equals_the_same_file_by_path(name, weights, tiny_dataset, tmp_path):
    data = tiny_dataset.subset(1)
    family = off.OFFICIAL[name].family
    path = weights / off.OFFICIAL[name].file
    kw = dict(max_clicks=2, settings="direct", progress=False, cache_dir=tmp_path / "c")
    by_name = evaluate([name], ROBOTS, data, **kw)
    by_path = evaluate({"by-path": {"name": family, "checkpoint": str(path)}}, ROBOTS, data, **kw)
    assert set(by_name["model"]) == {name}
    _same_results(by_name, by_path)
    # the cache answers the second sweep by name
    again = evaluate([name], ROBOTS, data, **kw)
    pd.testing.assert_frame_equal(again, by_name, check_exact=False, atol=0)


def test_another_file_under_the_same_name_never_reuses_results(tiny_dataset, tmp_path,
                                                                monkeypatch):  # fmt: skip
    folder = tmp_path / "w"
    folder.mkdir()
    monkeypatch.setenv("IISLIB_WEIGHTS", str(folder))
    path = write_ritm(folder / "coco_lvis_h18s_itermask.pth", "h18s", seed=0)
    data, settings = tiny_dataset.subset(1), get_settings("direct")
    kw = dict(max_clicks=2, settings="direct", progress=False, cache_dir=tmp_path / "c")

    def entry():
        (spec,) = as_specs(["ritm-cocolvis-h18s"])
        return cache_entry(tmp_path / "c", spec, settings, data, data.names[0], "rritm", 0, 2)

    first = entry()
    evaluate(["ritm-cocolvis-h18s"], ["rritm"], data, **kw)
    assert first.path.is_file()
    st = path.stat()
    write_ritm(path, "h18s", seed=1)  # other weights, same name; even with the old mtime:
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    second = entry()
    assert second.path != first.path and not second.path.exists()
    evaluate(["ritm-cocolvis-h18s"], ["rritm"], data, **kw)
    assert second.path.is_file()


def test_a_truncated_or_foreign_file_is_a_clear_error_naming_it(tmp_path, official_files,
                                                                monkeypatch):  # fmt: skip
    folder = tmp_path / "bad"
    folder.mkdir()
    monkeypatch.setenv("IISLIB_WEIGHTS", str(folder))
    sbd = folder / "sbd_h18_itermask.pth"
    data = (official_files / "sbd_h18_itermask.pth").read_bytes()
    sbd.write_bytes(data[: len(data) // 3])  # truncated
    with pytest.raises(ValueError, match=r"sbd_h18_itermask\.pth: not a readable PyTorch"):
        get_model("ritm-sbd-h18")
    # an h18s file under the h18 name: the architecture is named
    shutil.copy(official_files / "coco_lvis_h18s_itermask.pth", sbd)
    with pytest.raises(ValueError, match=r"sbd_h18_itermask\.pth is not the official .*another "
                       r"architecture .*not h18"):  # fmt: skip
        get_model("ritm-sbd-h18")
    # RITM's checkpoint under gto99's name, and gto99's under RITM's
    shutil.copy(official_files / "sbd_h18_itermask.pth", folder / "InterSegSynthFT.pth")
    with pytest.raises(ValueError, match=r"InterSegSynthFT\.pth is not the official .*plain "
                       "state dict"):  # fmt: skip
        get_model("gto99-synthft")
    shutil.copy(official_files / "InterSegSynthFT.pth", sbd)
    with pytest.raises(ValueError, match=r"sbd_h18_itermask\.pth is not the official .*RITM's"):
        off.check_file("ritm-sbd-h18")
    # a file with a missing tensor
    sd = torch.load(official_files / "InterSegSynthFT.pth", weights_only=True)
    sd.pop(next(iter(sd)))
    torch.save(sd, folder / "InterSegSynthFT.pth")
    with pytest.raises(ValueError, match="1 missing weights"):
        off.check_file("gto99-synthft")
    # the listing reports each, and the sets refuse nothing silently: the files are present
    s = off.status("gto99-synthft")
    assert s.present and not s.ok and "missing weights" in s.check


def test_the_weights_command_lists_every_file(weights, capsys):
    assert main(["weights"]) == 0
    out = capsys.readouterr().out
    for w in off.OFFICIAL.values():
        assert w.name in out and w.file in out and w.url in out and w.size in out
    digest = hashlib.sha256((weights / "sbd_h18_itermask.pth").read_bytes()).hexdigest()
    assert f"present, structure check ok, sha256 {digest}" in out
    assert out.count("missing: download") == 2  # the two COCO+LVIS h18 and h32 files
    assert "3 of 5 official files present and well-formed" in out


def test_download_refuses_google_drive_and_reports_no_network(empty_weights, capsys,
                                                              monkeypatch):  # fmt: skip
    import pooch

    def offline(*a, **k):
        raise ConnectionError("no network here")

    monkeypatch.setattr(pooch, "retrieve", offline)
    assert main(["weights", "--download", "--names", "ritm-cocolvis-h18s,gto99-synthft"]) == 0
    out = capsys.readouterr().out
    assert "ritm-cocolvis-h18s: download failed (ConnectionError: no network here)" in out
    assert "gto99-synthft: InterSegSynthFT.pth is on Google Drive" in out
    assert off.OFFICIAL["gto99-synthft"].url in out and str(empty_weights) in out
    assert not any(empty_weights.glob("*.pth"))


def test_cli_evaluate_takes_official_and_a_device(weights, tiny_dataset, tmp_path, capsys):
    args = ["evaluate", "--dataset", str(tiny_dataset.folder), "--models", "official",
            "--robots", "rritm", "--max-clicks", "2", "--n-images", "1", "--settings", "direct",
            "--no-cache", "--quiet", "--out", str(tmp_path), "--figures", str(tmp_path)]  # fmt: skip
    assert main([*args, "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert main([*args, "--device", "cpu"]) == 0
    table = pd.read_csv(tmp_path / f"{tiny_dataset.name}_direct.csv")
    assert set(table["model"]) == {"ritm-sbd-h18", "gto99-synthft"}


def test_device_is_checked_before_any_work(tiny_dataset, tmp_path):
    assert check_device("cpu") == "cpu"
    for bad, why in (("cuda", "CUDA is not available"), ("tpu", "not a device name"),
                     ("cuda:7", "CUDA is not available")):  # fmt: skip
        if torch.cuda.is_available() and bad.startswith("cuda"):
            continue
        with pytest.raises(ValueError, match=why):
            evaluate(["random_walker"], ["r01"], tiny_dataset, max_clicks=1,
                     cache_dir=tmp_path / "c", device=bad)  # fmt: skip
        with pytest.raises(ValueError, match=why):
            paper.config(models="random_walker", device=bad)
    assert not (tmp_path / "c").exists()
    # device="cpu" is the same code path as the default
    a = evaluate(["random_walker"], ["r01"], tiny_dataset, max_clicks=2, progress=False)
    b = evaluate(["random_walker"], ["r01"], tiny_dataset, max_clicks=2, progress=False,
                 device="cpu")  # fmt: skip
    _same_results(a, b)


def test_the_network_goes_to_the_device_it_is_given(weights, monkeypatch):
    """ModelSpec passes a non-CPU device to factories that take one, and the official factory
    hands it to the family's model (which checks it); the random walker takes none."""
    import dataclasses

    import iislib.models.ritm as ritm

    seen = {}

    class Stop(Exception):
        pass

    def spy(self, *a, device="cpu", **k):
        seen["device"] = device
        raise Stop

    monkeypatch.setattr(ritm.RITM, "__init__", spy)
    (spec,) = as_specs(["ritm-cocolvis-h18s"])
    with pytest.raises(Stop):
        dataclasses.replace(spec, device="cuda:0").build()
    assert seen["device"] == "cuda:0"
    (rw,) = as_specs(["random_walker"])
    assert dataclasses.replace(rw, device="cuda:0").build().name == "random_walker"


def test_own_protocol_sweeps_and_noc_table(weights, data_root, monkeypatch):
    monkeypatch.setenv("IISLIB_DATA", str(data_root))
    cfg = paper.config(dataset="grabcut", models="official,random_walker", smoke=True)
    own = paper.quantitative_sweeps(cfg)
    assert sorted(own) == ["main", "own gto99-synthft", "own ritm-sbd-h18"]
    r, g = own["own ritm-sbd-h18"], own["own gto99-synthft"]
    assert (r.cfg.settings, r.robots, r.models) == ("ritm", ("rritm",), ("ritm-sbd-h18",))
    assert (g.cfg.settings, g.robots, g.models) == ("gto99", ("rgto99",), ("gto99-synthft",))
    # the table: measured NoC beside the published numbers, exactly noc() of the curves
    rows = []
    for model, robot, settings in (("ritm-sbd-h18", "rritm", "ritm"),
                                   ("gto99-synthft", "rgto99", "gto99")):  # fmt: skip
        for image, ious in (("a", [0.5, 0.86, 0.95]), ("b", [0.2, 0.3, 0.4])):
            for k, iou in enumerate(ious, 1):
                rows.append({"dataset": "grabcut", "model": model, "settings": settings,
                             "robot": robot, "image": image, "seed": 0, "click": k, "iou": iou})  # fmt: skip
    t = findings.own_protocol_noc(pd.DataFrame(rows)).set_index("model")
    assert t.loc["ritm-sbd-h18", "NoC@85"] == (2 + 3) / 2
    assert t.loc["ritm-sbd-h18", "NoC@90"] == (3 + 3) / 2
    assert t.loc["ritm-sbd-h18", "published NoC@85"] == 1.76
    assert t.loc["ritm-sbd-h18", "published NoC@90"] == 2.04
    assert np.isnan(t.loc["gto99-synthft", "published NoC@85"])
    assert t.loc["gto99-synthft", "published NoC@90"] == 1.74
    assert t.loc["gto99-synthft", "NoC@90 - published"] == pytest.approx(3 - 1.74)


def test_official_pair_plays_the_paper_models_where_selected(weights):
    assert findings.paper_models_of(["ritm-sbd-h18", "gto99-synthft"]) == OFFICIAL_PAIR
    assert findings.paper_models_of(["ritm-sbd-h18", "gto99-compact"]) == findings.PAPER_MODELS
    from iislib.drawing.figures import contrast_pair

    assert contrast_pair(["random_walker", "gto99-synthft", "ritm-sbd-h18"]) == (
        "ritm-sbd-h18", "gto99-synthft")  # fmt: skip


def _models_notebooks() -> list[Path]:
    from iislib.apps.runner import notebook_parameters, notebook_sources

    return [s for s in notebook_sources() if "models" in notebook_parameters(s)]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each notebook's .ipynb (jupytext), converted once for every run of this module."""
    from iislib.apps.runner import notebook_sources, to_ipynb

    folder = tmp_path_factory.mktemp("ipynb")
    return {s.stem: to_ipynb(s, folder) for s in notebook_sources()}


@pytest.fixture(scope="module")
def notebook_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One IISLIB_HOME (figures, cache) for the notebooks: 04 reads 03's cached sweeps."""
    return tmp_path_factory.mktemp("home")


@pytest.mark.parametrize("src", _models_notebooks(), ids=lambda p: p.stem)
def test_every_notebook_runs_the_official_pair_under_stock_papermill(
    src, weights, data_root, converted, notebook_home, tmp_path, monkeypatch
):
    """Every notebook with a ``models`` parameter (01-04, 06), in smoke mode with
    models=official through papermill itself, writes the figures it promises; 03 also gives the
    own-protocol NoC table beside the published numbers (on GrabCut, whose figures go to their
    own folder). One image, two clicks (smoke allows at most 2 and 4), a random robot and the
    two deterministic ones; 04's findings on Berkeley only, its seed variance on 2 seeds and its
    envelope on 1 image: the full networks are slow on the CPU (with every robot and 04's
    defaults, before the envelope, these five runs took 7.4 min on a loaded 2-core machine)."""
    import papermill as pm

    from iislib.drawing.figures import NOTEBOOK_FIGURES

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    monkeypatch.setenv("IISLIB_HOME", str(notebook_home))  # figures and cache stay here
    params = {"smoke": True, "models": "official", "n_images": 1, "max_clicks": 2,
              "robots": "r01,rgto99,rritm"}  # fmt: skip
    if src.stem.startswith("03"):  # another dataset: its figures go to their own folder
        params["dataset"] = "grabcut"
    if src.stem.startswith("04"):
        params.update(findings_datasets=["berkeley"], variance_seeds=[0, 1], variance_images=1,
                      envelope_images=1)  # fmt: skip
    out = pm.execute_notebook(
        str(converted[src.stem]), str(tmp_path / "out.ipynb"), parameters=params,
        kernel_name="python3", cwd=str(paths.NOTEBOOKS), progress_bar=False,
        execution_timeout=600,
    )  # fmt: skip
    code = [c for c in out.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a cell did not run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in code for o in c.outputs)  # fmt: skip
    assert "gto99-synthft" in text and "ritm-sbd-h18" in text
    folder = notebook_home / "figures" / "smoke" / ("grabcut" if "dataset" in params else "")
    for name in NOTEBOOK_FIGURES[src.stem]:
        assert (folder / f"{name}.png").is_file(), name
    if src.stem.startswith("03"):  # GrabCut's published NoC@90: RITM 2.04, gto99 1.74
        assert "published NoC@90" in text and "2.04" in text and "1.74" in text


def test_the_interval_figure_draws_a_one_image_table():
    """Notebook 04 on one image (as the official smoke run above asks): each interval has zero
    width, its ends rounded to stats.DECIMALS and the mean not, which gave matplotlib a
    negative error bar of ~1e-13 and stopped the notebook."""
    from iislib.drawing.figures import fig_ci
    from iislib.experiment import stats

    rows = [{"dataset": "d", "model": m, "settings": "ipol", "robot": r, "image": "x", "seed": 0,
             "click": k, "iou": iou} for m, r, iou in (("a", "r01", 0.272795348712),
                                                       ("a", "rritm", 0.1086690001234),
                                                       ("b", "r01", 0.4456091234567),
                                                       ("b", "rritm", 0.1333571111111))
            for k in (1, 2)]  # fmt: skip
    table = pd.DataFrame(rows)
    ci = stats.bootstrap_table(table, "iou", 2, 100, 0.95)
    assert (ci["low"] == ci["high"]).all() and (ci["low"] != ci["mean"]).any()
    fig_ci(table, 2, n_boot=100)


def test_the_runner_passes_models_and_device(weights, data_root, monkeypatch):
    from iislib.apps import runner

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    reqs = runner.figure_plan(smoke=True, parameters={"models": "official", "device": "cpu"},
                              only=["03"])  # fmt: skip
    assert [r.models for r in reqs] == [("ritm-sbd-h18", "gto99-synthft"), ("ritm-sbd-h18",),
                                        ("gto99-synthft",)]  # fmt: skip
    make = subprocess.run(["make", "-n", "figures", "MODELS=official", "DEVICE=cuda"],
                          cwd=paths.ROOT, capture_output=True, text=True)  # fmt: skip
    assert "-p models=official -p device=cuda" in make.stdout
    plain = subprocess.run(["make", "-n", "notebooks"], cwd=paths.ROOT, capture_output=True,
                           text=True)  # fmt: skip
    assert "-p models" not in plain.stdout and "--smoke" in plain.stdout
    assert sys.executable  # the subprocess ran make only: nothing executed


def test_a_worker_builds_from_the_callers_path_whatever_its_own_folder(weights, tmp_path):
    """What a Dask worker receives: the pickled spec holds the file's absolute path, so a
    process whose own $IISLIB_WEIGHTS is empty builds the same model from the same file."""
    import pickle

    (spec,) = as_specs(["ritm-cocolvis-h18s"])
    path = str((weights / "coco_lvis_h18s_itermask.pth").absolute())
    assert dict(spec.kwargs) == {"checkpoint": path}
    (tmp_path / "spec.pkl").write_bytes(pickle.dumps(spec))
    env = {**os.environ, "IISLIB_WEIGHTS": str(tmp_path / "empty"),
           "PYTHONPATH": os.pathsep.join([str(paths.ROOT), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    code = ("import pickle, sys; spec = pickle.load(open(sys.argv[1], 'rb')); "
            "print(spec.build().weights_file, spec.key() == sys.argv[2])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "spec.pkl"), spec.key()],
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [path, "True"]


def test_findings_take_the_official_pair_as_the_paper_models():
    """Claims 1, 2, 3, 5 on the official pair: the compact table's paper models relabelled as
    the official names give the same margins with paper_models=OFFICIAL_MODELS (claim 4 keeps
    the compact 2x2), and nothing without it (they are not the default pair)."""
    from tests.test_findings import findings_spec, findings_table

    t = findings_table(findings_spec(True))
    ref = findings.findings(t, n_boot=200)
    pair = t[t.model.isin(list(findings.PAPER_MODELS.values()))].copy()
    names = {findings.PAPER_MODELS[f]: n for f, n in OFFICIAL_PAIR.items()}
    pair["model"] = pair["model"].map(names)
    both = pd.concat([t, pair], ignore_index=True)
    got = findings.findings(
        both, n_boot=200, paper_models=findings.paper_models_of(list(both.model))
    )
    pd.testing.assert_series_equal(got["margin"], ref["margin"])
    assert (got["verdict"] == "reproduced").all()
    alone = findings.findings(pair, n_boot=100, paper_models=findings.OFFICIAL_MODELS)
    assert alone.set_index("claim").loc[[1, 2, 3, 5], "verdict"].eq("reproduced").all()
    assert alone.set_index("claim").loc[4, "verdict"] == "these data cannot tell"


def test_robustness_findings_request_the_official_pair_and_the_2x2(weights, data_root,
                                                                   monkeypatch):  # fmt: skip
    monkeypatch.setenv("IISLIB_DATA", str(data_root))
    cfg = paper.config(models="official", smoke=True)
    sweeps = paper.robustness_sweeps(cfg, [0, 1], 2, ["berkeley", "grabcut"])
    assert sweeps["findings grabcut"].models == (
        "ritm-sbd-h18", "gto99-synthft", "ritm-compact", "gto99-compact",
        "ritm-compact-gto99proc", "gto99-compact-ritmproc")  # fmt: skip
    assert sweeps["family"].models == tuple(findings.FAMILY_PROCEDURE)


def test_the_demo_lists_and_builds_present_files(weights):
    from iislib.experiment.demo import build_model

    model = build_model("ritm-cocolvis-h18s")  # no checkpoint field: the weights folder's file
    assert model.name == "ritm-cocolvis-h18s"


def test_the_plan_prices_each_sweep_by_its_settings(tiny_dataset, tmp_path):
    """Own-protocol sweeps (settings ``ritm``, ``gto99``: full resolution) cost their measured
    factor over the ``ipol`` cost; ``ipol`` sweeps keep the compact estimates exactly."""
    from iislib.apps import runner

    assert runner.SECONDS_PER_CLICK["ritm-sbd-h18"] * runner.SETTINGS_FACTOR["ritm"] == (
        pytest.approx(0.46))  # fmt: skip
    assert runner.SECONDS_PER_CLICK["gto99-synthft"] * runner.SETTINGS_FACTOR["gto99"] == (
        pytest.approx(2.2))  # fmt: skip
    assert set(runner.SETTINGS_FACTOR) == {"ritm", "gto99"}  # ipol (and direct): factor 1
    cfg = paper.config(str(tiny_dataset.folder), "random_walker", "r01,r02", n_images=3,
                       max_clicks=2, settings="ipol")  # fmt: skip
    ipol = paper.request(cfg)
    own = paper.request(dataclasses.replace(cfg, settings="ritm"), robots=["r01"])
    costs = {"random_walker": 0.1}
    plan = paper.make_plan([ipol], cache=tmp_path / "cache")
    # 3 images x 2 robots x 2 clicks = 12 clicks x 0.1 s / 2 workers: as before
    assert runner.cost_clicks(plan) == {"random_walker": 12}
    assert runner.estimate_seconds(runner.cost_clicks(plan), 2, costs) == pytest.approx(
        {"random_walker": 0.6})  # fmt: skip
    both = paper.make_plan([ipol, own], cache=tmp_path / "cache")
    # + 3 images x 1 robot x 2 clicks = 6 clicks, each 0.46 / 0.077 of an ipol click
    assert [runner.weighted_clicks(j) for j in both.jobs if j.settings.name == "ritm"] == (
        pytest.approx([2 * 0.46 / 0.077] * 3))  # fmt: skip
    assert runner.cost_clicks(both) == pytest.approx({"random_walker": 12 + 6 * 0.46 / 0.077})
    # with 1 worker: 1.2 + 3.58 s = 0.08 min in the plan's table
    text = runner.format_plan(both, 1, costs)
    row = next(line for line in text.splitlines() if line.strip().startswith("random_walker"))
    assert row.split() == ["random_walker", "6", "9", "18", "0.1"]
    assert runner.estimate_seconds(runner.cost_clicks(both), 1, costs) == pytest.approx(
        {"random_walker": 1.2 + 6 * 0.1 * 0.46 / 0.077})  # fmt: skip
