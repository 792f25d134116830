"""Command line: ``iislib evaluate``, ``iislib data``, ``iislib demo`` (or ``python -m iislib``).

    iislib data                                     # fetch + verify Berkeley and GrabCut
    iislib weights [--download]                     # the official weights files: where, present?
    iislib evaluate --dataset berkeley --models ready --robots all --jobs 2
    iislib demo IMAGE MASK --model random_walker --robot rritm --clicks 20 --out DIR
    iislib findings --datasets all [--method percentile]   # the paper's claims, with verdicts

``evaluate`` writes ``results/<dataset>_<settings>.csv`` (the tidy table), ``..._summary.csv`` and
``figures/iou_vs_clicks_<dataset>_<settings>.{png,pdf}``; ``demo`` writes ``DIR/curves.png``,
``DIR/panel.png`` and ``DIR/scores.csv`` (all or none; ``--timings`` adds ``DIR/timings.csv``)
and prints a one-line summary per run. ``findings`` checks the paper's five claims on the
notebooks' cached sweeps (what is missing is computed) and writes ``results/findings.csv``. A user's mistake (bad file, bad option, an output folder
that cannot be written, an image over the demo's pixel limit) is one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

# Each command imports what it needs when it runs: `iislib --help` and `iislib data` then start
# without pandas, matplotlib or the models (a second or more on a small machine).


def cmd_evaluate(args: argparse.Namespace) -> int:
    cluster = _scheduler_timeout(args)
    from iislib import paths
    from iislib.apps.paper import resolve_models, resolve_robots
    from iislib.atomic import write_files
    from iislib.drawing.plots import caption, fig_metric_curves, figure_files
    from iislib.experiment.data import load_dataset
    from iislib.experiment.sweep import evaluate, summary
    from iislib.models import available_models, check_device

    check_device(args.device)  # before any data is read
    models = available_models() if args.models == "all" else resolve_models(args.models)
    robots = resolve_robots(args.robots)
    if args.n_images is not None and args.n_images < 0:
        raise ValueError(f"--n-images must be >= 0 (0: all images), got {args.n_images}")
    # 0 means every image, as the notebooks' n_images parameter (iislib.apps.paper.config)
    dataset = load_dataset(
        args.dataset, root=args.data, mask_rule=args.mask_rule, object=args.object
    ).subset(args.n_images or None)
    with cluster:
        table = evaluate(
            models, robots, dataset, max_clicks=args.max_clicks, seeds=args.seeds,
            settings=args.settings, n_jobs=args.jobs, scheduler=args.scheduler,
            cache_dir=None if args.no_cache else args.cache,
            progress=not args.quiet, device=args.device,
        )  # fmt: skip
    out = Path(args.out)
    stem = f"{dataset.name}_{args.settings}"
    summ = summary(table)
    fig = fig_metric_curves(table, "iou")
    fig.suptitle(caption(table), fontsize=6, wrap=True)
    # everything is rendered in memory, then written together: a failure (a full disk) leaves
    # the previous table, summary and figure as they were, never a new table beside an old summary
    files = {out / f"{stem}.csv": table.to_csv(index=False).encode(),
             out / f"{stem}_summary.csv": summ.to_csv(index=False).encode(),
             **figure_files(fig, f"iou_vs_clicks_{stem}", args.figures or paths.FIGURES)}  # fmt: skip
    written = write_files(files)
    print(summ.round(3).to_string(index=False))
    print("wrote " + ", ".join(map(str, written)))
    return 0


def _scheduler_timeout(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """For ``--scheduler``: a line saying where it connects, then a check that a Dask scheduler
    answers there within ``--scheduler-timeout`` seconds (before the sweep's heavy imports, so a
    bad address fails fast); the returned context sets that timeout for the sweep's Client."""
    if args.scheduler is None:
        return contextlib.nullcontext()
    if args.scheduler_timeout is not None and not args.scheduler_timeout > 0:
        raise ValueError(f"--scheduler-timeout must be > 0 seconds, got {args.scheduler_timeout}")
    from iislib.experiment.cluster import check_scheduler, connect_timeout

    timeout = args.scheduler_timeout or connect_timeout()
    if not args.quiet:
        print(f"connecting to the Dask scheduler {args.scheduler!r} (waiting at most {timeout:g} s)",
              file=sys.stderr)  # fmt: skip
    check_scheduler(args.scheduler, timeout)  # ValueError naming the address
    import dask.config  # check_scheduler needs distributed, which installs dask

    return dask.config.set({"distributed.comm.timeouts.connect": f"{timeout}s"})


