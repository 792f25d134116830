"""The sweep on a real Dask cluster: same table as local processes, nothing lost to a killed worker.

A ``distributed.LocalCluster`` of 2 worker processes (1 thread each, on 127.0.0.1) runs a small
sweep (3 synthetic images, 2 robots, 3 clicks of random_walker), and the runner's full-run plan
(``--datasets``) in smoke size on Berkeley, GrabCut and DAVIS. Skipped only when
``dask[distributed]`` is not installed (``pip install -e '.[dev]'`` installs it).
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402  (installed with distributed)

import iislib.experiment.sweep as ex  # noqa: E402
from iislib.apps.cli import main  # noqa: E402
from iislib.experiment.data import Dataset, load_dataset  # noqa: E402
from iislib.experiment.sweep import COLUMNS, evaluate  # noqa: E402

from .conftest import write_folder_dataset  # noqa: E402

ROBOTS = ["r02", "rgto99"]
KW = dict(max_clicks=3, settings="direct", progress=False)
SCORE_COLUMNS = [c for c in COLUMNS if not c.endswith("seconds")]  # all but the timings


@pytest.fixture(scope="module")
def cluster():
    # One retry: a task whose worker dies once is rerun; dying twice fails it (fast tests).
    # Saturation 1.0: a worker holds only the task it runs, so a death counts against no other.
    config = {"distributed.scheduler.allowed-failures": 1,
              "distributed.scheduler.worker-saturation": 1.0}  # fmt: skip
    with dask.config.set(config):
        cl = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None)  # fmt: skip
    yield cl
    cl.close()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The dataset and its table computed by local worker processes (joblib/loky)."""
    ds = load_dataset(write_folder_dataset(tmp_path_factory.mktemp("dask") / "tiny"))
    return ds, evaluate(["random_walker"], ROBOTS, ds, n_jobs=2, **KW)


def _killing(ds: Dataset, image: str, once: Path | None = None) -> Dataset:
    """``ds`` whose worker process is SIGKILLed when it loads ``image`` (only the first time
    when ``once``, a marker file, is given). Same folder and name, hence the same cache keys.
    """
    caller = os.getpid()

    class Killing(Dataset):
        def __getitem__(self, i):
            if os.getpid() != caller and self.names[i] == image:
                if once is None or not once.exists():
                    if once is not None:
                        once.touch()
                    os.kill(os.getpid(), signal.SIGKILL)
            return super().__getitem__(i)

    out = copy.copy(ds)
    out.__class__ = Killing
    return out


def _files(cache: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in cache.rglob("*.csv")}


def test_cluster_table_equals_local_and_its_cache_is_read_anywhere(
    cluster, sweep, tmp_path, monkeypatch
):
    ds, local = sweep
    cache = tmp_path / "cache"
    by_address = evaluate(["random_walker"], ROBOTS, ds, scheduler=cluster.scheduler_address,
                          cache_dir=cache, **KW)  # fmt: skip
    pd.testing.assert_frame_equal(by_address[SCORE_COLUMNS], local[SCORE_COLUMNS], check_exact=True)
    files = _files(cache)
    assert len(files) == 3 * 2
    for p in files:  # the workers wrote verified cache files
        assert len(ex.read_cached(p, rows=3)) == 3

    # A rerun here (no cluster) reads them all, computes nothing, gives the same table.
    calls = []
    real_job = ex.run_job
    monkeypatch.setattr(ex, "run_job", lambda *a: calls.append(a) or real_job(*a))
    here = evaluate(["random_walker"], ROBOTS, ds, cache_dir=cache, **KW)
    assert calls == []
    pd.testing.assert_frame_equal(here[SCORE_COLUMNS], local[SCORE_COLUMNS], check_exact=True)

    # A Client object works too (no cache: every job runs on the cluster).
    with distributed.Client(cluster) as client:
        by_client = evaluate(["random_walker"], ROBOTS, ds, scheduler=client, **KW)
    pd.testing.assert_frame_equal(by_client[SCORE_COLUMNS], local[SCORE_COLUMNS], check_exact=True)


