"""The sweep: tidy table, cache and resume, parallel == serial, and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import iislib.experiment as ex
from iislib.cli import main
from iislib.experiment import COLUMNS, evaluate, summary

ROBOTS = ["r02", "rgto99"]


def test_table_shape_and_columns(tiny_dataset, tmp_path):
    t = evaluate(["random_walker"], ROBOTS, tiny_dataset, max_clicks=3, seeds=(0, 1),
                 settings="direct", cache_dir=tmp_path / "c", progress=False)  # fmt: skip
    assert list(t.columns) == list(COLUMNS)
    assert len(t) == 1 * 2 * 3 * 2 * 3  # models x robots x images x seeds x clicks
    assert set(t["settings"]) == {"direct"} and set(t["click"]) == {1, 2, 3}
    assert t[["iou", "dice", "accuracy"]].notna().all().all()
    # rgto99 is deterministic: both seeds give the same curve; the first click is positive.
    g = t[t.robot == "rgto99"].pivot_table(index=["image", "click"], columns="seed", values="iou")
    np.testing.assert_array_equal(g[0], g[1])
    assert (t[t.click == 1]["positive"] == 1).all()


def test_cache_resume_and_no_recompute(tiny_dataset, tmp_path, monkeypatch):
    kw = dict(max_clicks=3, settings="direct", cache_dir=tmp_path / "c", progress=False)
    first = evaluate(["random_walker"], ROBOTS, tiny_dataset, **kw)
    files = sorted((tmp_path / "c").rglob("*.csv"))
    assert len(files) == 2 * 3

    calls = []
    real_job = ex._job
    monkeypatch.setattr(ex, "_job", lambda *a: calls.append(a) or real_job(*a))
    again = evaluate(["random_walker"], ROBOTS, tiny_dataset, **kw)
    assert calls == []  # everything came from the cache
    pd.testing.assert_frame_equal(first, again)

    files[0].unlink()  # as if the sweep had been interrupted before that result
    resumed = evaluate(["random_walker"], ROBOTS, tiny_dataset, **kw)
    assert len(calls) == 1 and calls[0][1] == [files[0].parent.name]
    cols = [c for c in COLUMNS if not c.endswith("seconds")]
    pd.testing.assert_frame_equal(first[cols], resumed[cols])


def test_parallel_equals_serial(tiny_dataset):
    kw = dict(max_clicks=3, settings="ipol", progress=False)
    serial = evaluate(["random_walker"], ["r01", "r04"], tiny_dataset, n_jobs=1, **kw)
    par = evaluate(["random_walker"], ["r01", "r04"], tiny_dataset, n_jobs=2, **kw)
    cols = [c for c in COLUMNS if not c.endswith("seconds")]
    pd.testing.assert_frame_equal(serial[cols], par[cols])


def test_unknown_names_fail_before_work(tiny_dataset):
    with pytest.raises(ValueError, match="unknown robot"):
        evaluate(["random_walker"], ["r07"], tiny_dataset, progress=False)
    with pytest.raises(ValueError, match="unknown settings"):
        evaluate(["random_walker"], ["r01"], tiny_dataset, settings="fast", progress=False)


def test_summary(tiny_dataset):
    t = evaluate(["random_walker"], ROBOTS, tiny_dataset, max_clicks=4, settings="direct",
                 progress=False)  # fmt: skip
    s = summary(t)
    assert list(s["robot"]) == ROBOTS
    assert {"NoC@85", "NoC@90", "NoF@90", "mIoU@1", "AUC"} <= set(s.columns)
    assert ((s["NoC@90"] >= 1) & (s["NoC@90"] <= 4)).all()


def test_cli_evaluate_writes_table_summary_and_figure(tiny_dataset, tmp_path, capsys):
    rc = main(["evaluate", "--dataset", str(tiny_dataset.folder), "--models", "random_walker", "--robots", "r02,rritm",
               "--max-clicks", "3", "--settings", "direct", "--out", str(tmp_path / "r"),
               "--figures", str(tmp_path / "f"), "--no-cache", "--quiet"])  # fmt: skip
    assert rc == 0
    table = ex.read_cached(tmp_path / "r" / "tiny_direct.csv")
    assert len(table) == 2 * 3 * 3
    assert (tmp_path / "r" / "tiny_direct_summary.csv").is_file()
    png = tmp_path / "f" / "iou_vs_clicks_tiny_direct.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rritm" in capsys.readouterr().out


def test_cli_reports_bad_names(tiny_dataset, tmp_path, capsys):
    rc = main(["evaluate", "--dataset", str(tiny_dataset.folder), "--robots", "zz",
               "--no-cache", "--quiet", "--out", str(tmp_path)])  # fmt: skip
    assert rc == 2 and "unknown robot 'zz'" in capsys.readouterr().err


def test_cache_key_changes_with_the_weights_file(tmp_path):
    from iislib.experiment import ModelSpec

    w = tmp_path / "w.pt"
    w.write_bytes(b"one")
    spec = ModelSpec("m", "ritm-compact", (("weights", str(w)),))
    k1 = spec.key()
    w.write_bytes(b"two")
    assert spec.key() != k1
    assert ModelSpec("rw", "random_walker").key() == ModelSpec("rw", "random_walker").key()
