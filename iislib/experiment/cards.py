"""Model cards: measure a model as the paper measures models, and write its card.

    python -m iislib.experiment.cards ritm-compact gto99-compact --jobs 2
    python -m iislib.experiment.cards --datasets berkeley,grabcut,davis --jobs 2   # all four, DAVIS too
    python -m iislib.experiment.cards official --images 20      # the paper's own pair
    python -m iislib.experiment.cards mymodel                   # an installed entry point

A shipped compact model's card goes to ``iislib/models/cards/`` (committed, with its training
facts); any other model's card (official weights from the weights folder, a user's model) goes
to ``results/cards/`` (``--out``), with what identifies it: its weights file and SHA256, or its
declared ``cache_version``.

For each model: NoC@85, NoC@90, NoF@90 and mIoU at 1, 5, 10, 20 clicks on Berkeley and GrabCut
(``--datasets``: any of Berkeley, GrabCut and DAVIS) under each of the seven robots with the ``ipol`` settings, beside the training-free
``random_walker`` measured the same way, plus the training facts stored with the weights and
the published numbers of the official models (which used other weights and protocols).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import pandas as pd

from iislib import paths
from iislib.atomic import write_text
from iislib.core.clicks import Click
from iislib.core.metrics import miou_at
from iislib.core.robots import ROBOT_NAMES
from iislib.experiment.data import DATASET_NAMES, load_dataset, resolve_datasets
from iislib.experiment.sweep import evaluate, summary
from iislib.models import OFFICIAL_PAIR, cache_version, get_model, resolve_names
from iislib.models import official as _official
from iislib.models.compact import COMPACT_NAMES, shipped_weights

CARDS_DIR = paths.PACKAGE / "models" / "cards"
BASELINE = "random_walker"
DATASETS = ("berkeley", "grabcut")
"""The datasets measured by default (``--datasets``: any of ``DATASET_NAMES``)."""

PUBLISHED = """\
From the official READMEs: other weights, other training data, and each
paper's own protocol with zoom-in/flip for RITM; NoC with the RITM rule. Not comparable
one-to-one with the measurements above, which use the `ipol` settings (224x224, direct passes).

