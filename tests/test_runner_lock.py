"""Issue 26, "also seen": two runs of the notebook runner on one cache compute each job once
(``runner.cache_lock``), a killed run never blocks the next, and the kernels run encrypted
(no "running over TCP without encryption" warning per notebook)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from iislib import paths
from iislib.apps import paper, runner

ROOT = Path(__file__).resolve().parent.parent

_HOLDER = """
import sys, time
from pathlib import Path
from iislib.apps.runner import cache_lock
cache, flag = Path(sys.argv[1]), Path(sys.argv[2])
with cache_lock(cache):
    flag.write_text(str(time.time()))
    time.sleep(float(sys.argv[3]))
    (flag.parent / "released").write_text(str(time.time()))
"""


def _holder(cache: Path, tmp: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(cache), str(tmp / "held"),
                             str(seconds)], env=env)  # fmt: skip
    for _ in range(300):
        if (tmp / "held").exists():
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the holder never took the lock")


def test_a_second_run_waits_for_the_first(tmp_path, capsys):
    cache = tmp_path / "cache"
    proc = _holder(cache, tmp_path, 1.5)
    with runner.cache_lock(cache):
        got = time.time()
    proc.wait(timeout=30)
    assert got >= float((tmp_path / "released").read_text())
    out = capsys.readouterr().out
    assert f"the run of pid {proc.pid} on " in out and "waiting for it to finish" in out


def test_a_killed_run_releases_its_lock(tmp_path):
    cache = tmp_path / "cache"
    proc = _holder(cache, tmp_path, 60)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    t0 = time.perf_counter()
    with runner.cache_lock(cache):
        pass
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "released").exists()


def test_two_runs_at_once_compute_each_job_once(tiny_dataset, tmp_path, monkeypatch):
    """Two ``run_all`` at once on one cache (as two ``make figures`` in one checkout): the
    second waits for the first's sweep pass, plans again and finds nothing missing."""
    monkeypatch.setattr(paths, "CACHE", tmp_path / "cache")
    cfg = paper.config(str(tiny_dataset.folder), "random_walker", "r01,r02", n_images=3,
                       max_clicks=2, settings="direct")  # fmt: skip
    monkeypatch.setattr(runner, "figure_plan", lambda *a, **k: [paper.request(cfg)])
    monkeypatch.setattr(runner, "execute", lambda src, out, params, **kw: out / src.name)
    computed, real = [], runner.compute

    def slow_compute(plan, *a, **k):
        computed.append(len(plan.jobs))
        time.sleep(1.0)  # long enough for the other run to reach the lock
        return real(plan, *a, **k)

    monkeypatch.setattr(runner, "compute", slow_compute)
    reports: list = []
    runs = [threading.Thread(target=lambda: reports.append(
        runner.run_all(smoke=True, only=["03"], out_dir=tmp_path / "nb", progress=False)))
        for _ in range(2)]  # fmt: skip
    for t in runs:
        t.start()
        time.sleep(0.2)
    for t in runs:
        t.join(timeout=120)
    assert len(reports) == 2
    assert computed == [3]  # three (model, image, seed) jobs, computed by one run only
    assert sorted(len(r.plan.jobs) for r in reports) == [0, 3]


@pytest.mark.parametrize("encrypted", [False, True])
def test_kernel_options_silence_the_unencrypted_tcp_warning(tmp_path, encrypted):
    """The kernel's warning, printed once per notebook, is gone with the runner's kernel
    options (CurveZMQ transport encryption); the notebook still runs."""
    import nbformat

    options = runner.kernel_options()
    if encrypted and not options:
        pytest.skip("this pyzmq / jupyter_client cannot encrypt the kernel's transport")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    script = (
        "import sys, papermill as pm\n"
        "from iislib.apps.runner import kernel_options\n"
        f"kw = kernel_options() if {encrypted} else {{}}\n"
        "pm.execute_notebook(sys.argv[1], sys.argv[2], kernel_name='python3', "
        "progress_bar=False, **kw)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script, str(src), str(out)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ("without encryption" in done.stderr) != encrypted
    assert nbformat.read(out, 4).cells[0].outputs[0]["text"] == "42\n"
