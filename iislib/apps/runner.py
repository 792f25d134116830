"""The notebook runner behind ``make figures`` and ``make notebooks``.

    python -m iislib.apps.runner              # make figures: build/notebooks/full/*.ipynb, figures/
    python -m iislib.apps.runner --smoke      # tiny run: build/notebooks/smoke/*.ipynb, figures/smoke/
    python -m iislib.apps.runner --only 03 -p n_jobs=2 -p max_clicks=10
    python -m iislib.apps.runner --datasets all --plan      # the full run's size and estimated time
    python -m iislib.apps.runner --datasets all --scheduler tcp://HOST:8786   # on a Dask cluster

``--datasets`` (``make figures-full``, or ``make figures DATASETS=...``) runs notebooks 03 and 04
once per dataset (``PER_DATASET``) on all its images, with the findings of 04 on every one of
those datasets and pooled; their executed notebooks go to ``<out>/<dataset>/`` and their figures
to ``figures/<dataset>/`` (Berkeley's to ``figures/``). ``--scheduler`` computes the plan's jobs
on a Dask cluster instead of local processes (the notebooks then only read the cache).

Before the notebooks, it prints the plan (``figure_plan``: every sweep the notebooks will
request, from the same ``iislib.apps.paper.*_sweeps`` functions they call; ``make_plan``: the
jobs missing from the cache per model, with an estimate from ``SECONDS_PER_CLICK``) and computes
them all in one pass with one progress bar (``compute``), so the notebooks only read the cache.
A notebook opened on its own prints the same plan for its sweeps before it computes anything
(``announce``; one line when they are cached).
Each ``notebooks/NN_name.py`` (jupytext py:percent) is converted to ``build/notebooks/src/`` and
executed by papermill (kernel python3, working directory ``notebooks/``) with the parameters
passed through. Smoke runs write their figures to ``figures/smoke/`` so that they never replace
the full figures.
"""

from __future__ import annotations

import argparse
import ast
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from iislib import paths
from iislib.apps.paper import (
    NOTEBOOK_SWEEPS,
    Plan,
    PlannedJob,
    SweepRequest,
    make_plan,
    notebook_config,
)
from iislib.atomic import temporary_name, write_with
from iislib.experiment.data import DATASET_NAMES
from iislib.experiment.data import resolve_datasets as data_resolve_datasets
from iislib.experiment.sweep import absolute_paths, run_job, run_on_dask, worker_count
from iislib.runtime import worker_pool

# ----------------------------------------------------------------------------------------------
# the plan: every sweep of the notebooks, what is missing from the cache, what it will cost

SECONDS_PER_CLICK: dict[str, float] = {
    "random_walker": 0.020,
    "ritm-compact": 0.0195,
    "gto99-compact": 0.0428,
    "ritm-compact-gto99proc": 0.0195,
    "gto99-compact-ritmproc": 0.0428,
    # The official models (random weights of their architecture: the speed does not depend on
    # them): the process CPU time per planned click of `python benchmarks/bench_official.py
    # --clicks 2` (one thread, 1 Berkeley image x 7 robots x 2 clicks) on an AMD EPYC on
    # 2026-12-07, a machine shared by several jobs (load average ~10 on 2 cores, wall times
    # 2-5x these), so these are estimates of the unshared cost, to the same 2x as the rest.
    "ritm-sbd-h18": 0.077,
    "ritm-cocolvis-h18s": 0.043,
    "ritm-cocolvis-h18": 0.077,
    "ritm-cocolvis-h32": 0.153,
    "gto99-synthft": 0.52,
}
"""Worker-seconds per planned click (one trajectory click, ``ipol`` settings at 224x224, the seven
robots in lockstep, 2 workers of 1 thread on 2 cores): the plan's time estimates. They are the
``s/click`` column of ``python benchmarks/bench_sweep.py --images 10 --jobs 2`` (mean of five
runs; ``--images 100`` is the full Berkeley grid) on ``COSTS_MEASURED_ON``; refresh them from its
output on a quiet machine. The cross-trained controls share their family's network and take its
value. Models not listed are estimated as unknown. The project's machines differ by up to 2x:
three fresh-clone passes of 2026-12-02 on an AMD EPYC with AVX-512 ran at about 0.55x these
(ritm family 0.011-0.012, gto99 family 0.020-0.023, random_walker 0.014-0.015), and the EPYC without
AVX-512 of 2026-11-26 at about 1.2x. So the plan's estimate is the order of magnitude, and
``compute``'s progress bar rescales these costs to the speed the pass shows (``time_left``)."""
COSTS_MEASURED_ON = "an Intel Xeon with AVX-512, 2026-12-01"

