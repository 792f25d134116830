"""Milliseconds per click of the random_walker baseline, as the evaluation sweep calls it.

    python benchmarks/bench_walker.py [--data DIR] [--images 10] [--clicks 20] [--old PATH]

Runs ``iislib.core.loop.run`` with the ``ipol`` settings (224x224 centre crops, min-max
normalised) on the first N Berkeley images with the robots rgto99 and r02, and prints the
model's mean milliseconds per click (the loop's own ``model_seconds``, so robot time is left
out). With ``--old PATH`` (a copy of an older iislib, e.g. ``git worktree add /tmp/rw_old HEAD``)
it runs the old and the current code alternately, twice each, each in a fresh process (this
machine's speed drifts, so a single pair of runs can mislead), and prints the ratio of the
best runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROBOTS = ("rgto99", "r02")


def measure(data: str | None, images: int, clicks: int) -> tuple[float, int]:
    """(mean ms per click, number of clicks) of random_walker on the benchmark's trajectories."""
    import numpy as np
    from tqdm.auto import tqdm

    from iislib.core.loop import run
    from iislib.core.robots import get_robot
    from iislib.experiment.data import load_dataset
    from iislib.models import get_model
    from iislib.models.settings import get_settings

    settings = get_settings("ipol")
    model = settings.wrap(get_model("random_walker"))
    seconds, n = 0.0, 0
    for sample in tqdm(list(load_dataset("berkeley", root=data).subset(images)), leave=False):
        image, gt, ignore = settings.prepare(sample.image, sample.gt, sample.ignore)
        for robot in ROBOTS:
            traj = run(model, get_robot(robot), image, gt, max_clicks=clicks, seed=0,
                       key=sample.name, ignore=ignore)  # fmt: skip
            seconds += float(np.sum(traj.model_seconds))
            n += len(traj.clicks)
    return 1000 * seconds / max(n, 1), n


def _child(root: Path, args: argparse.Namespace) -> float:
    """ms per click measured in a fresh interpreter that imports iislib from ``root``."""
    env = dict(os.environ, PYTHONPATH=str(root))
    cmd = [sys.executable, __file__, "--single", "--images", str(args.images),
           "--clicks", str(args.clicks)] + (["--data", args.data] if args.data else [])  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return float(out.split()[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None)
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--clicks", type=int, default=20)
    p.add_argument("--old", default=None, help="root of an older iislib to compare with")
    p.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.single:  # one measurement, printed for the parent process
        ms, n = measure(args.data, args.images, args.clicks)
        print(f"{ms:.3f} {n}")
        return
    if args.old is None:
        ms, n = measure(args.data, args.images, args.clicks)
        print(f"random_walker: {ms:.1f} ms per click ({n} clicks, {args.images} images x "
              f"{len(ROBOTS)} robots, ipol settings)")  # fmt: skip
        return
    old = Path(args.old).resolve()
    if not (old / "iislib" / "__init__.py").is_file():
        sys.exit(f"error: --old {args.old} holds no iislib/ package")
    new = Path(__file__).resolve().parent.parent
    runs: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(2):
        for label, root in (("old", old), ("new", new)):
            runs[label].append(_child(root, args))
            print(f"{label}: {runs[label][-1]:.1f} ms per click", flush=True)
    best_old, best_new = min(runs["old"]), min(runs["new"])
    print(f"best: old {best_old:.1f} ms, new {best_new:.1f} ms per click, "
          f"{best_old / best_new:.2f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
