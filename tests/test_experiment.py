"""The sweep: tidy table, cache and resume, parallel == serial, and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import iislib.experiment.sweep as ex
from iislib.apps.cli import main
from iislib.experiment.data import load_dataset
from iislib.experiment.sweep import COLUMNS, CacheError, CacheWarning, ModelSpec, evaluate, summary
from iislib.models.settings import get_settings

from .conftest import write_folder_dataset

ROBOTS = ["r02", "rgto99"]
SCORE_COLUMNS = [c for c in COLUMNS if not c.endswith("seconds")]  # all but the timings


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
    real_job = ex.run_job
    monkeypatch.setattr(ex, "run_job", lambda *a: calls.append(a) or real_job(*a))
    again = evaluate(["random_walker"], ROBOTS, tiny_dataset, **kw)
    assert calls == []  # everything came from the cache
    pd.testing.assert_frame_equal(first, again)

    files[0].unlink()  # as if the sweep had been interrupted before that result
    resumed = evaluate(["random_walker"], ROBOTS, tiny_dataset, **kw)
    assert len(calls) == 1 and calls[0][1] == [files[0].parent.name]
    cols = [c for c in COLUMNS if not c.endswith("seconds")]
    pd.testing.assert_frame_equal(first[cols], resumed[cols])


def test_a_robot_revision_keeps_results_of_its_old_behaviour_out(tiny_dataset, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    from iislib.core.robots import get_robot

    r04 = get_robot("r04")
    assert ex.robot_key("r04") == ex.robot_key(r04) == f"r04@{r04.revision}"
    assert ex.robot_key("r01") == "r01"  # never revised: the keys of existing caches hold
    kw = dict(max_clicks=2, settings="direct", cache_dir=tmp_path / "c", progress=False)
    evaluate(["random_walker"], ["r01", "r04"], tiny_dataset, **kw)
    calls = []
    real_job = ex.run_job
    monkeypatch.setattr(ex, "run_job", lambda *a: calls.append(a) or real_job(*a))
    monkeypatch.setattr(type(r04), "revision", r04.revision + 1)  # r04's clicks "changed"
    evaluate(["random_walker"], ["r01", "r04"], tiny_dataset, **kw)
    assert len(calls) == 3 and all(c[1] == ["r04"] for c in calls)  # r01 still from the cache


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
    # mBIoU@k: the mean Boundary IoU after k clicks, per robot
    want = t[t.click == 1].groupby("robot")["boundary_iou"].mean()
    assert s.set_index("robot")["mBIoU@1"].to_dict() == pytest.approx(want.to_dict())
    assert "mBIoU@1" not in summary(t.drop(columns="boundary_iou")).columns  # an older table


def test_cli_evaluate_writes_table_summary_and_figure(tiny_dataset, tmp_path, capsys):
    rc = main(["evaluate", "--dataset", str(tiny_dataset.folder), "--models", "random_walker", "--robots", "r02,rritm",
               "--max-clicks", "3", "--settings", "direct", "--out", str(tmp_path / "r"),
               "--figures", str(tmp_path / "f"), "--no-cache", "--quiet"])  # fmt: skip
    assert rc == 0
    table = ex.read_table(tmp_path / "r" / "tiny_direct.csv")
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
    from iislib.experiment.sweep import ModelSpec

    w = tmp_path / "w.pt"
    w.write_bytes(b"one")
    spec = ModelSpec("m", "ritm-compact", (("weights", str(w)),))
    k1 = spec.key()
    w.write_bytes(b"two")
    assert spec.key() != k1
    assert ModelSpec("rw", "random_walker").key() == ModelSpec("rw", "random_walker").key()


# ----------------------------------------------------------------------------------------------
# the cache is verified: every kind of damage is reported once, recomputed and replaced

KW = dict(max_clicks=3, settings="direct", progress=False)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A 3-image dataset, its clean cache folder and the clean table (random_walker, ROBOTS)."""
    base = tmp_path_factory.mktemp("clean")
    ds = load_dataset(write_folder_dataset(base / "tiny"))
    table = evaluate(["random_walker"], ROBOTS, ds, cache_dir=base / "cache", **KW)
    return ds, base / "cache", table


def _entry(ds, cache, image, robot="rgto99"):
    spec = ModelSpec("random_walker", "random_walker")
    return ex.cache_entry(cache, spec, get_settings("direct"), ds, image, robot, 0, 3)


def _split(data: bytes) -> tuple[bytes, list[bytes]]:
    header, _, body = data.partition(b"\n")
    return header + b"\n", body.splitlines(keepends=True)


def _edit_one_value(data: bytes) -> bytes:
    header, lines = _split(data)
    fields = lines[-1].decode().rstrip("\n").split(",")
    i = COLUMNS.index("iou")
    fields[i] = repr(float(fields[i]) / 2)
    return header + b"".join(lines[:-1]) + (",".join(fields) + "\n").encode()