ROBOT_COST_FACTOR: dict[str, float] = {"rbest": 23.0, "rworst": 23.0}
"""Cost of one click of a robot relative to a click of the seven robots (1 for robots not
listed). An envelope robot predicts N + 7 = 23 candidates per click, where a click of the seven
costs about one prediction (a share of the batch of 7), and batching 23 gains little on a CPU:
``python benchmarks/bench_sweep.py --models ritm-compact,gto99-compact,random_walker --robots
envelope --images 2 --compare`` (2 jobs) measured ratios of 25.2, 15.5 and 22.2 on
2026-12-07, on a 2-core machine shared with other jobs (load average 10-16), so 23 = N + 7
(docs/decisions.md, "The envelope robots")."""

SETTINGS_FACTOR: dict[str, float] = {
    # `python benchmarks/bench_official.py --clicks 2 --settings ritm --names ritm-sbd-h18`
    # (0.46 s) over the same without --settings (0.077 s), and `--settings gto99 --names
    # gto99-synthft` (2.2 s) over 0.52 s: process CPU time on the AMD EPYC of 2026-12-07.
    "ritm": 0.46 / 0.077,
    "gto99": 2.2 / 0.52,
}
"""How many times a planned click under these settings costs what it costs under ``ipol``
(``SECONDS_PER_CLICK``'s unit): each paper's own protocol runs the network at the image's full
resolution (Berkeley: 481x321, about 3x the pixels of 224x224; ``ritm`` adds its zoom-in and
the flipped pass), measured on the paper's model of that protocol. Settings not listed
(``ipol``; ``direct``, not measured) count at the ``ipol`` cost (docs/decisions.md, "The plan
prices a click by its settings")."""


def weighted_clicks(job: PlannedJob) -> float:
    """A job's planned clicks in the unit of ``SECONDS_PER_CLICK``: each robot's clicks times
    its ``ROBOT_COST_FACTOR``, times the ``SETTINGS_FACTOR`` of the job's settings."""
    robots = sum(ROBOT_COST_FACTOR.get(r, 1.0) for r in job.robots)
    return job.max_clicks * robots * SETTINGS_FACTOR.get(job.settings.name, 1.0)


def cost_clicks(plan: Plan) -> dict[str, float]:
    """Per model, the weighted clicks (``weighted_clicks``) of its missing jobs."""
    out: dict[str, float] = {}
    for job in plan.jobs:
        out[job.model] = out.get(job.model, 0.0) + weighted_clicks(job)
    return out


def notebook_parameters(src: Path) -> dict[str, Any]:
    """The default parameters of a notebook: the literal assignments of its 'parameters' cell."""
    import jupytext

    cells = [c for c in jupytext.read(src).cells
             if "parameters" in c.get("metadata", {}).get("tags", [])]  # fmt: skip
    if len(cells) != 1:
        raise ValueError(f"{src}: expected one cell tagged 'parameters', found {len(cells)}")
    out = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name):
            out[target.id] = ast.literal_eval(value)
    return out


PER_DATASET: tuple[str, ...] = ("03", "04")
"""The notebooks a multi-dataset run (``--datasets``) executes once per dataset."""


@dataclass(frozen=True)
class NotebookRun:
    """One execution of a notebook: ``src`` with ``parameters`` (over its defaults, before the
    smoke switch), written to the output folder's ``folder`` ("" or a dataset's name)."""

    src: Path
    parameters: dict[str, Any]
    folder: str = ""


def resolve_datasets(datasets: str | Sequence[str] | None) -> list[str] | None:
    """``data.resolve_datasets`` (``"all"``, a comma list or a sequence of names), or None (no
    multi-dataset run)."""
    return None if datasets is None else data_resolve_datasets(datasets)