def test_worker_killed_mid_run_is_rescheduled_and_nothing_is_lost(cluster, sweep, tmp_path):
    ds, local = sweep
    marker = tmp_path / "killed-once"
    table = evaluate(["random_walker"], ROBOTS, _killing(ds, "img1", once=marker),
                     scheduler=cluster.scheduler_address, cache_dir=tmp_path / "c", **KW)  # fmt: skip
    assert marker.exists()  # a worker really died while running img1's job
    pd.testing.assert_frame_equal(table[SCORE_COLUMNS], local[SCORE_COLUMNS], check_exact=True)
    assert len(_files(tmp_path / "c")) == 3 * 2


def test_job_whose_workers_keep_dying_fails_alone_and_a_rerun_completes(cluster, sweep, tmp_path):
    ds, local = sweep
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match=r"1 of 3 jobs failed.*image img1.*KilledWorker"):
        evaluate(["random_walker"], ROBOTS, _killing(ds, "img1"),
                 scheduler=cluster.scheduler_address, cache_dir=cache, **KW)  # fmt: skip
    before = _files(cache)
    assert sorted({p.name.split("__")[0] for p in before}) == ["img0", "img2"]
    assert len(before) == 2 * 2
    assert not list(cache.rglob("*.tmp"))  # nothing half-written

    rerun = evaluate(["random_walker"], ROBOTS, ds, scheduler=cluster.scheduler_address,
                     cache_dir=cache, **KW)  # fmt: skip
    pd.testing.assert_frame_equal(rerun[SCORE_COLUMNS], local[SCORE_COLUMNS], check_exact=True)
    after = _files(cache)
    assert {p: after[p] for p in before} == before  # completed results reused, not rewritten
    assert sorted(p.name.split("__")[0] for p in set(after) - set(before)) == ["img1", "img1"]