def _drop_column(data: bytes, column: str, key: str | None = None) -> bytes:
    """The cache file without ``column``, under a valid header (its own key unless ``key``)."""
    header, _ = _split(data)
    frame = pd.read_csv(io.BytesIO(data), skiprows=1, dtype=str).drop(columns=column)
    body = frame.to_csv(index=False, lineterminator="\n").encode()
    key = key or header.decode().split("key=")[1].split()[0]
    sha = hashlib.sha256(body).hexdigest()
    return f"# iislib-cache v1 rows={len(frame)} key={key} sha256={sha}\n".encode() + body


DAMAGE = {  # name: (new bytes from (file bytes, another cache file's bytes), words in the warning)
    "emptied": (lambda d, o: b"", "the file is empty"),
    "random_bytes": (lambda d, o: np.random.default_rng(0).bytes(400), "no verification header"),
    "truncated": (lambda d, o: d[: len(d) * 2 // 3], "SHA256"),
    "header_only": (lambda d, o: _split(d)[0] + _split(d)[1][0], "SHA256"),
    "rows_dropped": (lambda d, o: _split(d)[0] + b"".join(_split(d)[1][:-1]), "SHA256"),
    "rows_duplicated": (lambda d, o: d + _split(d)[1][-1], "SHA256"),
    "one_value_edited": (lambda d, o: _edit_one_value(d), "SHA256"),
    "key_not_its_own": (lambda d, o: o, "not its own"),
    "old_format_no_header": (lambda d, o: b"".join(_split(d)[1]), "older iislib"),
    "boundary_iou_dropped": (lambda d, o: _drop_column(d, "boundary_iou"), "are not"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_cache_file_is_reported_once_recomputed_and_replaced(
    kind, clean, tmp_path, monkeypatch
):
    ds, clean_cache, clean_table = clean
    cache = tmp_path / "cache"
    shutil.copytree(clean_cache, cache)
    target, donor = _entry(ds, cache, "img1"), _entry(ds, cache, "img2")
    damage, words = DAMAGE[kind]
    original = target.path.read_bytes()
    target.path.write_bytes(damage(original, donor.path.read_bytes()))
    assert target.path.read_bytes() != original

    calls = []
    real_job = ex.run_job
    monkeypatch.setattr(ex, "run_job", lambda *a: calls.append(a) or real_job(*a))
    with pytest.warns(CacheWarning) as record:
        table = evaluate(["random_walker"], ROBOTS, ds, cache_dir=cache, **KW)
    messages = [str(w.message) for w in record if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1, messages
    assert str(target.path) in messages[0] and words in messages[0], messages[0]
    # Only the damaged (model, robot, image, seed) was recomputed, and the table is the clean one.
    assert [(a[1], ds.names[a[3]]) for a in calls] == [(["rgto99"], "img1")]
    pd.testing.assert_frame_equal(
        table[SCORE_COLUMNS], clean_table[SCORE_COLUMNS], check_exact=True
    )
    # The file was rewritten and verifies; the next run reads everything back, silently.
    rewritten = ex.read_cached(target.path, key=target.key, rows=3)
    assert len(rewritten) == 3 and set(rewritten["image"]) == {"img1"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        again = evaluate(["random_walker"], ROBOTS, ds, cache_dir=cache, **KW)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(
        again[SCORE_COLUMNS], clean_table[SCORE_COLUMNS], check_exact=True
    )


def test_a_cache_written_before_the_boundary_iou_column_is_recomputed_whole(
    clean, tmp_path, monkeypatch
):
    """Files of the earlier layout (no boundary_iou column, the key without the score columns)
    are not read: every entry is recomputed, with no warning, and gets the column."""
    from iislib import __version__

    ds, clean_cache, clean_table = clean
    cache = tmp_path / "old"
    spec = ModelSpec("random_walker", "random_walker")
    for image in ds.names:
        for robot in ROBOTS:
            new = _entry(ds, clean_cache, image, robot)
            old_key = json.dumps([__version__, spec.key(), "direct", str(ds.folder.resolve()),
                                  ds.name, image, ds.content_key(image), ex.robot_key(robot), 0,
                                  3])  # fmt: skip
            digest = hashlib.sha256(old_key.encode()).hexdigest()
            path = cache / spec.label / robot / f"{image}__s0__{digest[:24]}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_drop_column(new.path.read_bytes(), "boundary_iou", key=digest))
            assert "boundary_iou" not in pd.read_csv(path, skiprows=1).columns
    old_files = {p: p.read_bytes() for p in cache.rglob("*.csv")}
    calls = []
    real_job = ex.run_job
    monkeypatch.setattr(ex, "run_job", lambda *a: calls.append(a) or real_job(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        table = evaluate(["random_walker"], ROBOTS, ds, cache_dir=cache, **KW)
    assert sorted(ds.names[a[3]] for a in calls) == sorted(ds.names)  # every image again
    assert all(sorted(a[1]) == sorted(ROBOTS) for a in calls)
    assert table["boundary_iou"].between(0, 1).all()
    pd.testing.assert_frame_equal(
        table[SCORE_COLUMNS], clean_table[SCORE_COLUMNS], check_exact=True
    )
    assert {p: p.read_bytes() for p in old_files} == old_files  # left as they were
    assert len(list(cache.rglob("*.csv"))) == 2 * len(old_files)


def test_cache_file_carries_rows_key_and_digest(clean):
    ds, cache, _ = clean
    e = _entry(ds, cache, "img0", "r02")
    data = e.path.read_bytes()
    header, lines = _split(data)
    body = b"".join(lines)
    assert header.decode() == (
        f"# iislib-cache v1 rows=3 key={e.key} sha256={hashlib.sha256(body).hexdigest()}\n"
    )
    assert e.path.name.endswith(f"__{e.key[:24]}.csv") and len(lines) == 1 + 3
    # pandas reads the file as a plain CSV when told to skip the header line.
    plain = pd.read_csv(e.path, skiprows=1)
    assert list(plain.columns) == list(COLUMNS) and list(plain["click"]) == [1, 2, 3]


def test_read_cached_checks_row_count_even_with_a_matching_digest(clean, tmp_path):
    ds, cache, _ = clean
    e = _entry(ds, cache, "img0", "r02")
    header, lines = _split(e.path.read_bytes())
    body = b"".join(lines)
    forged = tmp_path / "forged.csv"
    sha = hashlib.sha256(body).hexdigest()
    forged.write_bytes(f"# iislib-cache v1 rows=2 key={e.key} sha256={sha}\n".encode() + body)
    with pytest.raises(CacheError, match=r"3 rows with clicks \[1, 2, 3\], expected 1\.\.2"):
        ex.read_cached(forged)
    with pytest.raises(CacheError, match="header says 2 rows, the sweep needs 3"):
        ex.read_cached(forged, key=e.key, rows=3)
    assert len(ex.read_cached(e.path, key=e.key, rows=3)) == 3


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_byte_change_truncation_or_append_is_detected(clean, data):
    ds, cache, _ = clean
    e = _entry(ds, cache, "img2", "rgto99")
    good = e.path.read_bytes()
    kind = data.draw(st.sampled_from(["flip", "truncate", "append"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(good) - 1))
        x = data.draw(st.integers(1, 255))
        bad = good[:i] + bytes([good[i] ^ x]) + good[i + 1 :]
    elif kind == "truncate":
        bad = good[: data.draw(st.integers(0, len(good) - 1))]
    else:
        bad = good + data.draw(st.binary(min_size=1, max_size=20))
    path = cache.parent / "mutant.csv"
    path.write_bytes(bad)
    with pytest.raises(CacheError, match="mutant.csv"):
        ex.read_cached(path, key=e.key, rows=3)


def test_failed_cache_write_leaves_the_old_file_and_no_temporary(clean, tmp_path, monkeypatch):
    ds, clean_cache, clean_table = clean
    cache = tmp_path / "cache"
    shutil.copytree(clean_cache, cache)
    e = _entry(ds, cache, "img0")
    before = e.path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(ex.os, "replace", boom)
    frame = clean_table[(clean_table.robot == "rgto99") & (clean_table.image == "img0")]
    with pytest.raises(OSError, match="disk full"):
        ex._write_atomic(frame, e)
    assert e.path.read_bytes() == before
    assert sorted(p.name for p in e.path.parent.iterdir()) == sorted(
        p.name for p in (clean_cache / "random_walker" / "rgto99").iterdir()
    )
    with pytest.raises(ValueError, match="2 rows to cache, expected 3"):
        ex._write_atomic(frame.iloc[:2], e)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(dataset=lambda ds: ds.subset(0)), "has no images"),
        (dict(robots=[]), "no robots"),
        (dict(models=[]), "no models"),
        (dict(seeds=()), "no seeds"),
        (dict(robots=["r02", "r02"]), "robot given more than once: r02"),
        (dict(max_clicks=2.5), "max_clicks must be an int >= 1, got 2.5"),
        (dict(max_clicks="3"), "max_clicks must be an int >= 1, got '3'"),
        (dict(max_clicks=0), "max_clicks must be an int >= 1, got 0"),
        (dict(seeds=[0.5]), "seeds must be integers"),
        (dict(n_jobs=2, scheduler="tcp://127.0.0.1:1"), "not both"),
    ],
)
def test_empty_or_bad_sweep_fails_before_writing_anything(tiny_dataset, tmp_path, change, message):
    args = dict(models=["random_walker"], robots=ROBOTS, dataset=tiny_dataset, max_clicks=3)
    for k, v in change.items():
        args[k] = v(tiny_dataset) if callable(v) else v
    with pytest.raises(ValueError, match=message):
        evaluate(
            args.pop("models"), args.pop("robots"), args.pop("dataset"),
            cache_dir=tmp_path / "c", progress=False, **args,
        )  # fmt: skip
    assert not (tmp_path / "c").exists()


def test_cli_refuses_an_empty_sweep_before_writing(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["evaluate", "--dataset", str(tiny_dataset.folder), "--models", "random_walker",
               "--robots", ",", "--cache", str(tmp_path / "c"), "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 2 and "no robots to evaluate" in capsys.readouterr().err
    rc = main(["evaluate", "--dataset", str(tiny_dataset.folder), "--models", "random_walker",
               "--n-images", "-1", "--cache", str(tmp_path / "c"), "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 2 and "--n-images must be >= 0 (0: all images), got -1" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "c").exists()