def notebook_runs(
    parameters: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
) -> list[NotebookRun]:
    """The notebooks to execute, in order: each of ``notebook_sources(only)`` once with
    ``parameters``; with ``datasets``, those of ``PER_DATASET`` once per dataset instead, on all
    its images (``n_images=0``) and with 04's findings on every one of ``datasets`` (and
    pooled), unless ``parameters`` says otherwise."""
    params = dict(parameters or {})
    if datasets and "dataset" in params:
        raise ValueError("give the datasets of a multi-dataset run (--datasets) or one dataset "
                         "(-p dataset=...), not both")  # fmt: skip
    runs = []
    for src in notebook_sources(only):
        if datasets and src.stem[:2] in PER_DATASET:
            full = {"n_images": 0, "findings_datasets": list(datasets), **params}
            runs += [NotebookRun(src, {**full, "dataset": ds}, ds) for ds in datasets]
        else:
            runs.append(NotebookRun(src, params))
    return runs


def figure_plan(
    smoke: bool = False,
    parameters: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
) -> list[SweepRequest]:
    """Every sweep the notebooks (``only``: those prefixes) request when run with ``parameters``
    (over each notebook's defaults) and ``smoke``, in notebook order; ``datasets``: the
    multi-dataset run of ``notebook_runs``.

    Built by the functions the notebooks call (``NOTEBOOK_SWEEPS``) on the configuration each
    notebook builds, so it is what they will ask ``evaluate`` for.
    """
    requests: list[SweepRequest] = []
    for run in notebook_runs(parameters, only, datasets):
        sweeps_of = NOTEBOOK_SWEEPS.get(run.src.stem[:2])
        if sweeps_of is None:
            continue
        p = {**notebook_parameters(run.src), **run.parameters}
        p["smoke"] = bool(p.get("smoke")) or smoke
        cfg = notebook_config(p)  # what the notebook's own first cell builds
        requests += [r for r in sweeps_of(cfg, p).values() if r is not None]
    return requests


def estimate_seconds(
    clicks: Mapping[str, int], workers: int, costs: Mapping[str, float] | None = None
) -> dict[str, float | None]:
    """Estimated wall seconds per model: planned clicks x worker-seconds per click (``costs``,
    default ``SECONDS_PER_CLICK``) / ``workers``; None for a model without a measured cost."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    costs = SECONDS_PER_CLICK if costs is None else costs
    return {m: (n * costs[m] / workers if m in costs else None) for m, n in clicks.items()}


def time_left(elapsed: float, done: float, total: float) -> float | None:
    """Wall seconds left in a pass: the estimated worker-seconds still to do (``total - done``,
    from the plan's costs) at the speed the pass has shown so far (``elapsed`` wall seconds for
    ``done`` estimated worker-seconds), so that the estimate adapts to the machine and to the
    workers' sharing of it. None until some estimated work is done."""
    if done <= 0:
        return None
    return max(0.0, total - done) * elapsed / done


def _workers(n_jobs: int) -> int:
    """Processes that share the sweep (``evaluate``'s rule), at most one per core."""

    return max(1, min(worker_count(n_jobs), os.cpu_count() or 1))


def plan_jobs(plan: Plan) -> int:
    """The worker processes a plan's sweeps ask for: the most any request's ``n_jobs`` gives on
    this machine (joblib's convention, -1: one per core, the notebooks' default)."""
    return max((_workers(r.cfg.n_jobs) for r in plan.requests), default=1)


def format_plan(plan: Plan, n_jobs: int, costs: Mapping[str, float] | None = None) -> str:
    """The plan as text: each request, then per model the missing jobs, trajectories, clicks
    and estimated minutes with ``n_jobs`` workers."""
    # a sweep that several notebook runs request (04's findings in a multi-dataset run) once
    sweeps = list(dict.fromkeys(str(r) for r in plan.requests))
    lines = [f"[notebooks] plan: {len(sweeps)} sweep(s), {len(plan.entries)} "
             f"trajectories, cache {plan.cache}"]  # fmt: skip
    lines += [f"  {r}" for r in sweeps]
    if not plan.jobs:
        lines.append("  nothing to compute: every trajectory is cached")
        return "\n".join(lines)
    table = plan.by_model()
    workers = _workers(n_jobs)
    est = estimate_seconds(cost_clicks(plan), workers, costs)
    lines.append(f"  missing, computed by {workers} worker(s):")
    lines.append(f"  {'model':24s} {'jobs':>6s} {'traj.':>7s} {'clicks':>8s} {'est. min':>9s}")
    for model, row in table.iterrows():
        e = est[model]
        lines.append(f"  {model:24s} {row.jobs:6d} {row.trajectories:7d} {row.clicks:8d} "
                     f"{'unknown' if e is None else f'{e / 60:.1f}':>9s}")  # fmt: skip
    known = sum(e for e in est.values() if e is not None)
    unknown = [m for m, e in est.items() if e is None]
    total = f"{known / 60:.1f}" + (f" + unknown ({', '.join(unknown)})" if unknown else "")
    lines.append(f"  {'total':24s} {int(table.jobs.sum()):6d} {int(table.trajectories.sum()):7d} "
                 f"{int(table.clicks.sum()):8d} {total:>9s}")  # fmt: skip
    lines.append(f"  (per-click costs measured on {COSTS_MEASURED_ON}; machines differ by up to "
                 "2x: the progress bar's 'left' rescales them to this one)")  # fmt: skip
    return "\n".join(lines)