def test_cli_scheduler_option(cluster, sweep, tmp_path, capsys):
    ds, local = sweep
    rc = main(["evaluate", "--dataset", str(ds.folder), "--models", "random_walker",
               "--robots", ",".join(ROBOTS), "--max-clicks", "3", "--settings", "direct",
               "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "r"),
               "--figures", str(tmp_path / "f"), "--no-cache", "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    table = ex.read_table(tmp_path / "r" / f"{ds.name}_direct.csv")
    pd.testing.assert_frame_equal(table[SCORE_COLUMNS], local[SCORE_COLUMNS], check_exact=True)

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        rc = main(["evaluate", "--dataset", str(ds.folder), "--models", "random_walker",
                   "--robots", "r02", "--scheduler", "tcp://127.0.0.1:9", "--no-cache",
                   "--quiet", "--out", str(tmp_path / "r2")])  # fmt: skip
    assert (
        rc == 2 and "cannot reach the Dask scheduler 'tcp://127.0.0.1:9'" in capsys.readouterr().err
    )
    assert not (tmp_path / "r2").exists()


def test_bad_scheduler_value_is_refused(sweep):
    with pytest.raises(ValueError, match="scheduler must be an address"):
        evaluate(["random_walker"], ROBOTS, sweep[0], scheduler=8786, **KW)


def test_runner_computes_a_multi_dataset_plan_on_the_cluster(cluster, data_root, tmp_path,
                                                             monkeypatch):  # fmt: skip
    """The full run's plan (``--datasets``), smoke-sized, computed by ``runner.compute`` on the
    2-worker cluster: every trajectory lands in the cache, the notebooks' sweeps then read it
    all, and the table is the one a local run computes."""
    from iislib import paths
    from iislib.apps import paper, runner

    monkeypatch.setenv("IISLIB_DATA", str(data_root.resolve()))
    monkeypatch.delenv("CI", raising=False)
    params = {"models": "random_walker", "robots": "r02,rgto99"}
    reqs = runner.figure_plan(smoke=True, parameters=params, only=["03"],
                              datasets=["berkeley", "grabcut", "davis"])  # fmt: skip
    assert [r.cfg.dataset_name for r in reqs] == ["berkeley", "grabcut", "davis"]
    cache = tmp_path / "cache"
    plan = paper.make_plan(reqs, cache=cache)
    assert len(plan.jobs) == 3 * paper.SMOKE_IMAGES
    report = runner.compute(plan, progress=False, scheduler=cluster.scheduler_address)
    assert report.jobs == len(plan.jobs) and report.busy["random_walker"] > 0
    assert not paper.make_plan(reqs, cache=cache).jobs
    local = [evaluate(["random_walker"], ["r02", "rgto99"], req.data,
                      max_clicks=req.cfg.max_clicks, settings=req.cfg.settings, progress=False)
             for req in reqs]  # fmt: skip
    monkeypatch.setattr(paths, "CACHE", cache)
    calls = []
    real_job = ex.run_job
    monkeypatch.setattr(ex, "run_job", lambda *a: calls.append(a) or real_job(*a))
    for req, want in zip(reqs, local, strict=True):
        table = req.run(progress=False)  # reads the cluster's cache files, computes nothing
        pd.testing.assert_frame_equal(table[SCORE_COLUMNS], want[SCORE_COLUMNS], check_exact=True)
    assert calls == []


# ---- addresses where no scheduler answers: a line naming the address, within the timeout ----


@pytest.fixture(scope="module")
def silent_address() -> Iterator[str]:
    """A socket that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):  # closed at teardown
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


@pytest.fixture(scope="module")
def http_address() -> Iterator[str]:
    """A small HTTP server (it answers a Dask handshake with an HTTP error page)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _cli(tmp_path: Path, ds: Dataset, *options: str, env: dict | None = None):
    """``python -m iislib evaluate`` on ``ds`` with ``options``: (process result, wall seconds).
    A subprocess: the old code hung for good, and the exit of the interpreter is timed too."""
    cmd = [sys.executable, "-m", "iislib", "evaluate", "--dataset", str(ds.folder),
           "--models", "random_walker", "--robots", "r02", "--max-clicks", "2", "--no-cache",
           "--out", str(tmp_path / "r"), "--figures", str(tmp_path / "f"), *options]  # fmt: skip
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          env=dict(os.environ, **(env or {})))  # fmt: skip
    return done, time.monotonic() - t0


@pytest.mark.parametrize("server", ["silent_address", "http_address"])
def test_cli_fails_within_the_timeout_naming_an_address_where_no_scheduler_answers(
    server, sweep, tmp_path, request
):
    address = request.getfixturevalue(server)
    done, took = _cli(tmp_path, sweep[0], "--scheduler", address, "--scheduler-timeout", "2")
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert err[0] == f"connecting to the Dask scheduler {address!r} (waiting at most 2 s)"
    assert err[-1] == (
        f"iislib evaluate: error: cannot reach the Dask scheduler {address!r}: nothing answered "
        "as a Dask scheduler within 2 s (a scheduler's address looks like tcp://host:8786)"
    )
    assert "Traceback" not in done.stderr
    assert took < 40  # the interpreter's start-up and imports, plus the 2 s
    assert not (tmp_path / "r").exists()


def test_cli_bad_address_fails_at_once_and_exits_promptly(sweep, tmp_path):
    """``--scheduler nope`` with the default 30 s timeout: the error at once, and no 60 s wait at
    exit for a half-started Client to close."""
    done, took = _cli(tmp_path, sweep[0], "--scheduler", "nope", "--quiet")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "iislib evaluate: error: cannot reach the Dask scheduler 'nope': missing port number in "
        "address 'nope'"
    )
    assert took < 20


