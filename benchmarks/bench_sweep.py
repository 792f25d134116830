"""Throughput of the evaluation sweep: clicks per second per model, robot ms per click, and the
estimated wall time of the full Berkeley grid (100 instances x 7 robots x 20 clicks).

    python benchmarks/bench_sweep.py [--models ritm-compact,gto99-compact] [--images 3] [--jobs 2]
    python benchmarks/bench_sweep.py --robots envelope --images 2 --clicks 10   # rbest, rworst

Runs ``experiment.evaluate`` without the cache on the first N Berkeley images with the ``ipol``
settings, then extrapolates linearly to 100 images (the grid is embarrassingly parallel over images)
and adds the start-up of the workers once (timed separately). ``--images 100`` runs the real grid.
The last line adds up the models: issue 5's target is both compact paper models within 10 minutes.
The ``s/click`` column is worker-seconds per planned click (wall x workers / (images x robots x
clicks)): the unit of ``iislib.apps.runner.SECONDS_PER_CLICK``, from which ``python -m
iislib.apps.runner`` estimates its plan (copy a quiet machine's values there).
``--robots`` picks the robots: ``all`` (the seven, the default), ``envelope`` (rbest and
rworst: N + 7 predictions per click) or a comma list; ``--compare`` also times the seven robots
on the same images right after, and prints the ratio of the two s/click columns (the
runner's ``ROBOT_COST_FACTOR`` for the envelope robots).
"""

from __future__ import annotations

import argparse
import os
import time

from iislib.core.robots import ENVELOPE_NAMES, ROBOT_NAMES
from iislib.experiment.data import load_dataset
from iislib.experiment.sweep import evaluate
from iislib.models import ready_models


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="ritm-compact,gto99-compact",
                   help="comma list, 'ready' or 'paper' (iislib.apps.paper.resolve_models)")  # fmt: skip
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--clicks", type=int, default=20)
    p.add_argument("--data", default=None)
    p.add_argument("--robots", default="all", help="'all' (the seven), 'envelope' or a comma list")
    p.add_argument("--compare", action="store_true", help="also time the seven, back to back")
    args = p.parse_args()
    named = {"all": list(ROBOT_NAMES), "envelope": list(ENVELOPE_NAMES)}
    robots = named.get(args.robots) or args.robots.split(",")
    sets = {"ready": ready_models(), "paper": ready_models(cross_trained=False)}
    models = sets[args.models] if args.models in sets else args.models.split(",")
    ds = load_dataset("berkeley", root=args.data).subset(args.images)
    print(f"{len(ds)} Berkeley images x {len(robots)} robots ({','.join(robots)}) x {args.clicks} clicks, "
          f"ipol settings, {args.jobs} job(s)")  # fmt: skip
    print(f"{'model':24s} {'clicks/s':>9s} {'model ms':>9s} {'robot ms':>9s} {'grid min':>9s} "
          f"{'s/click':>8s}")  # fmt: skip
    workers = max(1, min(args.jobs, os.cpu_count() or 1))
    total = 0.0
    for model in models:
        # Start the workers and load the model in each, once: a real grid pays this once, so it
        # is added once rather than extrapolated with the per-image cost.
        t0 = time.perf_counter()
        evaluate([model], ROBOT_NAMES[:1], ds.subset(max(1, args.jobs)), max_clicks=1,
                 settings="ipol", n_jobs=args.jobs, cache_dir=None, progress=False)  # fmt: skip
        startup = time.perf_counter() - t0
        ratio = None
        for group in [robots] + ([list(ROBOT_NAMES)] if args.compare else []):
            t0 = time.perf_counter()
            table = evaluate([model], group, ds, max_clicks=args.clicks, settings="ipol",
                             n_jobs=args.jobs, cache_dir=None, progress=False)  # fmt: skip
            wall = time.perf_counter() - t0
            clicks = int((table["positive"] >= 0).sum())
            grid = (startup + wall * 100 / len(ds)) / 60
            per_click = wall * workers / (len(ds) * len(group) * args.clicks)
            ratio = per_click if ratio is None else ratio / per_click
            if group is robots:
                total += grid
            label = model if group is robots else "  the seven, same images"
            print(f"{label:24s} {clicks / wall:9.1f} {1000 * table.model_seconds.sum() / clicks:9.1f} "
                  f"{1000 * table.robot_seconds.sum() / clicks:9.2f} {grid:9.1f} "
                  f"{per_click:8.4f}")  # fmt: skip
        if args.compare:
            print(f"  s/click ratio ({','.join(robots)} / the seven): {ratio:.1f}")
    print(f"{'all listed models':24s} {'':>9s} {'':>9s} {'':>9s} {total:9.1f}")


if __name__ == "__main__":
    main()