def format_announcement(plan: Plan, n_jobs: int, costs: Mapping[str, float] | None = None) -> str:
    """What a notebook prints before its sweeps (``announce``): one line when every trajectory
    of ``plan`` is cached; else the plan ``make figures`` prints (``format_plan``), what it will
    cost here with ``n_jobs`` (joblib's convention), and that ``make figures`` computes every
    notebook's sweeps in one pass on every core instead."""
    cache = plan.cache
    where = cache.relative_to(paths.ROOT) if cache.is_relative_to(paths.ROOT) else cache
    if not plan.jobs:
        return (f"[plan] all {len(plan.entries)} trajectories these sweeps read are cached in "
                f"{where}: nothing to compute")  # fmt: skip
    workers, cores = _workers(n_jobs), os.cpu_count() or 1
    est = estimate_seconds(cost_clicks(plan), workers, costs)
    known = sum(e for e in est.values() if e is not None)
    unknown = [m for m, e in est.items() if e is None]
    eta = f"about {known / 60:.0f} min" if known >= 60 else f"about {known:.0f} s"
    eta += f" (+ {', '.join(unknown)}: no measured cost)" if unknown else ""
    return "\n".join([
        format_plan(plan, n_jobs, costs),
        f"[plan] {plan.missing_trajectories} of {len(plan.entries)} trajectories are not in the "
        f"cache ({where}). A notebook computes those it reads when it runs, before its figures: "
        f"{eta} for these, with {workers} worker(s) on this machine's {cores} core(s) "
        f"(n_jobs={n_jobs}; -1: one per core).",
        "[plan] `make figures` instead computes the sweeps of every notebook in one pass on "
        "every core, then runs the notebooks, which only read the cache "
        "(`python -m iislib.apps.runner --plan` prints its plan). A stopped sweep keeps every "
        "finished trajectory: a rerun computes only the rest.",
    ])  # fmt: skip


def announce(
    requests: Mapping[str, SweepRequest | None] | Iterable[SweepRequest | None],
    n_jobs: int | None = None,
) -> Plan:
    """Print what a notebook's sweeps still need, before it computes anything
    (``format_announcement``): one line when all is cached, else the plan and its estimate.

    ``requests``: the notebook's sweeps, as its ``paper.*_sweeps`` function returns them (a
    mapping or a sequence; None entries, skipped sweeps, are left out). ``n_jobs``: default
    the requests' own (the notebook's parameter). Returns the plan (``paper.make_plan``).
    """
    items = requests.values() if isinstance(requests, Mapping) else requests
    plan = make_plan([r for r in items if r is not None])
    if n_jobs is None:  # the notebook's parameter, as its sweeps will pass it to evaluate
        n_jobs = max((r.cfg.n_jobs for r in plan.requests), key=_workers, default=1)
    print(format_announcement(plan, n_jobs), flush=True)
    return plan


@dataclass
class ComputeReport:
    """What ``compute`` did: wall seconds of the pass, jobs, workers, and per model the seconds
    its jobs ran in the workers (``busy``)."""

    wall: float
    jobs: int
    workers: int
    busy: dict[str, float]

    def model_wall(self) -> dict[str, float]:
        """The pass's wall time split among the models in proportion to their busy seconds."""
        total = sum(self.busy.values())
        return {m: self.wall * s / total if total else 0.0 for m, s in self.busy.items()}


