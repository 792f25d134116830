"""Milliseconds per click for each robot on 481x321 Berkeley masks (a benchmark, not a test).

    python benchmarks/bench_robots.py [--data DIR] [--images 10] [--repeats 5]

For every image it times each robot on three states: the first click (empty prediction), a
half-wrong prediction, and a nearly right one; it prints the mean and the worst per robot.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from iislib.core.loop import make_rng
from iislib.core.robots import ROBOTS
from iislib.experiment.data import load_dataset


def states(gt: np.ndarray) -> list[np.ndarray]:
    half = gt.copy()
    half[: gt.shape[0] // 2] = False
    near = ndimage.binary_erosion(gt, iterations=2)
    return [np.zeros_like(gt), half, near]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None)
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    ds = load_dataset("berkeley", root=args.data).subset(args.images)
    samples = [s for s in ds]
    print(f"{len(samples)} Berkeley masks, sizes {sorted({s.gt.shape for s in samples})}")
    print(f"{'robot':8s} {'mean ms':>8s} {'max ms':>8s}")
    for name, robot in ROBOTS.items():
        times = []
        for s in samples:
            rng = make_rng(0, s.name, name)
            for pred in states(s.gt):
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    robot(pred, s.gt, [], rng)
                    times.append((time.perf_counter() - t0) * 1000)
        print(f"{name:8s} {np.mean(times):8.2f} {np.max(times):8.2f}")


if __name__ == "__main__":
    main()
