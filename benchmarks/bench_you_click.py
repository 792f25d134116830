"""Seconds per click of the demo's "you click" mode: the prediction and both pictures.

    python benchmarks/bench_you_click.py [--images 3] [--clicks 5] [--models ritm-compact,...]

Plays the person with rritm's clicks on the first N Berkeley images (``$IISLIB_DATA``) through
``iislib.experiment.session.HumanSession`` (direct settings, the image's own resolution, one torch
thread as in a Voilà kernel under ``make demo``'s load), timing each ``click`` plus
``overlay_png`` and ``confusion_png``, and prints the median and the maximum per model (each
model's first click, which warms it up, is left out).
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--models", default="ritm-compact,gto99-compact,random_walker")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from iislib.core.robots import get_robot
    from iislib.experiment.data import load_dataset
    from iislib.experiment.session import HumanSession

    torch.set_num_threads(1)
    ds = load_dataset("berkeley")
    robot = get_robot("rritm")
    for model in args.models.split(","):
        seconds = []
        for name in ds.names[: args.images]:
            s = ds[name]
            session = HumanSession(s.image, s.gt, model, name=name)
            for _ in range(args.clicks):
                click = robot(session.pred, session.gt, session.clicks, None)
                if click is None:
                    break
                t0 = time.perf_counter()
                session.click(*click)
                session.overlay_png()
                session.confusion_png()
                seconds.append(time.perf_counter() - t0)
        s = np.array(seconds[1:])
        print(f"{model}: {len(s)} clicks, median {np.median(s):.3f} s, max {s.max():.3f} s")


if __name__ == "__main__":
    main()