def cmd_data(args: argparse.Namespace) -> int:
    from iislib.experiment.data import DATASET_NAMES, fetch

    names = tuple(DATASET_NAMES) if args.names == "all" else tuple(args.names.split(","))
    for f in fetch(names, root=args.data):
        check = "every file verified (SHA256)" if f.verified else "no manifest: not verified"
        print(f"{f.name}: {f.images} images in {f.folder} ({check})")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    """``iislib weights``: every official file, its link, size, name, presence, check, SHA256."""
    from iislib.models import official

    folder = official.weights_dir()
    names = list(official.OFFICIAL) if args.names == "all" else args.names.split(",")
    for name in names:
        official.get_entry(name)  # an unknown name fails before any download
    print(f"weights folder: {folder} (${official.WEIGHTS_ENV}; every file under its official "
          "name)")  # fmt: skip
    for name in names:
        w = official.OFFICIAL[name]
        if args.download and not official.is_present(name):
            if not w.direct:
                print(f"{name}: {w.file} is on Google Drive, which cannot be fetched by a "
                      f"script: open {w.url}, download it and put it in {folder}")  # fmt: skip
            else:
                try:
                    official.download(name, folder)
                except Exception as e:  # noqa: BLE001 - no network, HTTP error, bad file
                    print(f"{name}: download failed ({type(e).__name__}: {_one_line(e)}); "
                          f"download {w.url} by hand into {folder}")  # fmt: skip
        print(official.format_status(official.status(name)))
    ready = [n for n in names if official.status(n, digest=False).ok]
    print(
        f"{len(ready)} of {len(names)} official files present and well-formed"
        + (f": {', '.join(ready)}" if ready else "")
    )
    return 0  # a failed download is reported above; the listing itself succeeded


