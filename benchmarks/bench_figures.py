"""Wall time of the whole figures pipeline (``make figures``) from an empty cache, per phase.

    python benchmarks/bench_figures.py [--smoke | --images N] [--jobs 2] [--no-precompute]
                                       [-p NAME=VALUE ...]

Runs ``iislib.apps.runner.run_all`` (the code ``make figures`` runs) with a temporary
``IISLIB_HOME``: an empty result cache, and build/ and figures/ that never touch the checkout's.
Prints the plan with its estimate, then the wall time of the sweep pass per model (its wall time
split in proportion to the seconds each model's jobs ran in the workers), of each notebook, and
the total. ``--images N`` sets the notebooks' ``n_images`` (the full run: 100); the venv build of
a fresh clone is not included. Needs the benchmark data (``$IISLIB_DATA``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="2 images, 4 clicks")
    size.add_argument("--images", type=int, default=None, help="n_images of every notebook")
    p.add_argument("--jobs", type=int, default=2, help="sweep workers (make figures: 2)")
    p.add_argument("--no-precompute", action="store_true", help="each notebook computes its sweeps")
    p.add_argument("--keep", action="store_true", help="keep the temporary IISLIB_HOME")
    p.add_argument("-p", "--param", action="append", default=[],
                   help="NAME=VALUE notebook parameter, as for python -m iislib.apps.runner")  # fmt: skip
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="iislib-bench-figures-"))
    # before iislib is imported: paths.HOME is read once, and the kernels inherit it
    os.environ["IISLIB_HOME"] = str(home)
    if os.environ.get("IISLIB_DATA"):
        os.environ["IISLIB_DATA"] = str(Path(os.environ["IISLIB_DATA"]).absolute())
    from iislib.apps import runner

    params: dict[str, object] = {"n_jobs": args.jobs, **dict(map(runner._param, args.param))}
    if args.images is not None:
        params["n_images"] = args.images
    what = "smoke" if args.smoke else f"{args.images or 'default'} images"
    print(f"figures pipeline ({what}, {args.jobs} job(s), precompute {not args.no_precompute}), "
          f"IISLIB_HOME={home}", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    try:
        report = runner.run_all(args.smoke, params, precompute=not args.no_precompute)
        total = time.perf_counter() - t0
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print(f"\n{'phase':36s} {'seconds':>9s} {'estimate':>9s}")
    if report.compute is not None:
        c = report.compute
        clicks = report.plan.by_model()["clicks"].to_dict()
        est = runner.estimate_seconds(clicks, c.workers)
        for model, seconds in c.model_wall().items():
            e = est.get(model)
            print(f"{'sweeps: ' + model:36s} {seconds:9.1f} "
                  f"{'unknown' if e is None else f'{e:.1f}':>9s}")  # fmt: skip
        label = f"sweeps (one pass, {c.jobs} jobs)"
        print(f"{label:36s} {c.wall:9.1f}")
    for out, seconds in report.notebooks:
        print(f"{'notebook ' + out.stem:36s} {seconds:9.1f}")
    print(f"{'total (plan, sweeps, notebooks)':36s} {total:9.1f}")


if __name__ == "__main__":
    main()