def test_evaluate_gives_up_on_a_silent_address_after_dasks_connect_timeout(sweep, silent_address):
    """The API, with the timeout from Dask's configuration (here its environment variable)."""
    code = (
        "import sys\nfrom iislib.experiment.data import load_dataset\n"
        "from iislib.experiment.sweep import evaluate\n"
        "try:\n"
        f"    evaluate(['random_walker'], ['r02'], load_dataset({str(sweep[0].folder)!r}),\n"
        f"             max_clicks=2, scheduler={silent_address!r}, progress=False)\n"
        "except ValueError as e:\n    print(e)\n    sys.exit(3)\n"
    )  # fmt: skip
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, env=dict(os.environ,
                                                DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="2s"))  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stdout.strip() == (
        f"cannot reach the Dask scheduler {silent_address!r}: nothing answered as a Dask "
        "scheduler within 2 s (a scheduler's address looks like tcp://host:8786)"
    )
    assert time.monotonic() - t0 < 40


def test_a_worker_address_is_not_taken_for_a_scheduler(cluster, sweep):
    worker = next(iter(cluster.scheduler_info["workers"]))
    with pytest.raises(ValueError, match=f"'{worker}': it answered as a Worker, not a Dask sched"):
        evaluate(["random_walker"], ROBOTS, sweep[0], scheduler=worker, **KW)


# ---- the official weights and a user's entry-point model on the workers ----


def test_official_and_entry_point_models_on_dask_equal_local(official_files, tmp_path,
                                                             monkeypatch):  # fmt: skip
    """As a user runs them on a cluster: the weights folder and the data on a filesystem every
    worker sees (here: this machine's), ``IISLIB_WEIGHTS`` set where ``evaluate`` is called
    (a worker's own folder is not read: here it is empty), and the user's package installed
    in the workers' environment (here: on the ``PYTHONPATH`` they start with). The table
    equals the local one; a package the workers lack is an error naming the model."""
    from tests.test_user_models import MYPKG, install

    site = tmp_path / "site"
    site.mkdir()
    install(site, "mypkg", {"mypkg": MYPKG}, "[iislib.models]\nmymodel = mypkg:factory\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("IISLIB_WEIGHTS", str(official_files))
    ds = load_dataset(write_folder_dataset(tmp_path / "tiny", n=2))
    models, kw = ["ritm-cocolvis-h18s", "mymodel"], dict(KW, max_clicks=2)
    local = evaluate(models, ROBOTS, ds, n_jobs=1, **kw)
    assert set(local["model"]) == set(models) and len(local) == 2 * 2 * 2 * 2
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=":0", env={"IISLIB_WEIGHTS": str(tmp_path / "no-weights-here")},
    )  # fmt: skip
    with cluster, distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        where = client.run(lambda: os.environ["IISLIB_WEIGHTS"])
        assert os.getpid() not in pids.values() and len(pids) == 2
        assert set(where.values()) == {str(tmp_path / "no-weights-here")}
        by_client = evaluate(models, ROBOTS, ds, scheduler=client, **kw)
        by_address = evaluate(models, ROBOTS, ds, scheduler=cluster.scheduler_address,
                              cache_dir=tmp_path / "cache", **kw)  # fmt: skip
        for table in (by_client, by_address):
            pd.testing.assert_frame_equal(table[SCORE_COLUMNS], local[SCORE_COLUMNS],
                                          check_exact=True)  # fmt: skip
        # a package installed here after the workers started is not on theirs
        later = tmp_path / "later"
        later.mkdir()
        install(later, "laterpkg", {"laterpkg": MYPKG},
                "[iislib.models]\nlatermodel = laterpkg:factory\n")  # fmt: skip
        monkeypatch.syspath_prepend(str(later))
        assert len(evaluate(["latermodel"], ["r02"], ds, max_clicks=1, progress=False)) == 2
        with pytest.raises(RuntimeError, match=r"ValueError: unknown model 'latermodel'.* \(the "
                           r"workers build 'latermodel' by name in their own environment: "
                           r"install its package on every worker"):  # fmt: skip
            evaluate(["latermodel"], ["r02"], ds, max_clicks=1, progress=False, scheduler=client)
    # and a weights file a worker does not see at the caller's path
    (spec,) = ex.as_specs(["ritm-cocolvis-h18s"])
    assert "a filesystem every worker sees" in ex._worker_hint(spec, FileNotFoundError("x"))
    assert ex._worker_hint(spec, ValueError("x")) == ""