| model (official weights) | GrabCut NoC@85 | GrabCut NoC@90 | Berkeley NoC@90 |
|---|---|---|---|
| RITM HRNet18 IT-M, SBD (`sbd_h18_itermask.pth`, the paper's ritm) | 1.76 | 2.04 | 3.22 |
| RITM HRNet18s IT-M, COCO+LVIS (`coco_lvis_h18s_itermask.pth`) | 1.54 | 1.68 | 2.60 |
| RITM HRNet18 IT-M, COCO+LVIS (`coco_lvis_h18_itermask.pth`) | 1.42 | 1.54 | 2.26 |
| gto99 (`InterSegSynthFT.pth`, the paper's gto99) | - | 1.74 | 2.93 |
"""


OLD_RUNS_NOTE = (
    "other jobs sharing the machine (the four compact models were trained at once: ~4 processes "
    "on 2 cores). A step alone costs ~0.9-1.1 s of one core at crop 160 (measured before the "
    "runs), so one run alone takes ~30-37 min"
)
"""Wall-time context of the runs that predate the ``machine_note`` and ``load_average`` fields."""


def wall_time(cfg: dict) -> str:
    """The card's wall-time cell: total, where each stretch of steps ran, and the machine note."""
    runs = cfg.get("runs") or []
    note = cfg.get("machine_note", OLD_RUNS_NOTE)
    if all(r.get("device", "cpu") == "cpu" for r in runs):
        return (f"{cfg['wall_seconds'] / 60:.1f} min on a 2-core CPU ({cfg['threads']} torch "
                f"thread(s), torch {cfg['torch']}); {note}")  # fmt: skip
    parts = []
    for r in runs:
        where = "the 2-core CPU" if r["device"] == "cpu" else r["device"]
        parts.append(f"steps {r['steps'][0]}-{r['steps'][1]} on {where}, "
                     f"{r['wall_seconds'] / 60:.1f} min ({r['threads']} torch thread(s))")  # fmt: skip
    return f"{cfg['wall_seconds'] / 60:.1f} min in all: " + "; ".join(parts) + f"; {note}"


def measure(names: list[str], data: str | None, jobs: int, max_clicks: int = 20,
            images: int | None = None,
            datasets: tuple[str, ...] = DATASETS) -> pd.DataFrame:  # fmt: skip
    """Summary rows (dataset, model, robot, NoC..., mIoU...) for ``names`` and the baseline.

    ``images``: only the first N images of each dataset (None: all); ``datasets``: which.
    """
    rows = []
    for ds_name in datasets:
        ds = load_dataset(ds_name, root=data).subset(images)
        table = evaluate([*names, BASELINE], ROBOT_NAMES, ds, max_clicks=max_clicks,
                         settings="ipol", n_jobs=jobs, cache_dir=paths.CACHE)  # fmt: skip
        s = summary(table, ks=(1, 5, 10, 20))
        s.insert(0, "dataset", ds_name)
        rows.append(s)
    return pd.concat(rows, ignore_index=True)


CHECK_IMAGES = 10
CHECK_ROBOT = "rgto99"


def subset_check(name: str, data: str | None = None, model=None) -> float:
    """Berkeley mIoU@5 on the first ``CHECK_IMAGES`` images under rgto99, ipol settings.

    Stored in the card's ``checks.json``; the test suite recomputes it from the shipped weights.
    """

    ds = load_dataset("berkeley", root=data).subset(CHECK_IMAGES)
    table = evaluate(model or [name], [CHECK_ROBOT], ds, max_clicks=5, settings="ipol",
                     progress=False)  # fmt: skip
    curves = table.pivot_table(index="image", columns="click", values="iou").to_numpy()
    return miou_at(curves, 5)


def predict_ms(name: str, threads: int, repeats: int = 20) -> tuple[float, float]:
    """Median milliseconds of ``predict`` on a 224x224 image with 3 clicks (pre- and
    post-processing included), alone and per image in a batch of 7 (one sweep step).
    Random image: the time does not depend on the content."""
    import time

    import numpy as np
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = get_model(name)
        rng = np.random.default_rng(0)
        img = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
        clicks = [Click(112, 112, True), Click(30, 40, False), Click(150, 100, True)]
        prev = rng.random((224, 224)).astype(np.float32)

        def median(f, n: int) -> float:
            f()
            ts = []
            for _ in range(n):
                t0 = time.perf_counter()
                f()
                ts.append(time.perf_counter() - t0)
            return 1000 * float(np.median(ts))

        one = median(lambda: model.predict(img, clicks, prev), repeats)
        seven = median(lambda: model.predict_batch([img] * 7, [clicks] * 7, [prev] * 7),
                       max(3, repeats // 4)) / 7  # fmt: skip
    finally:
        torch.set_num_threads(before)
    return one, seven


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``: network outputs,
    and so the random robots' rows, move in the last bits from one CPU to another
    (docs/decisions.md, "What is bit-stable")."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def speed_text(name: str) -> str:
    """The card's prediction-time cell: ``predict_ms`` at 1 and 2 threads."""
    return "; ".join(
        f"{t} thread{'s' if t > 1 else ''}: {a:.0f} ms (batch of 7: {b:.0f} ms per image)"
        for t in (1, 2)
        for a, b in [predict_ms(name, t)]
    )


def _md_table(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in frame.iterrows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def card(name: str, results: pd.DataFrame) -> str:
    """The markdown card of compact model ``name`` from measured ``results``."""
    import torch

    cfg = torch.load(shipped_weights(name), map_location="cpu", weights_only=True)["config"]
    rec = cfg["recipe"]
    # the datasets this model was measured on (the baseline may have been measured on more)
    results = results[results["dataset"].isin(results.loc[results.model == name, "dataset"])]
    cols = ["dataset", "robot", "model", "NoC@85", "NoC@90", "NoF@90",
            "mIoU@1", "mIoU@5", "mIoU@10", "mIoU@20"]  # fmt: skip
    mine = results[results.model.isin([name, BASELINE])][cols]
    mine = mine.sort_values(["dataset", "robot", "model"], key=lambda c: c.map(
        {r: i for i, r in enumerate(ROBOT_NAMES)}) if c.name == "robot" else c)  # fmt: skip
    noc = results.set_index(["dataset", "model", "robot"])["NoC@85"]
    beats = "; ".join(
        f"{ds}: "
        + ", ".join(
            f"under {r} **{'yes' if noc[(ds, name, r)] < noc[(ds, BASELINE, r)] else 'no'}** "
            f"({noc[(ds, name, r)]:.2f} against {noc[(ds, BASELINE, r)]:.2f})"
            for r in ("rgto99", "rritm")
        )
        for ds in dict.fromkeys(results["dataset"])
    )
    size = shipped_weights(name).stat().st_size / 1e6
    load = os.getloadavg()[0]
    speed = speed_text(name)
    return f"""# Model card: `{name}`

| | |
|---|---|
| family | {cfg["family"]} (`iislib.models.{cfg["family"]}`), compact member |
| architecture | `{cfg["arch"]}` |
| parameters | {cfg["parameters"]:,} ({size:.1f} MB shipped as float16) |
| training data | {", ".join(cfg["sets"])} (Weizmann horses 328, BSDS500 minus benchmark images 401); never Berkeley, GrabCut or DAVIS |
| training click procedure | `{cfg["procedure"]}` (`iislib.core.samplers`) |
| recipe | {cfg["steps"]} steps, batch {rec["batch_size"]}, crops {rec["crop"]}x{rec["crop"]}, Adam lr {rec["lr"]} (/10 after {rec["lr_drop_at"]:.0%}), 0-{rec["max_iters"]} no-grad click iterations, short side scaled to {rec.get("scale", "?")} x {rec.get("ref_side") or rec["crop"]} px before cropping, min-max stretch p={rec.get("minmax_prob", 0)}, seed {cfg["seed"]} |
| wall time | {wall_time(cfg)} |
| final training loss | {cfg["final_loss"]:.4f} |
| prediction time | 224x224, 3 clicks, `predict` incl. pre/post-processing, median: {speed} (load average {load:.1f} when measured) |
| retrain | `python -m iislib.training {name} --retrain` (reports the tensors that differ; add `--device cuda --prefetch 6` on a GPU) |

## Measured (this project, `ipol` settings: centre crop, 224x224, direct passes; 20 clicks)

Images per dataset: {", ".join(f"{d} {n}" for d, n in results.groupby("dataset")["images"].max().items())}.

NoF@90 counts images that never reach IoU 0.90 (docs/decisions.md, "NoF"). Beats `{BASELINE}` on
NoC@85 (fewer clicks): {beats}.

{_md_table(mine)}

## Published numbers of the official models

{PUBLISHED}
Machine: {platform.machine()} ({cpu_name()}, {os.cpu_count()} cores), Python {platform.python_version()}.
"""


OTHER_CARDS_DIR = paths.RESULTS / "cards"
"""Where the cards of models that are not shipped go (generated, never committed)."""


def other_card(name: str, results: pd.DataFrame) -> str:
    """The markdown card of a model that is not a shipped compact one: an official name (its
    file, link, SHA256 and published numbers) or a user's model (its cache_version)."""
    cols = ["dataset", "robot", "model", "NoC@85", "NoC@90", "NoF@90",
            "mIoU@1", "mIoU@5", "mIoU@10", "mIoU@20"]  # fmt: skip
    mine = results[results.model.isin([name, BASELINE])][cols]
    if name in _official.OFFICIAL:
        w = _official.OFFICIAL[name]
        path = _official.locate(name)
        published = "; ".join(f"{ds} {k} {v}" for (ds, k), v in w.published.items())
        facts = (f"| what | {w.what} |\n| file | `{w.file}` ({w.size} published), from {w.url} |\n"
                 f"| SHA256 | `{_official.sha256(path)}` |\n"
                 f"| published (own protocol) | {published} |")  # fmt: skip
    else:
        version = cache_version(name)
        facts = f"| user model | cache_version {version if version is not None else '(none)'} |"
    speed = speed_text(name)
    return f"""# Model card: `{name}`

| | |
|---|---|
{facts}
| prediction time | 224x224, 3 clicks, `predict` incl. pre/post-processing, median: {speed} (load average {os.getloadavg()[0]:.1f} when measured) |

## Measured (this project, `ipol` settings: centre crop, 224x224, direct passes)

Images per dataset: {", ".join(f"{d} {n}" for d, n in results.groupby("dataset")["images"].max().items())}.

{_md_table(mine)}

## Published numbers of the official models

{PUBLISHED}
Machine: {platform.machine()} ({cpu_name()}, {os.cpu_count()} cores), Python {platform.python_version()}.
"""


def _other_cards(names: list[str], args: argparse.Namespace, datasets: tuple[str, ...]) -> int:
    """Measure and write the cards of models that are not shipped compact ones."""
    try:
        resolve_names(names)  # a missing official file or a broken package: one line, no work
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = measure(names, args.data, args.jobs, images=args.images, datasets=datasets)
    out = Path(args.out) if args.out else OTHER_CARDS_DIR
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "measured.csv", results.to_csv(index=False, float_format="%.4f"))
    for name in names:
        write_text(out / f"{name}.md", other_card(name, results))
        print(f"wrote {out / f'{name}.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m iislib.experiment.cards", description=__doc__.split("\n")[0]
    )
    p.add_argument("names", nargs="*", default=list(COMPACT_NAMES),
                   help="compact models (default: all four), 'official' (the paper's pair), "
                   "official names, or a user's model (entry point, package.module:factory)")  # fmt: skip
    p.add_argument("--out", default=None,
                   help=f"folder of the cards of models that are not shipped (default "
                   f"{OTHER_CARDS_DIR})")  # fmt: skip
    p.add_argument("--data", default=None)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--images", type=int, default=None, help="first N images of each dataset")
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma list of {', '.join(DATASET_NAMES)}, or 'all' (default "
                        f"{','.join(DATASETS)})")  # fmt: skip
    p.add_argument("--from-measured", action="store_true",
                   help="rewrite the cards from measured.csv (after a change to their text): "
                        "no sweep, only the prediction times are measured again")  # fmt: skip
    args = p.parse_args(argv)
    try:
        datasets = tuple(resolve_datasets(args.datasets, "--datasets"))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wanted = [m for n in args.names for m in (OFFICIAL_PAIR.values() if n == "official" else [n])]
    others = [n for n in dict.fromkeys(wanted) if n not in COMPACT_NAMES]
    if others:
        if len(others) < len(set(wanted)):
            print("error: measure the shipped compact models and the others in separate runs "
                  "(their cards go to different folders)", file=sys.stderr)  # fmt: skip
            return 2
        return _other_cards(others, args, datasets)
    names = [n for n in args.names if shipped_weights(n).is_file()]
    if not names:
        print("error: none of these models has shipped weights", file=sys.stderr)
        return 2
    measured = CARDS_DIR / "measured.csv"
    if not args.from_measured:
        results = measure(names, args.data, args.jobs, images=args.images, datasets=datasets)
        CARDS_DIR.mkdir(parents=True, exist_ok=True)
        if measured.is_file():
            # keep the other models' rows; a remeasured model's older rows go, whatever their
            # image count: they may come from weights that have since been replaced. The
            # baseline has no weights: its rows on datasets not measured now stay, as the
            # other models' cards compare with them.
            old = pd.read_csv(measured)
            again = old["model"].isin(results["model"].unique()) & (
                (old["model"] != BASELINE) | old["dataset"].isin(results["dataset"].unique())
            )
            results = pd.concat([old[~again], results])
        write_text(measured, results.to_csv(index=False, float_format="%.4f"))
        checks_file = CARDS_DIR / "checks.json"
        checks = json.loads(checks_file.read_text()) if checks_file.is_file() else {}
        for name in names:
            checks[name] = {
                "berkeley_first10_rgto99_ipol_miou@5": round(subset_check(name, args.data), 4)
            }
        write_text(checks_file, json.dumps(checks, indent=2) + "\n")
    # the cards are always written from measured.csv, so they show exactly its numbers
    if not measured.is_file():
        print(f"error: {measured} does not exist; measure first", file=sys.stderr)
        return 2
    results = pd.read_csv(measured)
    missing = sorted(set(names) - set(results["model"]))
    if missing:
        print(f"error: {measured} has no rows for {', '.join(missing)}", file=sys.stderr)
        return 2
    for name in names:
        write_text(CARDS_DIR / f"{name}.md", card(name, results))
        print(f"wrote {CARDS_DIR / f'{name}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