def cmd_findings(args: argparse.Namespace) -> int:
    """``iislib findings``: the paper's claims per dataset and pooled, as notebook 04 checks them
    (the same sweeps, so a full run's cache answers at once), with the bootstrap's ``--method``."""
    import os

    import pandas as pd

    from iislib.apps import paper
    from iislib.atomic import write_text
    from iislib.experiment import findings
    from iislib.experiment.data import resolve_datasets

    datasets = resolve_datasets(args.datasets, "--datasets")
    if args.n_boot < 100:
        raise ValueError(f"--n-boot must be at least 100 resamples, got {args.n_boot}")
    if args.data is not None:  # the sweeps' workers read the data root from the environment
        os.environ["IISLIB_DATA"] = str(Path(args.data).absolute())
    cfg = paper.config(dataset=datasets[0], models=args.models, n_images=args.n_images,
                       max_clicks=args.max_clicks, n_jobs=args.jobs)  # fmt: skip
    requests = paper.findings_requests(cfg, datasets, notebook="")
    if not args.quiet:
        plan = paper.make_plan(list(requests.values()))
        print(f"{len(requests)} sweep(s); {plan.missing_trajectories} trajectories missing from "
              "the cache, computed now", file=sys.stderr)  # fmt: skip
    table = pd.concat([r.run(progress=not args.quiet) for r in requests.values()],
                      ignore_index=True)  # fmt: skip
    found = findings.findings(table, datasets, n_boot=args.n_boot, method=args.method,
                              seed=args.seed, paper_models=findings.paper_models_of(cfg.models))  # fmt: skip
    print(findings.describe(found, measured=False))
    out = Path(args.out)
    write_text(out, found.to_csv(index=False, float_format="%.5f"))
    print(f"wrote {out} ({args.method} intervals, {args.n_boot} resamples)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``iislib demo IMAGE MASK``: one run (or two), curves.png, panel.png, scores.csv, a summary."""
    from iislib.apps.demo import check_out_dir, write_outputs
    from iislib.experiment.demo import DemoError, load_inputs, run_demo, summary_line

    # Everything is checked and computed before anything is written: bad input leaves no file.
    # --out first: a run of minutes must not end on a folder that cannot be written.
    check_out_dir(args.out)
    if args.panel_click is not None and not 1 <= args.panel_click <= args.clicks:
        raise DemoError(f"--panel-click must be in 1..{args.clicks}, got {args.panel_click}")
    sample, note = load_inputs(args.image, args.mask, max_side=args.max_side,
                               mask_rule=args.mask_rule, object=args.object)  # fmt: skip
    if note:
        print(f"iislib demo: note: {note}", file=sys.stderr)
    common = dict(clicks=args.clicks, seed=args.seed, settings=args.settings, name=sample.name,
                  ignore=sample.ignore)  # fmt: skip
    result = run_demo(sample.image, sample.gt, args.model, args.robot,
                      checkpoint=args.checkpoint, **common)  # fmt: skip
    other = None
    if args.compare_model or args.compare_robot:
        other = run_demo(
            sample.image, sample.gt, args.compare_model or args.model,
            args.compare_robot or args.robot,
            checkpoint=args.compare_checkpoint or (None if args.compare_model else args.checkpoint),
            **common,
        )  # fmt: skip
    written = write_outputs(args.out, result, other, k=args.panel_click, timings=args.timings)
    for res in (result, other):
        if res is not None:
            print(summary_line(res))
    print("wrote " + ", ".join(map(str, written)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from iislib import paths
    from iislib.models.settings import DEFAULT_SETTINGS, DEMO_SETTINGS, SETTINGS

    p = argparse.ArgumentParser(prog="iislib", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="models x robots x images sweep: table, summary, figure")
    e.add_argument("--dataset", default="berkeley", help="berkeley, grabcut, davis or a folder")
    e.add_argument("--data", default=None, help="data root (default: $IISLIB_DATA, else download)")
    e.add_argument("--models", default="ready",
                   help="comma list of names and sets; 'ready': every model that builds with no "
                   "argument (the 2x2 controls, official files present, installed entry points); "
                   "'paper': random_walker, ritm-compact, gto99-compact; 'official': the paper's "
                   "pair from the weights folder (ritm-sbd-h18, gto99-synthft); 'all': every "
                   "available model; a name may be an entry point or 'package.module:factory'")  # fmt: skip
    e.add_argument("--device", default="cpu",
                   help="where the networks run: cpu (default) or cuda (checked first)")  # fmt: skip
    e.add_argument("--robots", default="all",
                   help="comma list (rbest, rworst: the model-aware envelope), 'all' (the paper's "
                        "seven), 'random' (r01..r05) or 'envelope' (rbest, rworst)")  # fmt: skip
    e.add_argument("--settings", default=DEFAULT_SETTINGS,
                   help=f"{', '.join(SETTINGS)} (default {DEFAULT_SETTINGS})")  # fmt: skip
    e.add_argument("--max-clicks", type=int, default=20)
    e.add_argument(
        "--n-images",
        type=int,
        default=None,
        help="first N images only (0 or omitted: all, as in the notebooks)",
    )
    e.add_argument("--seeds", type=int, nargs="+", default=[0])
    e.add_argument("--jobs", type=int, default=1, help="worker processes (-1: all cores)")
    e.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a Dask cluster, e.g. tcp://host:8786 (see README, On a cluster)")  # fmt: skip
    e.add_argument("--scheduler-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up when no Dask scheduler answers at --scheduler within this "
                        "(default: Dask's distributed.comm.timeouts.connect, 30 s)")  # fmt: skip
    e.add_argument("--out", default=str(paths.RESULTS))
    e.add_argument("--figures", default=None, help=f"figure folder (default {paths.FIGURES})")
    e.add_argument("--cache", default=str(paths.CACHE))
    e.add_argument("--no-cache", action="store_true")
    e.add_argument("--quiet", action="store_true")
    add_mask_options(e, "the benchmark's own rule; for a folder 'binary'")
    e.set_defaults(func=cmd_evaluate)

    g = sub.add_parser("data", help="fetch and verify the benchmark datasets; print where they are")
    g.add_argument("--names", default="all",
                   help="comma list of berkeley, grabcut, davis, or 'all' (the default)")  # fmt: skip
    g.add_argument("--data", default=None,
                   help="local data root (default: $IISLIB_DATA, else download into data/)")  # fmt: skip
    g.set_defaults(func=cmd_data)

    w = sub.add_parser("weights", help="the official weights files: links, sizes, names, "
                       "present?, structure check, SHA256; --download fetches RITM's")  # fmt: skip
    w.add_argument("--names", default="all", help="comma list of official names, or 'all'")
    w.add_argument("--download", action="store_true",
                   help="fetch the missing files that have a direct link (RITM's) with pooch")  # fmt: skip
    w.set_defaults(func=cmd_weights)

    d = sub.add_parser("demo", help="one image and its mask: K clicks, curves, panel, scores")
    d.add_argument("image", help="image file (PNG, JPEG, ...)")
    d.add_argument(
        "mask",
        help="mask file, same size; two values (pixels with channel mean < 128 are background) "
        "unless --mask-rule or --object says how to read more",
    )
    d.add_argument("--model", default="random_walker", help="a registered model name")
    d.add_argument("--robot", default="rritm", help="a robot name (r01..r05, rgto99, rritm, r05h)")
    d.add_argument("--clicks", type=int, default=20, help="number of clicks K (default 20)")
    d.add_argument("--seed", type=int, default=0, help="seed of the robot's generator")
    d.add_argument("--checkpoint", default=None, help="weights file for models that need one")
    d.add_argument("--settings", default=DEMO_SETTINGS,
                   help=f"{', '.join(SETTINGS)} (default {DEMO_SETTINGS}: the image's own pixels)")  # fmt: skip
    d.add_argument("--compare-model", default=None, help="second run's model (default --model)")
    d.add_argument("--compare-robot", default=None, help="second run's robot (default --robot)")
    d.add_argument("--compare-checkpoint", default=None, help="second run's checkpoint")
    d.add_argument(
        "--panel-click", type=int, default=None, help="click drawn in panel.png (default K)"
    )
    d.add_argument("--out", required=True, help="output folder (curves.png, panel.png, scores.csv)")
    d.add_argument(
        "--max-side", type=int, default=None,
        help="downscale image and mask to this longer side first (images over 4 megapixels, "
        "iislib.experiment.demo.MAX_PIXELS, are refused otherwise)",
    )  # fmt: skip
    d.add_argument(
        "--timings", action="store_true",
        help="also write timings.csv (wall times per click; scores.csv never has them)",
    )  # fmt: skip
    add_mask_options(d, "'binary'")
    d.set_defaults(func=cmd_demo)
    f = sub.add_parser(
        "findings",
        help="the paper's five claims per dataset and pooled, with "
        "bootstrap intervals and verdicts (notebook 04's sweeps, read from the cache)",
    )
    f.add_argument(
        "--datasets",
        default="berkeley",
        help="comma list of berkeley, grabcut, davis, or 'all' (pooled when two or more)",
    )
    f.add_argument("--models", default="paper",
                   help="'paper' (the compact pair and the 2x2) or 'official' (the paper's own "
                   "weights, with the compact 2x2 for claim 4)")  # fmt: skip
    f.add_argument("--n-images", type=int, default=0, help="first N images per dataset (0: all)")
    f.add_argument("--max-clicks", type=int, default=20)
    f.add_argument(
        "--method",
        default="BCa",
        choices=["BCa", "percentile", "basic"],
        help="the bootstrap interval (scipy.stats.bootstrap; default BCa)",
    )
    f.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (notebook 04's)")
    f.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (notebook 04's: 0)")
    f.add_argument("--jobs", type=int, default=-1, help="worker processes for what is missing")
    f.add_argument("--data", default=None, help="data root (default: $IISLIB_DATA, else download)")
    f.add_argument(
        "--out", default=str(paths.RESULTS / "findings.csv"), help="the findings table (CSV)"
    )
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_findings)
    return p


def add_mask_options(parser: argparse.ArgumentParser, default: str) -> None:
    """--mask-rule and --object: how masks are read (``iislib.experiment.data.MaskRule``)."""
    from iislib.experiment.data import RULE_NAMES

    rules = [r for r in RULE_NAMES if r != "object"]
    parser.add_argument(
        "--mask-rule", default=None, choices=rules,
        help=f"how masks are read (default: {default}, at most two values, a mask with more "
        "is refused naming them): threshold (> 128 is foreground), grabcut (128 ignored), "
        "nonzero (every non-zero label is the object)",
    )  # fmt: skip
    parser.add_argument(
        "--object", type=int, default=None, metavar="LABEL",
        help="read label masks as this one object (255 is ignored as void)",
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"iislib {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"iislib {args.command}: error: out of memory; use a smaller image "
              "(demo: --max-side N) or fewer parallel jobs", file=sys.stderr)  # fmt: skip
        return 1
    except OSError as e:  # disk full, permissions, ... while reading or writing
        print(f"iislib {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    """An error's message on one line (the CLI's promise: one line, no traceback)."""
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
