"""The demo: run_demo, figures, atomic outputs, summary, the CLI and the widget app (no browser)."""

from __future__ import annotations

import datetime
import html
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from PIL import Image

from iislib.apps.cli import main
from iislib.apps.demo import OUTPUT_FILES, write_outputs
from iislib.core.clicks import Click
from iislib.core.loop import Trajectory
from iislib.core.metrics import SCORE_NAMES, boundary_iou, scores
from iislib.core.model import IISModel
from iislib.drawing.demo_figures import fig_curves, fig_panel
from iislib.experiment.data import DataError, load_dataset
from iislib.experiment.demo import (
    DemoError,
    DemoResult,
    as_image,
    check_inputs,
    decode_image_bytes,
    envelope_line,
    noc_values,
    run_demo,
    run_envelope,
    summary_line,
)

H, W = 96, 128


def demo_pair(h: int = H, w: int = W, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two separate objects (an ellipse and a square) on a noisy background.

    One click cannot segment both, so the scores change over the first clicks.
    """
    rng = np.random.default_rng(seed)
    rr, cc = np.indices((h, w))
    ellipse = ((rr - h / 2) / (h / 4)) ** 2 + ((cc - w / 3) / (w / 6)) ** 2 <= 1
    square = (rr > h // 6) & (rr < h // 6 + h // 5) & (cc > 3 * w // 4) & (cc < 3 * w // 4 + h // 5)
    gt = ellipse | square
    image = np.where(gt[..., None], [190, 120, 60], [60, 90, 110]) + rng.normal(0, 12, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8), gt


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def pair():
    return demo_pair()


@pytest.fixture(scope="module")
def result(pair) -> DemoResult:
    image, gt = pair
    return run_demo(image, gt, "random_walker", "rritm", clicks=20, seed=0, name="pair")


@pytest.fixture(scope="module")
def result2(pair) -> DemoResult:
    image, gt = pair
    return run_demo(image, gt, "random_walker", "r02", clicks=20, seed=0, name="pair")


@pytest.fixture
def files(tmp_path: Path, pair) -> tuple[Path, Path]:
    image, gt = pair
    img, msk = tmp_path / "img.png", tmp_path / "mask.png"
    Image.fromarray(image).save(img)
    Image.fromarray((gt * 255).astype(np.uint8)).save(msk)
    return img, msk


# ----------------------------------------------------------------------------------------------
# run_demo


def test_the_scores_table_has_one_row_per_click_and_matches_the_probability_maps(result, pair):
    _, gt = pair
    frame = result.scores
    assert len(frame) == 20
    assert list(frame["click"]) == list(range(1, 21))
    assert set(SCORE_NAMES) <= set(frame.columns)
    probs = result.trajectory.probs
    assert probs.shape == (20, H, W)
    for k in (1, 2, 20):
        expected = scores(probs[k - 1] > 0.5, gt).as_dict()
        expected["boundary_iou"] = boundary_iou(probs[k - 1] > 0.5, gt)
        for m in SCORE_NAMES:
            assert frame[m].iloc[k - 1] == pytest.approx(expected[m])
    # the clicks placed are in the table, and carry the ground truth's label
    placed = result.trajectory.clicks
    assert len(placed) >= 2  # two objects: one click is never enough
    for i, c in enumerate(placed):
        row = frame.iloc[i]
        assert (row["row"], row["col"], bool(row["positive"])) == (c.row, c.col, c.positive)
        assert c.positive == gt[c.row, c.col]


def test_two_objects_need_two_clicks(result):
    iou = result.trajectory.scores["iou"]
    assert iou[0] < 0.9  # rritm clicks the larger object first; the square is still missing
    assert iou[-1] > iou[0]


def test_same_seed_same_clicks_other_seed_other_clicks(pair):
    image, gt = pair
    a = run_demo(image, gt, "random_walker", "r01", clicks=4, seed=1)
    b = run_demo(image, gt, "random_walker", "r01", clicks=4, seed=1)
    c = run_demo(image, gt, "random_walker", "r01", clicks=4, seed=2)
    assert a.trajectory.clicks == b.trajectory.clicks
    assert a.trajectory.clicks != c.trajectory.clicks
    timing = ["model_seconds", "robot_seconds"]
    pd.testing.assert_frame_equal(a.scores.drop(columns=timing), b.scores.drop(columns=timing))


def test_mask_rule_is_channel_mean_below_128_is_background(pair):
    image, _ = pair
    patch = np.zeros((H, W), bool)
    patch[10:30, 10:30] = True
    # two colours each: yellow (mean 170) and grey 128 on black are foreground, red (mean 85)
    # on white is background
    for colour, ground, want in (((255, 255, 0), (0, 0, 0), patch),
                                 ((128, 128, 128), (0, 0, 0), patch),
                                 ((255, 0, 0), (255, 255, 255), ~patch)):  # fmt: skip
        mask = np.empty((H, W, 3), np.uint8)
        mask[:] = ground
        mask[patch] = colour
        _, gt = check_inputs(image, mask)
        np.testing.assert_array_equal(gt, want)
    # more than two colours: no silent threshold (issue 26), the colours are named
    mask[40:60, 40:60] = (255, 255, 0)
    with pytest.raises(DataError, match=r"3 distinct values: \(255, 0, 0\), \(255, 255, 0\)"):
        check_inputs(image, mask)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        (dict(gt=np.ones((H, W + 1), bool)), DataError, "129x96"),
        (dict(gt=np.zeros((H, W), bool)), DataError, "empty"),
        (dict(gt=np.ones((H, W), bool)), DataError, "all foreground"),
        (dict(model="no_such_model"), DemoError, "unknown model"),
        (dict(robot="r99"), DemoError, "unknown robot"),
        (dict(model="gto99"), DemoError, "checkpoint"),
        (dict(model="gto99", checkpoint="/no/such/file.pth"), FileNotFoundError, "/no/such"),
        (dict(clicks=0), DemoError, "clicks"),
        (dict(image=np.zeros((H, W, 2), np.uint8)), DataError, "shape"),
    ],
)
def test_bad_requests_raise_clear_errors(pair, kwargs, error, words):
    image, gt = pair
    args = dict(image=image, gt=gt, model="random_walker", robot="rritm", clicks=3) | kwargs
    with pytest.raises(error, match=words):
        run_demo(**args)


def test_a_file_that_is_no_checkpoint_is_reported(pair, tmp_path):
    image, gt = pair
    bad = tmp_path / "weights.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="weights.pth"):
        run_demo(image, gt, "gto99", "rritm", clicks=2, checkpoint=bad)


def test_image_conversions():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert as_image(grey).shape == (3, 4, 3)
    assert (as_image(grey)[..., 2] == grey).all()
    rgba = np.zeros((3, 4, 4), np.uint8)
    assert as_image(rgba).shape == (3, 4, 3)
    assert as_image(np.full((3, 4, 3), 1.0)).max() == 255
    with pytest.raises(DataError, match="uint8"):
        as_image(np.full((3, 4, 3), 300.0))
    with pytest.raises(DataError, match="not an image"):
        decode_image_bytes(b"hello", "mask")
    with pytest.raises(DataError, match="empty"):
        decode_image_bytes(b"", "mask")
    a = (np.arange(24).reshape(2, 4, 3) * 10).astype(np.uint8)
    assert (decode_image_bytes(png_bytes(a)) == a).all()


# ----------------------------------------------------------------------------------------------
# summary


def fake_result(iou: list[float], ended_at: int | None = None) -> DemoResult:
    k = len(iou)
    sc = {m: np.asarray(iou, dtype=float) for m in SCORE_NAMES}
    traj = Trajectory(clicks=[Click(0, 0, True)], scores=sc, max_clicks=k, ended_at=ended_at)
    return DemoResult(
        image=np.zeros((4, 4, 3), np.uint8), gt=np.eye(4, dtype=bool), ignore=None,
        model="m", robot="r", seed=0, trajectory=traj, scores=pd.DataFrame(), seconds=0.25,
        name="x",
    )  # fmt: skip


def test_summary_line_hand_computed():
    r = fake_result([0.5, 0.86, 0.87, 0.91, 0.95])
    assert noc_values(r) == {0.85: 2, 0.90: 4}
    assert summary_line(r) == (
        "m / r on x: final IoU 0.950 after 5 clicks, NoC@85 2, NoC@90 4 (0.2 s)"
    )
    never = fake_result([0.1, 0.2, 0.86], ended_at=None)
    assert noc_values(never) == {0.85: 3, 0.90: None}
    assert "NoC@85 3, NoC@90 >3" in summary_line(never)
    assert "no error left after click 2" in summary_line(fake_result([0.2, 1.0, 1.0], 2))


# ----------------------------------------------------------------------------------------------
# figures and files


def test_fig_curves_one_panel_per_metric_one_line_per_run(result, result2):
    fig = fig_curves(result, result2)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [
        "accuracy", "precision", "recall", "Dice", "IoU", "F-score", "Boundary IoU"
    ]  # fmt: skip
    for ax, m in zip(axes, SCORE_NAMES, strict=True):
        runs = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 20]
        assert len(runs) == 2
        assert np.allclose(runs[0].get_ydata(), result.trajectory.scores[m])
        assert np.allclose(runs[1].get_ydata(), result2.trajectory.scores[m])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["random_walker / rritm", "random_walker / r02"]
    # every column's lowest panel is labelled (the Dice panel sits above an empty slot)
    assert [ax.get_xlabel() for ax in axes] == [""] * 3 + ["number of clicks"] * 4


def test_the_envelope_band_in_the_iou_panel(pair):
    image, gt = pair
    worst, best = run_envelope(image, gt, "random_walker", clicks=3, name="pair")
    assert (worst.robot, best.robot) == ("rworst", "rbest")
    lo, hi = worst.trajectory.scores["iou"], best.trajectory.scores["iou"]
    assert lo[0] <= hi[0]  # at click 1 the greedy bounds are exact
    rritm = run_demo(image, gt, "random_walker", "rritm", clicks=3, name="pair")
    assert lo[0] <= rritm.trajectory.scores["iou"][0] <= hi[0]
    fig = fig_curves(rritm, envelope=(worst, best))
    iou_ax = [ax for ax in fig.axes if ax.get_title() == "IoU"][0]
    (band,) = iou_ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(min(lo.min(), hi.min()))
    assert ys.max() == pytest.approx(max(lo.max(), hi.max()))
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["random_walker / rritm", "envelope (rworst to rbest)"]
    assert not any(ax.collections for ax in fig.axes if ax is not iou_ax)  # IoU only
    line = envelope_line((worst, best))
    assert line.startswith("envelope of random_walker on pair (rworst to rbest), IoU after ")
    assert f"click 1: {lo[0]:.3f} to {hi[0]:.3f}" in line and "click 3:" in line


def test_fig_panel_shows_click_k(result, result2):
    fig = fig_panel(result, 3)
    assert len(fig.axes) == 3
    titles = [ax.get_title() for ax in fig.axes]
    assert "click 3" in titles[1]
    assert f"IoU {result.trajectory.scores['iou'][2]:.3f}" in titles[2]
    # the clicks drawn on the overlay are the first min(k, placed) clicks
    dots = [c for c in fig.axes[1].collections if isinstance(c, PathCollection)]
    n_dots = sum(len(c.get_offsets()) for c in dots)
    assert n_dots == min(3, len(result.trajectory.clicks))
    assert len(fig_panel(result, 1, result2).axes) == 6
    with pytest.raises(ValueError, match="1..20"):
        fig_panel(result, 21)


def test_write_outputs_writes_the_three_files(tmp_path, result, result2):
    out = tmp_path / "a" / "b"
    paths = write_outputs(out, result, result2, k=2)
    assert [p.name for p in paths] == list(OUTPUT_FILES)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    for p in paths[:2]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "scores.csv")
    assert len(table) == 40
    assert list(table.groupby(["model", "robot"], sort=False).size()) == [20, 20]
    assert np.allclose(table["iou"][:20], result.trajectory.scores["iou"], atol=1e-6)


def test_write_outputs_is_all_or_nothing(tmp_path, result):
    def broken(*args, **kwargs):
        raise RuntimeError("rendering failed")

    out = tmp_path / "new"
    with pytest.raises(RuntimeError):
        write_outputs(out, result, render=broken)
    assert not out.exists()

    def one_missing(*args, **kwargs):  # fails half way through the writes
        return {"curves.png": b"new curves", "panel.png": b"new panel"}

    with pytest.raises(KeyError):
        write_outputs(out, result, render=one_missing)
    assert not out.exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "curves.png").write_bytes(b"previous")
    with pytest.raises(KeyError):
        write_outputs(old, result, render=one_missing)
    assert [p.name for p in old.iterdir()] == ["curves.png"]
    assert (old / "curves.png").read_bytes() == b"previous"


# ----------------------------------------------------------------------------------------------
# command line


def test_cli_demo_writes_outputs_and_one_summary_line(tmp_path, files, capsys):
    img, msk = files
    out = tmp_path / "out"
    rc = main(["demo", str(img), str(msk), "--model", "random_walker", "--robot", "rritm",
               "--clicks", "20", "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    table = pd.read_csv(out / "scores.csv")
    assert table.shape[0] == 20
    assert set(SCORE_NAMES) <= set(table.columns)
    assert ((table[list(SCORE_NAMES)] >= 0) & (table[list(SCORE_NAMES)] <= 1)).all().all()
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("random_walker / rritm on img: final IoU ")
    assert "NoC@85" in lines[0] and "NoC@90" in lines[0]
    assert lines[1].startswith("wrote ")


def test_cli_demo_compare(tmp_path, files, capsys):
    img, msk = files
    out = tmp_path / "out"
    assert main(["demo", str(img), str(msk), "--robot", "rritm", "--compare-robot", "r04",
                 "--clicks", "5", "--out", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(out / "scores.csv")
    assert list(table["robot"].unique()) == ["rritm", "r04"] and len(table) == 10
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def _bad_case(tmp_path: Path, files: tuple[Path, Path], case: str) -> tuple[list[str], str]:
    img, msk = files
    extra: list[str] = []
    if case == "sizes":
        msk = tmp_path / "small.png"
        Image.fromarray(np.full((H, W + 3), 255, np.uint8)).save(msk)
        words = "131x96"
    elif case == "not_image":
        msk = tmp_path / "mask.txt"
        msk.write_text("no image here")
        words = "not a readable"
    elif case == "empty":
        msk = tmp_path / "empty.png"
        Image.fromarray(np.zeros((H, W), np.uint8)).save(msk)
        words = "empty"
    elif case == "all_fg":
        msk = tmp_path / "full.png"
        Image.fromarray(np.full((H, W, 3), 200, np.uint8)).save(msk)
        words = "all foreground"
    elif case == "missing_file":
        img = tmp_path / "nothing.png"
        words = "no such file"
    elif case == "model":
        extra, words = ["--model", "nope"], "unknown model"
    elif case == "robot":
        extra, words = ["--robot", "nope"], "unknown robot"
    elif case == "no_checkpoint":
        extra, words = ["--model", "gto99"], "checkpoint"
    elif case == "missing_checkpoint":
        extra, words = ["--model", "gto99", "--checkpoint", str(tmp_path / "w.pth")], "w.pth"
    elif case == "clicks":
        extra, words = ["--clicks", "0"], "clicks"
    else:  # pragma: no cover
        raise AssertionError(case)
    return [str(img), str(msk), *extra], words


BAD_CASES = ["sizes", "not_image", "empty", "all_fg", "missing_file", "model", "robot",
             "no_checkpoint", "missing_checkpoint", "clicks"]  # fmt: skip


@pytest.mark.parametrize("case", BAD_CASES)
def test_cli_demo_bad_input_exits_nonzero_and_writes_nothing(tmp_path, files, capsys, case):
    args, words = _bad_case(tmp_path, files, case)
    out = tmp_path / "out"
    rc = main(["demo", *args, "--clicks", "3", "--out", str(out)] if case != "clicks"
              else ["demo", *args, "--out", str(out)])  # fmt: skip
    assert rc != 0
    assert not out.exists()
    err = capsys.readouterr().err
    assert words in err
    assert len(err.strip().splitlines()) == 1  # one clear line, no traceback


def test_cli_demo_exit_status_in_a_real_process(tmp_path, files):
    args, _ = _bad_case(tmp_path, files, "sizes")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "iislib", "demo", *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0
    assert "131x96" in proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# the widget app, driven from Python


def _upload(widget, name: str, data: bytes) -> None:
    widget.value = (
        {"name": name, "type": "image/png", "size": len(data), "content": memoryview(data),
         "last_modified": datetime.datetime.now(datetime.timezone.utc)},
    )  # fmt: skip


def test_app_runs_reports_bad_input_and_keeps_working(pair):
    from iislib.apps.demo_app import DemoApp

    image, gt = pair
    app = DemoApp(clicks=6)
    assert app.clicks.value == 6 and app.error.value == ""
    assert not app.run() and "upload an image and a mask" in app.error.value
    assert app.results_box.layout.display == "none"  # nothing to show yet

    _upload(app.image_upload, "img.png", png_bytes(image))
    _upload(app.mask_upload, "mask.png", png_bytes((gt * 255).astype(np.uint8)))
    assert app.error.value == ""
    assert "128x96" in app.upload_info.value
    assert app.run() and app.error.value == ""
    assert "NoC@85" in app.status.value
    assert app.results_box.layout.display is None
    assert app.slider.max == 6 and app.slider.value == 6 and not app.slider.disabled
    assert app.curves.value[:4] == b"\x89PNG" and app.panel.value[:4] == b"\x89PNG"
    assert 'download="scores.csv"' in app.downloads.value
    assert "data:text/csv;base64," in app.downloads.value
    before = app.panel.value
    app.slider.value = 1
    assert app.panel.value != before and "panel_click1.png" in app.downloads.value

    bad = {
        "not an image": b"plain text",
        "129x96": png_bytes(np.full((H, W + 1), 255, np.uint8)),
        "empty": png_bytes(np.zeros((H, W), np.uint8)),
        "all foreground": png_bytes(np.full((H, W), 255, np.uint8)),
    }
    for words, data in bad.items():
        _upload(app.mask_upload, "bad.png", data)
        assert words in app.error.value  # shown at upload time already
        assert not app.run()
        assert app.error.value and words.split()[0] in app.error.value
    _upload(app.mask_upload, "mask.png", png_bytes((gt * 255).astype(np.uint8)))
    app.model.value = "gto99"
    assert not app.run() and "checkpoint" in app.error.value
    app.checkpoint.value = "/no/such/weights.pth"
    assert not app.run() and "/no/such/weights.pth" in app.error.value
    app.model.value = "random_walker"
    app.clicks.value = 0
    assert not app.run() and "clicks" in app.error.value
    app.clicks.value = 3
    app.compare.value = True
    app.robot2.value = "r04"
    assert app.run() and app.error.value == ""
    assert [r.robot for r in app.results] == ["rritm", "r04"]
    assert app.slider.max == 3
    assert app.envelope_runs is None and "envelope" not in app.status.value

    # the envelope box: the first model under rworst and rbest, the band in the curves
    app.compare.value = False
    app.clicks.value = 2
    assert app.run()
    plain = app.curves.value
    app.envelope.value = True
    assert app.run() and app.error.value == ""
    worst, best = app.envelope_runs
    assert (worst.robot, best.robot, worst.model) == ("rworst", "rbest", "random_walker")
    assert worst.clicks == best.clicks == 2 and worst.seed == app.seed.value
    assert "envelope of random_walker on img (rworst to rbest)" in app.status.value
    assert app.curves.value != plain
    app.envelope.value = False
    assert app.run() and app.envelope_runs is None


def test_app_reports_unknown_initial_names():
    from iislib.apps.demo_app import DemoApp

    app = DemoApp(model="nope", robot="r99")
    assert "unknown model 'nope'" in app.error.value.replace("&#x27;", "'")
    assert "unknown robot 'r99'" in app.error.value.replace("&#x27;", "'")
    assert app.model.value == app.model.options[0]


def test_app_dataset_sample(data_root):
    from iislib.apps.demo_app import DemoApp

    app = DemoApp(clicks=2, sample="berkeley/101087")
    assert app.source.value == "dataset" and app.sample.value == "101087"
    assert app.run(), app.error.value
    expected = load_dataset("berkeley", root=data_root)["101087"]
    assert app.results[0].name == "101087"
    assert np.array_equal(app.results[0].gt, expected.gt)
    assert np.array_equal(app.results[0].image, expected.image)


# ----------------------------------------------------------------------------------------------
# the CLI: checks before work, one line for every failure, limits, reproducible scores.csv


def _no_computing(monkeypatch) -> None:
    """Make any model run fail the test: the checks below must come before the work."""

    def computed(*args, **kwargs):
        raise AssertionError("the demo computed before refusing")

    monkeypatch.setattr("iislib.experiment.demo.run_demo", computed)


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder in which no file can be created, for real (root ignores permission bits)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    for cand in (locked, Path("/sys")):
        try:
            (cand / ".probe").touch()
        except OSError:
            return cand
        (cand / ".probe").unlink()
    pytest.skip("no folder here refuses new files")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


@pytest.mark.parametrize("case", ["file", "under_file", "unwritable", "panel_click"])
def test_cli_demo_checks_out_before_computing(tmp_path, files, capsys, monkeypatch, case):
    img, msk = files
    _no_computing(monkeypatch)
    extra: list[str] = []
    if case == "file":
        out = tmp_path / "taken"
        out.write_text("a file")
        words = f"output folder {out} is a file"
    elif case == "under_file":
        (tmp_path / "taken").write_text("a file")
        out = tmp_path / "taken" / "sub" / "out"
        words = f"lies under the file {tmp_path / 'taken'}"
    elif case == "unwritable":
        out = _unwritable_folder(tmp_path) / "new" / "out"
        words = "cannot be written"
    else:
        out = tmp_path / "out"
        extra, words = ["--panel-click", "4"], "--panel-click must be in 1..3"
    rc = main(["demo", str(img), str(msk), "--clicks", "3", "--out", str(out), *extra])
    assert rc == 2
    assert words in _one_error_line(capsys)
    assert case == "file" or not out.exists()
    if case == "file":
        assert out.read_text() == "a file"


@pytest.fixture(scope="module")
def bomb_png(tmp_path_factory) -> Path:
    """A 24 kB PNG of 14000 x 14000 one-bit pixels: over PIL's decompression-bomb limit."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", (14000, 14000)).save(path)
    return path


def test_cli_demo_refuses_a_decompression_bomb(tmp_path, files, bomb_png, capsys, monkeypatch):
    _, msk = files
    _no_computing(monkeypatch)
    out = tmp_path / "out"
    rc = main(["demo", str(bomb_png), str(msk), "--out", str(out)])
    assert rc == 2
    assert "bomb.png: refused as a decompression bomb" in _one_error_line(capsys)
    assert not out.exists()


def test_cli_demo_out_of_memory_is_one_line(tmp_path, files, capsys, monkeypatch):
    img, msk = files

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("iislib.experiment.demo.run_demo", exhausted)
    out = tmp_path / "out"
    rc = main(["demo", str(img), str(msk), "--clicks", "2", "--out", str(out)])
    assert rc == 1
    line = _one_error_line(capsys)
    assert "out of memory" in line and "--max-side" in line
    assert not out.exists()


def test_cli_demo_write_failure_is_one_line_and_leaves_nothing(
    tmp_path, files, capsys, monkeypatch
):
    img, msk = files
    out = tmp_path / "out"
    written: list[Path] = []

    def disk_full(self, data):
        written.append(self)
        raise OSError(28, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    rc = main(["demo", str(img), str(msk), "--clicks", "2", "--out", str(out)])
    assert rc == 1
    assert "No space left on device" in _one_error_line(capsys)
    assert written and all(p.parent == out and p.name.startswith(".") for p in written)
    assert not out.exists()  # the temporary files and the folder made for them are gone


def _big_pair(tmp_path: Path, w: int, h: int) -> tuple[Path, Path]:
    """A smooth w x h image (small PNG) with a disk as its mask."""
    rr, cc = np.mgrid[:h, :w]
    disk = (rr - h / 2) ** 2 + (cc - w / 2) ** 2 <= (min(h, w) / 4) ** 2
    image = np.where(disk[..., None], [200, 120, 40], [30, 60, 90]).astype(np.uint8)
    img, msk = tmp_path / "big.png", tmp_path / "big_mask.png"
    Image.fromarray(image).save(img)
    Image.fromarray((disk * 255).astype(np.uint8)).save(msk)
    return img, msk


def test_cli_demo_pixel_limit_and_max_side(tmp_path, capsys, monkeypatch):
    from iislib.experiment.demo import MAX_PIXELS, load_inputs

    assert MAX_PIXELS == 4_000_000
    img, msk = _big_pair(tmp_path, 2001, 2000)  # 4 002 000 pixels
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        _no_computing(m)
        assert main(["demo", str(img), str(msk), "--clicks", "2", "--out", str(out)]) == 2
        line = _one_error_line(capsys)
        # 2000 -> 2000 x 1999 = 3 998 000 pixels fits; 2001 is the image itself
        assert "2001x2000 is 4 megapixels, over the limit of 4 megapixels" in line
        assert "--max-side 2000" in line
        assert not out.exists()
        assert main(["demo", str(img), str(msk), "--max-side", "0", "--out", str(out)]) == 2
        assert "--max-side must be a whole number of pixels >= 1" in _one_error_line(capsys)
    sample, note = load_inputs(img, msk, max_side=64)
    assert sample.image.shape == (64, 64, 3) and set(np.unique(sample.gt)) == {False, True}
    assert note is not None and "downscaled from 2001x2000 to 64x64" in note
    assert load_inputs(img, msk, max_side=2000)[0].image.shape == (1999, 2000, 3)
    rc = main(["demo", str(img), str(msk), "--clicks", "2", "--max-side", "64", "--out", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    assert "note: " in captured.err and "to 64x64 (--max-side 64)" in captured.err
    assert len(pd.read_csv(out / "scores.csv")) == 2


def test_run_demo_refuses_arrays_over_the_limit(monkeypatch):
    image = np.zeros((2000, 2001, 3), np.uint8)
    gt = np.zeros((2000, 2001), bool)
    gt[500:1500, 500:1500] = True

    class Refuse(IISModel):
        name = "refuse"

        def _predict(self, image, clicks, prev):
            raise AssertionError("the model ran on an image over the limit")

    with pytest.raises(DataError, match=r"over the limit of 4 megapixels.*--max-side 2000"):
        run_demo(image, gt, Refuse(), "rritm", clicks=1)


def test_cli_demo_scores_csv_is_byte_identical_and_timings_are_apart(tmp_path, files):
    img, msk = files
    args = ["demo", str(img), str(msk), "--robot", "rritm", "--clicks", "4"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a, b = (tmp_path / d / "scores.csv" for d in "ab")
    assert a.read_bytes() == b.read_bytes()
    header = a.read_text().splitlines()[0].split(",")
    assert not {"model_seconds", "robot_seconds"} & set(header)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(OUTPUT_FILES)
    assert main([*args, "--timings", "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "scores.csv").read_bytes() == a.read_bytes()
    timings = pd.read_csv(tmp_path / "t" / "timings.csv")
    assert list(timings.columns) == [
        "model", "robot", "image", "seed", "settings", "click", "model_seconds", "robot_seconds"
    ]  # fmt: skip
    assert list(timings["click"]) == [1, 2, 3, 4] and (timings["model_seconds"] > 0).any()


# ----------------------------------------------------------------------------------------------
# the app: the same decoding, limits and errors for uploads


def test_app_decodes_16bit_images_and_01_masks(pair):
    from iislib.apps.demo_app import DemoApp

    image, gt = pair
    grey16 = (image[..., 0].astype(np.uint16) * 257).astype(np.uint16)  # v * 257: exact 16-bit
    app = DemoApp(clicks=2)
    _upload(app.image_upload, "deep.png", png_bytes(grey16))
    _upload(app.mask_upload, "labels.png", png_bytes(gt.astype(np.uint8)))
    assert app.error.value == "", app.error.value
    got, mask, _, _ = app.inputs()
    np.testing.assert_array_equal(got, np.repeat(image[..., :1], 3, axis=-1))
    np.testing.assert_array_equal(mask, gt)
    assert app.run(), app.error.value


def test_app_refuses_oversized_uploads_and_bombs(tmp_path, pair, bomb_png):
    from iislib.apps.demo_app import DemoApp

    image, gt = pair
    big_img, big_msk = _big_pair(tmp_path, 2001, 2000)
    app = DemoApp(clicks=2)
    _upload(app.image_upload, "big.png", big_img.read_bytes())
    _upload(app.mask_upload, "big_mask.png", big_msk.read_bytes())
    assert "over the limit of 4 megapixels" in app.error.value
    assert not app.run() and "4 megapixels" in app.error.value
    _upload(app.image_upload, "bomb.png", bomb_png.read_bytes())
    assert "decompression bomb" in app.error.value
    assert not app.run() and "decompression bomb" in app.error.value
    _upload(app.image_upload, "img.png", png_bytes(image))  # the app still works
    _upload(app.mask_upload, "mask.png", png_bytes((gt * 255).astype(np.uint8)))
    assert app.run() and app.error.value == ""


def test_read_mask_bytes_by_rule_hand_checked():
    from iislib.experiment.data import RULE_NAMES
    from iislib.experiment.demo import MASK_RULES, read_mask_bytes

    assert set(MASK_RULES) <= set(RULE_NAMES)  # the page offers rules the library knows

    grey = np.array([[0, 100, 129], [128, 255, 200]], np.uint8)  # an antialiased edge
    with pytest.raises(DataError, match="4 distinct|distinct"):
        read_mask_bytes(png_bytes(grey))  # binary: more than two values
    gt, ignore = read_mask_bytes(png_bytes(grey), "threshold")
    assert gt.tolist() == [[False, False, True], [False, True, True]] and ignore is None
    gt, ignore = read_mask_bytes(png_bytes(grey), "grabcut")
    # GrabCut's rule: >= 192 foreground, the grey band 65..191 ignored
    assert gt.tolist() == [[False, False, False], [False, True, True]]
    assert ignore is not None and ignore.tolist() == [[False, True, True], [True, False, False]]
    labels = np.array([[0, 1, 2], [0, 0, 3]], np.uint8)
    gt, _ = read_mask_bytes(png_bytes(labels), "nonzero")
    assert gt.tolist() == [[False, True, True], [False, False, True]]
    with pytest.raises(DataError, match="unknown mask rule"):
        read_mask_bytes(png_bytes(grey), "blurry")


def test_app_mask_rule_reads_a_jpeg_style_mask_and_a_trimap(pair):
    from iislib.apps.demo_app import DemoApp

    image, gt = pair
    app = DemoApp(clicks=2)
    _upload(app.image_upload, "img.png", png_bytes(image))
    soft = (gt * 255).astype(np.uint8)
    soft[np.roll(gt, 1, axis=1) != gt] = 140  # a one-pixel antialiased border, as a JPEG has
    _upload(app.mask_upload, "soft.png", png_bytes(soft))
    shown = html.unescape(app.error.value)
    assert "3 distinct values: 0, 140, 255" in shown and "mask rule 'threshold'" in shown
    assert not app.run()
    app.mask_rule.value = "threshold"
    assert app.error.value == "" and "% foreground" in app.upload_info.value
    assert app.run() and app.error.value == ""
    _, got, ignore, _ = app.inputs()
    np.testing.assert_array_equal(got, soft > 128)
    assert ignore is None
    trimap = soft.copy()
    trimap[trimap == 140] = 128  # GrabCut's unknown band
    _upload(app.mask_upload, "trimap.png", png_bytes(trimap))
    app.mask_rule.value = "grabcut"
    assert app.error.value == "" and "% ignored" in app.upload_info.value
    _, got, ignore, _ = app.inputs()
    assert ignore is not None and ignore.sum() == (trimap == 128).sum()
    assert app.run() and app.error.value == ""
