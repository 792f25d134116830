"""Seconds per planned click of the official models on the CPU (the runner's SECONDS_PER_CLICK
unit), measured with random weights of the same architecture: the speed does not depend on them.

    .venv/bin/python benchmarks/bench_official.py                 # every official name, 3 clicks
    .venv/bin/python benchmarks/bench_official.py --names ritm-sbd-h18 --clicks 2 --images 1

One planned click is one click of one trajectory with the seven robots in lockstep under the
``ipol`` settings (224x224), as ``iislib.apps.runner.SECONDS_PER_CLICK`` counts it: the
benchmark runs ``loop.run_many`` of the seven robots on the first ``--images`` Berkeley images
(``$IISLIB_DATA``; a synthetic 224x224 pair without it) for ``--clicks`` clicks, with one torch
thread (a sweep worker's share of 2 cores), and divides by images x 7 x clicks. It reports the
wall time and the process CPU time: on a shared, loaded machine the CPU time of this one-thread
run is the better estimate of the uncontended cost (time spent waiting for a core is not
counted). A few clicks only: the full networks take a fraction of a second per pass.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from iislib.core.loop import make_rng, run_many
from iislib.core.robots import ROBOT_NAMES, get_robot
from iislib.models.official import OFFICIAL
from iislib.models.settings import get_settings


def random_model(name: str):
    """The architecture of official ``name`` with random weights, on the fast path."""
    w = OFFICIAL[name]
    if w.family == "ritm":
        from iislib.models.ritm import RITM

        return RITM(pretrained=False, variant=w.variant)
    from iislib.models.gto99 import GTO99

    return GTO99(pretrained=False)


def samples(n: int, settings: str):
    st = get_settings(settings)
    if os.environ.get("IISLIB_DATA"):
        from iislib.experiment.data import load_dataset

        for s in load_dataset("berkeley").subset(n):
            yield s.name, *st.prepare(s.image, s.gt, s.ignore)
        return
    raise SystemExit("set IISLIB_DATA to the benchmark data")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--names", default=",".join(OFFICIAL))
    p.add_argument("--clicks", type=int, default=3)
    p.add_argument("--images", type=int, default=1)
    p.add_argument("--settings", default="ipol",
                   help="ipol (the plan's unit), or ritm/gto99: each paper's own protocol at full "
                   "resolution, as notebook 03's own-protocol sweeps run it")  # fmt: skip
    args = p.parse_args()
    torch.set_num_threads(1)
    data = list(samples(args.images, args.settings))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; torch "
          f"{torch.__version__}, 1 thread; {len(data)} image(s) x 7 robots x {args.clicks} clicks, "
          f"settings {args.settings}")  # fmt: skip
    print(f"{'name':20s} {'wall s/click':>13s} {'cpu s/click':>12s}")
    for name in args.names.split(","):
        st = get_settings(args.settings)
        model = st.wrap(random_model(name))
        # one warm-up click (first-call allocations, oneDNN primitive creation)
        name0, img0, gt0, ign0 = data[0]
        run_many(model, [(get_robot("rritm"), make_rng(0, name0, "rritm"))], img0, gt0,
                 max_clicks=1, ignore=ign0, threshold=st.threshold)  # fmt: skip
        wall, cpu = time.perf_counter(), time.process_time()
        for image, img, gt, ignore in data:
            pairs = [(get_robot(r), make_rng(0, image, r)) for r in ROBOT_NAMES]
            run_many(model, pairs, img, gt, max_clicks=args.clicks, ignore=ignore,
                     threshold=st.threshold)  # fmt: skip
        n = len(data) * len(ROBOT_NAMES) * args.clicks
        wall, cpu = (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n
        print(f"{name:20s} {wall:13.4f} {cpu:12.4f}", flush=True)


if __name__ == "__main__":
    main()
