"""A SIGKILLed sweep leaves no worker process behind.

loky's workers (about 450 MB each with a model) never check their parent: before
``iislib.runtime.exit_with_parent``, the workers of a killed ``evaluate(..., n_jobs=2)`` went on
with their queued jobs and then waited joblib's 300 s idle timeout (all four children were
still alive 40 s after the kill). Here the sweep runs in a subprocess, is killed while its two
workers compute, and every process it started must be gone within seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from iislib import paths

psutil = pytest.importorskip("psutil")  # installed with ipykernel and distributed

GONE_WITHIN = 10.0  # seconds; the watchdog polls every second


def _alive(procs) -> list[int]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _wait_gone(procs, within: float) -> list[int]:
    """The pids of ``procs`` still alive after ``within`` seconds (none: returns at once)."""
    deadline = time.monotonic() + within
    while (left := _alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _kill_all(procs) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(paths.ROOT), MPLBACKEND="Agg")


def test_a_process_exits_soon_after_its_parent_is_killed() -> None:
    child = ("import os, time\nfrom iislib.runtime import exit_with_parent\n"
             "exit_with_parent(os.getppid(), interval=0.2)\ntime.sleep(600)\n")  # fmt: skip
    parent = subprocess.Popen(
        [sys.executable, "-c",
         f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {child!r}])\n"
         "time.sleep(600)\n"],
        env=_env(),
    )  # fmt: skip
    try:
        me = psutil.Process(parent.pid)
        deadline = time.monotonic() + 60
        while not (kids := me.children()):
            assert time.monotonic() < deadline, "the child did not start"
            time.sleep(0.1)
        time.sleep(1.5)  # its watchdog is running, and leaves it alone while the parent lives
        assert _alive(kids) == [kids[0].pid]
        parent.kill()
        parent.wait()
        assert _wait_gone(kids, GONE_WITHIN) == []
    finally:
        parent.kill()
        parent.wait()
        _kill_all(kids if "kids" in locals() else [])


def test_workers_of_a_killed_sweep_exit_within_seconds(tmp_path) -> None:
    from tests.conftest import write_folder_dataset

    folder = write_folder_dataset(tmp_path / "tiny")
    code = ("import sys\nfrom iislib.experiment.data import load_dataset\n"
            "from iislib.experiment.sweep import evaluate\n"
            "evaluate(['random_walker'], ['r01', 'r02'], load_dataset(sys.argv[1]),\n"
            "         max_clicks=20, seeds=range(1000), n_jobs=2, progress=False)\n")  # fmt: skip
    sweep = subprocess.Popen([sys.executable, "-c", code, str(folder)], env=_env())
    started = []
    try:
        me = psutil.Process(sweep.pid)
        deadline = time.monotonic() + 120
        while True:  # both loky workers are computing (and its resource trackers run)
            started = me.children(recursive=True)
            workers = [p for p in started if "LokyProcess" in " ".join(p.cmdline())]
            if len(workers) == 2:
                break
            assert sweep.poll() is None, "the sweep ended before its workers were seen"
            assert time.monotonic() < deadline, "no 2 loky workers within 120 s"
            time.sleep(0.2)
        time.sleep(2)
        assert sweep.poll() is None  # still sweeping: 3000 jobs
        assert len(_alive(workers)) == 2
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        left = _wait_gone(started, GONE_WITHIN)
        assert left == [], f"still alive {GONE_WITHIN:.0f} s after the sweep was killed: {left}"
    finally:
        sweep.kill()
        sweep.wait()
        _kill_all(started)


def _threads(_: int) -> tuple[int, list[str]]:
    import threading

    return os.getpid(), sorted(t.name for t in threading.enumerate())


def test_worker_pool_workers_run_the_watchdog() -> None:
    """``make figures`` (runner.compute) and the sweep share ``worker_pool``: its workers watch
    their parent, while this (the parent) runs no watchdog."""
    from joblib import Parallel, delayed

    from iislib.runtime import worker_pool

    with worker_pool(2):
        seen = dict(
            Parallel(return_as="generator_unordered")(delayed(_threads)(i) for i in range(6))
        )
    assert os.getpid() not in seen and seen
    for names in seen.values():
        assert "iislib-exit-with-parent" in names
