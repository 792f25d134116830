"""Cost of one Boundary IoU call, beside the six confusion scores, per click of a sweep.

    .venv/bin/python benchmarks/bench_boundary_iou.py            # Berkeley image 0 (481x321)

Times ``metrics.boundary_iou`` and ``metrics.scores`` on a Berkeley ground truth against a
dilated copy of it, at the image's own size (``direct`` settings, d = 12) and on the 224x224
crop of the ``ipol`` settings (d = 6, what ``make figures`` scores). Prints the best and the
median of 15 repeats of 300 calls, in milliseconds per call, with cv2's thread count.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
from scipy import ndimage

from iislib.core import metrics
from iislib.experiment.data import load_dataset
from iislib.models.settings import get_settings


def per_call_ms(f: Callable[[], object], n: int = 300, repeats: int = 15) -> tuple[float, float]:
    """(best, median) milliseconds per call over ``repeats`` runs of ``n`` calls."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        runs.append((time.perf_counter() - t0) / n * 1e3)
    return min(runs), float(np.median(runs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image", type=int, default=0, help="index of the Berkeley image")
    args = p.parse_args()
    sample = load_dataset("berkeley")[args.image]
    _, small, _ = get_settings("ipol").prepare(sample.image, sample.gt, None)
    print(f"cv2 threads: {cv2.getNumThreads()}")
    for what, gt in (("direct", sample.gt), ("ipol", small)):
        pred = ndimage.binary_dilation(gt, iterations=3)
        d = metrics.boundary_width(gt.shape)
        b = per_call_ms(lambda g=gt, q=pred: metrics.boundary_iou(q, g))
        s = per_call_ms(lambda g=gt, q=pred: metrics.scores(q, g))
        print(f"{what:6s} {gt.shape[0]}x{gt.shape[1]} d={d:2d}: boundary_iou {b[0]:.3f} ms "
              f"(median {b[1]:.3f}), scores {s[0]:.3f} ms (median {s[1]:.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