def _timed_job(*args: Any) -> tuple[str, float]:
    """``experiment.run_job(*args)`` (which writes the cache) returning (model label, seconds)
    only: the frames are read back from the cache by the notebooks, not sent through the pipe
    (or the cluster)."""

    t0 = time.perf_counter()
    run_job(*args)
    return args[0].label, time.perf_counter() - t0


def _indexed(index: int, *args: Any) -> tuple[int, str, float]:
    return (index, *_timed_job(*args))


def compute(
    plan: Plan, n_jobs: int = 1, progress: bool = True, scheduler: Any = None
) -> ComputeReport:
    """Compute every missing job of ``plan`` into its cache in one pass with one progress bar:
    ``n_jobs`` worker processes as in ``experiment.evaluate`` (joblib/loky; 1: this process),
    each with its share of the cores, the costliest jobs first; or, with ``scheduler`` (an
    address such as "tcp://host:8786", a ``distributed.Client`` or a cluster object such as a
    ``LocalCluster``), on that Dask cluster, one thread per job, the cache and the data on paths
    every worker sees (``experiment.sweep.run_on_dask``; README, "On a cluster"). The notebooks
    then only read the cache."""
    workers = _workers(n_jobs)
    threads = max(1, (os.cpu_count() or 1) // workers)
    # Longest first (by the measured costs; unknown ones last): the pass ends on short jobs,
    # so one worker does not finish a long job alone while the other core idles.
    jobs = sorted(
        plan.jobs, key=lambda j: -SECONDS_PER_CLICK.get(j.model, 0.0) * weighted_clicks(j)
    )
    # the bar's 'left' weighs each job by its estimated cost (a model without one: the mean
    # known cost of the plan's models), since the jobs run longest first and a count would mislead
    known = [SECONDS_PER_CLICK[m] for m in {j.model for j in jobs} if m in SECONDS_PER_CLICK]
    default = sum(known) / len(known) if known else 1.0
    cost = [SECONDS_PER_CLICK.get(j.model, default) * weighted_clicks(j) for j in jobs]
    if scheduler is None:
        args = [(j.spec, list(j.robots), j.dataset, j.index, j.seed, j.settings, j.max_clicks,
                 plan.cache, threads) for j in jobs]  # fmt: skip
    else:  # the workers read the images and write the cache themselves: absolute paths
        args = [(j.spec, list(j.robots), absolute_paths(j.dataset), j.index, j.seed, j.settings,
                 j.max_clicks, plan.cache.absolute(), 1) for j in jobs]  # fmt: skip
    busy: dict[str, float] = {m: 0.0 for m in dict.fromkeys(j.model for j in plan.jobs)}
    t0 = time.perf_counter()
    if args:
        bar = tqdm(total=len(args), desc="figure sweeps", unit="job", disable=not progress,
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} jobs [{elapsed}{postfix}]")  # fmt: skip
        done, total = [0.0], sum(cost)

        def record(i: int, model: str, seconds: float) -> None:
            busy[model] += seconds
            done[0] += cost[i]
            left = time_left(time.perf_counter() - t0, done[0], total)
            eta = ("" if left is None else f", ~{left:.0f} s left" if left < 90
                   else f", ~{left / 60:.1f} min left")  # fmt: skip
            bar.set_postfix_str(f"{model}{eta}", refresh=False)

        if scheduler is not None:
            index = {id(a): i for i, a in enumerate(args)}
            run_on_dask(scheduler, args, bar, cached=True, fn=_timed_job,
                        on_result=lambda a, r: record(index[id(a)], *r))  # fmt: skip
        else:
            if workers == 1:
                results: Iterable[tuple[int, str, float]] = (
                    _indexed(i, *a) for i, a in enumerate(args)
                )
            else:
                from joblib import Parallel, delayed

                with worker_pool(workers):  # workers that exit with this process
                    results = Parallel(return_as="generator_unordered")(
                        delayed(_indexed)(i, *a) for i, a in enumerate(args)
                    )
            for i, model, seconds in results:
                record(i, model, seconds)
                bar.update()
        bar.close()
    return ComputeReport(time.perf_counter() - t0, len(args), workers, busy)


# ----------------------------------------------------------------------------------------------
# the runner


def notebook_sources(only: Sequence[str] | None = None) -> list[Path]:
    """``notebooks/NN_*.py`` in order; ``only`` keeps those whose name starts with one of them."""
    srcs = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    if only:
        srcs = [s for s in srcs if any(s.stem.startswith(o) for o in only)]
    return srcs


def to_ipynb(src: Path, folder: Path) -> Path:
    """Convert a py:percent notebook to ``folder/<stem>.ipynb`` with jupytext (no outputs),
    written atomically (two runs at once never read half a notebook)."""
    import jupytext

    nb = jupytext.read(src)
    return write_with(
        folder / f"{src.stem}.ipynb", lambda tmp: jupytext.write(nb, tmp, fmt="ipynb")
    )


def kernel_options() -> dict[str, Any]:
    """papermill keyword arguments that start each kernel with CurveZMQ transport encryption
    when this jupyter_client, pyzmq and the kernelspec support it (ipykernel's python3 declares
    it): the kernel's "running over TCP without encryption" warning, printed for every notebook,
    is then not only silent but no longer true. Empty where it is not supported (the kernel
    then runs as before, with its warning)."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if not (zmq.has("curve") and "transport_encryption" in KernelManager.class_trait_names()):
        return {}
    return {"config": Config({"KernelManager": {"transport_encryption": "auto"}})}


LOCK_FILE = ".runner.lock"
"""The lock file a run holds in its cache folder while it computes (``cache_lock``)."""


@contextmanager
def cache_lock(cache: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``cache`` (``fcntl.flock`` of ``cache/LOCK_FILE``) for the
    enclosed block. A second run on the same cache (two ``make figures`` in one checkout) waits
    here, saying so, and then plans again: it computes only what the first did not, instead of
    the same jobs at the same time. The system releases the lock when its holder exits or is
    killed, so a dead run never blocks the next. Where ``fcntl`` is missing (Windows) runs do
    not wait for each other (they still corrupt nothing: every cache file is written whole)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / LOCK_FILE, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another run"
            print(f"[notebooks] {holder} is computing into {cache}; waiting for it to finish, "
                  "then computing only what is still missing", flush=True)  # fmt: skip
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            f.truncate()
            f.write(f"the run of pid {os.getpid()} on {socket.gethostname()}\n")
            f.flush()
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


SMOKE_CELL_TIMEOUT = 300
FULL_CELL_TIMEOUT = 5400
"""Seconds per cell of a full run: the longest cell (a fresh full-Berkeley sweep with
``random_walker``) takes ~40 min here; a kernel that stops answering is retried after it."""


def execute(
    src: Path,
    out_dir: Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout: int | None = None,
    log_output: bool = False,
) -> Path:
    """Convert ``src`` and execute it with papermill into ``out_dir``; return the output path.

    Raises papermill's PapermillExecutionError (naming the cell) when a cell fails; the output
    notebook is still written, with the error in it. A notebook whose kernel stopped answering
    (cell timeout, dead kernel) is run once more; a rerun is cheap because results are cached.
    A cell that raises is never retried. The stock papermill client is used: what any reader
    or CI runs is what is tested (the widgets avoid Output widgets, see ``iislib.drawing.widgets``).
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    # one converted copy per output folder: the runs of a multi-dataset run convert at once
    ipynb = to_ipynb(src, paths.BUILD / "notebooks" / "src" / out_dir.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / ipynb.name
    # papermill writes its output as it goes: into a temporary file, renamed when complete (an
    # executed notebook, or one that shows the failed cell); a failed write leaves the old one
    tmp = temporary_name(out)
    try:
        for attempt in (1, 2):
            try:
                pm.execute_notebook(
                    str(ipynb), str(tmp), parameters=dict(parameters or {}),
                    kernel_name="python3", language="python", cwd=str(paths.NOTEBOOKS),
                    progress_bar=False, log_output=log_output, execution_timeout=timeout,
                    **kernel_options(),
                )  # fmt: skip
                break
            except (CellTimeoutError, DeadKernelError) as e:
                if attempt == 2:
                    raise
                print(f"[notebooks] {src.name}: the kernel stopped answering "
                      f"({type(e).__name__}); running it once more", flush=True)  # fmt: skip
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if tmp.exists():
            os.replace(tmp, out)
    return out


@dataclass
class RunReport:
    """What ``run_all`` did: the plan, the sweep pass (None when skipped or nothing was missing)
    and (executed notebook, seconds) per notebook."""

    plan: Plan
    compute: ComputeReport | None
    notebooks: list[tuple[Path, float]]


def run_all(
    smoke: bool = False,
    parameters: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    out_dir: Path | None = None,
    log_output: bool = False,
    timeout: int | None = None,
    precompute: bool = True,
    progress: bool = True,
    notebook_jobs: int | None = None,
    datasets: str | Sequence[str] | None = None,
    scheduler: Any = None,
) -> RunReport:
    """Print the plan, compute every missing sweep of the notebooks in one pass (``precompute``;
    ``compute``), then execute every notebook, whose sweeps then only read the cache.

    ``timeout``: seconds per cell (default: ``SMOKE_CELL_TIMEOUT`` in smoke mode,
    ``FULL_CELL_TIMEOUT`` in a full run), so that a kernel that stops answering is noticed (and
    retried once by ``execute``) instead of waiting forever. ``notebook_jobs``: notebooks
    executed at once (default: the notebooks' ``n_jobs``, the sweep's worker count).
    ``datasets``: the multi-dataset run (``notebook_runs``; ``"all"``: Berkeley, GrabCut and
    DAVIS), 03 and 04 once per dataset into ``out_dir/<dataset>/``. ``scheduler``: compute the
    sweeps on a Dask cluster (``compute``).
    """
    if timeout is None:
        timeout = SMOKE_CELL_TIMEOUT if smoke else FULL_CELL_TIMEOUT
    params = dict(parameters or {})
    if smoke:
        params["smoke"] = True
    datasets = resolve_datasets(datasets)
    data = os.environ.get("IISLIB_DATA")
    if data and not Path(data).is_absolute():
        # the kernels run in notebooks/: they must find the data (and its cache keys) here
        os.environ["IISLIB_DATA"] = str(Path(data).absolute())
    out_dir = out_dir or paths.BUILD / "notebooks" / ("smoke" if smoke else "full")
    runs = notebook_runs(params, only, datasets)
    # each notebook gets the parameters its parameters cell declares (papermill warns about the
    # others); a name that no notebook declares is a typo, refused before any work
    declared = {run.src: set(notebook_parameters(run.src)) for run in runs}
    unknown = sorted(set(params) - set().union(*declared.values()))
    if unknown:
        raise ValueError(f"no notebook has the parameter(s) {', '.join(unknown)}")
    requests = figure_plan(smoke, params, only, datasets)  # every parameter checked before the lock
    # One run at a time computes into the cache (the sweep pass, or the notebooks themselves
    # without it); a second run waits, then plans what is still missing.
    with ExitStack() as locked:
        locked.enter_context(cache_lock(paths.CACHE))
        plan = make_plan(requests)
        n_jobs = plan_jobs(plan)
        print(format_plan(plan, n_jobs), flush=True)
        report = RunReport(plan, None, [])
        if precompute and plan.jobs:
            if scheduler is not None:
                print(f"[notebooks] computing the sweeps on the Dask cluster {scheduler}",
                      flush=True)  # fmt: skip
            report.compute = done = compute(plan, n_jobs, progress, scheduler)
            split = ", ".join(f"{m} {s:.1f} s" for m, s in done.model_wall().items())
            clicks = cost_clicks(plan)  # weighted: an envelope click counts ROBOT_COST_FACTOR
            costs = ", ".join(f"{m} {s / clicks[m]:.4f}" for m, s in done.busy.items())
            where = ("on the Dask cluster" if scheduler is not None
                     else f"with {done.workers} worker(s)")  # fmt: skip
            print(f"[notebooks] sweeps: {done.jobs} jobs in {done.wall:.1f} s {where} ({split}); "
                  f"worker-seconds per planned click (runner.SECONDS_PER_CLICK's unit): {costs}",
                  flush=True)  # fmt: skip
        if precompute:
            locked.close()  # released: the notebooks only read the cache now
        _run_notebooks(report, runs, declared, out_dir, log_output, timeout,
                       n_jobs if precompute else 1, notebook_jobs)  # fmt: skip
    return report


def _run_notebooks(report: RunReport, runs: list[NotebookRun], declared: Mapping[Path, set[str]],
                   out_dir: Path, log_output: bool, timeout: int, default: int,
                   notebook_jobs: int | None) -> None:  # fmt: skip
    """Execute ``runs`` into ``report.notebooks``, ``notebook_jobs`` at once (default
    ``default``), each with the parameters its notebook declares, into ``out_dir`` (a run's
    ``folder`` below it); the first failure in notebook order is raised after all have run."""
    # without the sweep pass, notebooks compute their sweeps themselves: one at a time, or two
    # would compute the sweeps they share twice
    kernels = max(1, min(default if notebook_jobs is None else notebook_jobs, len(runs)))

    def one(run: NotebookRun) -> tuple[Path, float]:
        t0 = time.perf_counter()
        name = f"{run.src.name}" + (f" on {run.folder}" if run.folder else "")
        print(f"[notebooks] {name} ...", flush=True)
        mine = {k: v for k, v in run.parameters.items() if k in declared[run.src]}
        out = execute(run.src, out_dir / run.folder, mine, log_output=log_output, timeout=timeout)
        dt = time.perf_counter() - t0
        print(f"[notebooks] {name}: {dt:.1f} s -> {out}", flush=True)
        return out, dt

    if kernels == 1:
        report.notebooks = [one(run) for run in runs]
        return
    # The notebooks only read the cache now and each kernel keeps about one core busy, so
    # ``kernels`` of them run at once (one per sweep worker); every one runs to its end and the
    # first failure, in notebook order, is raised after all.
    with ThreadPoolExecutor(max_workers=kernels) as pool:
        futures = [pool.submit(one, run) for run in runs]
        wait(futures)
    for f in futures:
        if f.exception() is not None:
            raise f.exception()
    report.notebooks = [f.result() for f in futures]


def _param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name.strip(), value  # a bare string such as berkeley


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iislib.apps.runner",
                                description="Convert (jupytext) and execute (papermill) the notebooks.")  # fmt: skip
    p.add_argument("--smoke", action="store_true", help="2 images, 4 clicks (figures/smoke/)")
    p.add_argument("--jobs", type=int, default=None, help="n_jobs parameter of the sweeps")
    p.add_argument("--only", nargs="*", default=None, help="notebook prefixes, e.g. 01 03")
    p.add_argument("-p", "--param", type=_param, action="append", default=[],
                   help="NAME=VALUE notebook parameter (Python literal or bare string)")  # fmt: skip
    p.add_argument("--out", type=Path, default=None, help="folder of the executed notebooks")
    p.add_argument("--log-output", action="store_true", help="stream cell output")
    p.add_argument("--no-precompute", action="store_true",
                   help="let each notebook compute its own sweeps (no shared pass first)")  # fmt: skip
    p.add_argument("--plan", action="store_true", help="print the plan and exit")
    p.add_argument("--notebook-jobs", type=int, default=None,
                   help="notebooks executed at once (default: --jobs after the sweep pass)")  # fmt: skip
    p.add_argument("--datasets", default=None, metavar="NAMES",
                   help="the full run: 03 and 04 on each of these datasets (all images) and the "
                        f"findings pooled over them; 'all' = {','.join(DATASET_NAMES)}")  # fmt: skip
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="compute the sweeps on a Dask cluster, e.g. tcp://host:8786 (cache and "
                        "data on paths every worker sees; README, On a cluster)")  # fmt: skip
    args = p.parse_args(argv)
    params = dict(args.param)
    if args.jobs is not None:
        params["n_jobs"] = args.jobs
    try:
        datasets = resolve_datasets(args.datasets)
        if args.plan:
            if args.smoke:
                params["smoke"] = True
            plan = make_plan(figure_plan(args.smoke, params, args.only, datasets))
            print(format_plan(plan, plan_jobs(plan)))
            return 0
    except ValueError as e:
        print(f"[notebooks] error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        done = run_all(args.smoke, params, args.only, args.out, args.log_output,
                       precompute=not args.no_precompute, notebook_jobs=args.notebook_jobs,
                       datasets=datasets, scheduler=args.scheduler)  # fmt: skip
    except Exception as e:  # papermill's error names the notebook cell that failed
        print(f"[notebooks] FAILED: {e}", file=sys.stderr)
        return 1
    print(f"[notebooks] {len(done.notebooks)} notebook(s) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
