"""Train the compact ritm- and gto99-family models on this machine, seeded and resumable.

    python -m iislib.training ritm-compact --recipe full --data ../shared/data --out build/train
    python -m iislib.training ritm-compact --recipe long --device cuda --prefetch 6 --data ...
    python -m iislib.training ritm-compact --retrain   # from scratch with the shipped settings, diff

Recipes: ``full`` fits an hour per model on a 2-core CPU; ``long`` (4x the samples) is meant for
a GPU. A checkpoint holds CPU tensors, so a run can move between machines; the exported config
records where each stretch of steps ran (``runs``).

Four models, the 2x2 of family x training click procedure (``iislib.core.samplers``):

========================= ======= =========== =============================================
name                      family  procedure   role
========================= ======= =========== =============================================
ritm-compact              ritm    ritm        the paper's ritm, compact
gto99-compact             gto99   gto99       the paper's gto99, compact
ritm-compact-gto99proc    ritm    gto99       isolates the training procedure
gto99-compact-ritmproc    gto99   ritm        isolates the training procedure
========================= ======= =========== =============================================

One step: a batch of augmented crops; initial clicks of the procedure; 0..``max_iters`` no-grad
iterations, each adding the procedure's next click on the network's own prediction; one graded
forward pass with the last previous mask. Every random draw of step s comes from generators
seeded by (seed, s), so a run resumed from a checkpoint gives the same weights as one that was
never interrupted. Checkpoints (network, optimiser, step, losses) are written atomically every
``checkpoint_every`` steps.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from iislib.atomic import write_bytes
from iislib.core.clicks import Click
from iislib.core.loop import make_rng
from iislib.core.samplers import PROCEDURES, initial_clicks, next_click
from iislib.models.base import Family
from iislib.models.compact import (
    DESIGN,
    WEIGHTS_DIR,
    annotate,
    compare_weights,
    export,
    load_compact,
    save_atomic,
)
from iislib.models.families import get_family
from iislib.runtime import set_threads
from iislib.training.data import TrainItem, augment, load_training_set


@dataclass(frozen=True)
class Recipe:
    """Optimisation settings of one training run."""

    steps: int
    batch_size: int = 8
    crop: int = 192
    lr: float = 5e-4
    backbone_lr_mult: float = 1.0
    max_iters: int = 3
    checkpoint_every: int = 100
    lr_drop_at: float = 0.85  # fraction of the steps after which the lr is divided by 10
    # Scale images as the test images are (short side ~224 under ``ipol``): trained on whole
    # images shrunk into the crop, the first models saw objects half the size of the test ones.
    ref_side: int | None = 224
    scale: tuple[float, float] = (0.7, 1.3)
    minmax_prob: float = 0.5
    # RITM's normalised focal loss suits fine-tuning a pretrained backbone; from scratch, with a
    # few thousand samples, it left the compact net near 0.5 everywhere: plain BCE learns faster.
    ritm_loss: str = "bce"


RECIPES: dict[str, Recipe] = {
    "full": Recipe(steps=3200, crop=160, lr=1e-3),
    # 4x the samples of "full": for a GPU (python -m iislib.training NAME --recipe long --device cuda
    # --prefetch 6); ~4 h per model on the 2-core CPU.
    "long": Recipe(steps=6400, batch_size=16, crop=160, lr=1e-3, checkpoint_every=200),
    "smoke": Recipe(steps=4, batch_size=2, crop=64, max_iters=1, checkpoint_every=2),
}


@dataclass(frozen=True)
class CompactSpec:
    family: str
    procedure: str


COMPACT: dict[str, CompactSpec] = {name: CompactSpec(*fp) for name, fp in DESIGN.items()}


# ----------------------------------------------------------------------------------------------
# one step


def make_batch(items: list[TrainItem], recipe: Recipe, procedure: str, rng: np.random.Generator):
    """Images float32 (B, S, S, 3) in [0, 1], targets bool (B, S, S), initial clicks per item."""
    images, gts, clicks = [], [], []
    for _ in range(recipe.batch_size):
        item = items[int(rng.integers(len(items)))]
        img, gt, others = augment(
            item, rng, size=recipe.crop, scale=recipe.scale, ref_side=recipe.ref_side,
            minmax_prob=recipe.minmax_prob,
        )  # fmt: skip
        images.append(img.astype(np.float32) / 255.0)
        gts.append(gt)
        clicks.append(initial_clicks(procedure, gt, rng, others))
    return np.stack(images), np.stack(gts), clicks


@dataclass
class StepInput:
    """What step ``step`` draws before the network is involved (the batch and its clicks).

    ``rng`` is the step's generator after the batch was drawn: the rest of the step goes on
    drawing from it, so a StepInput made in another process gives the same step as one made here.
    """

    step: int
    torch_seed: int
    images: np.ndarray
    gts: np.ndarray
    clicks: list[list[Click]]
    rng: np.random.Generator


def step_input(items, recipe: Recipe, procedure: str, seed: int, step: int) -> StepInput:
    """The batch of step ``step``; all its randomness is derived from (seed, step)."""
    rng = make_rng(seed, "train-step", str(step))
    torch_seed = int(rng.integers(2**31))
    images, gts, clicks = make_batch(items, recipe, procedure, rng)
    return StepInput(step, torch_seed, images, gts, clicks, rng)


def train_step(
    net, opt, family: str | Family, procedure: str, items, recipe: Recipe, seed: int, step: int,
    prepared: StepInput | None = None,
) -> float:  # fmt: skip
    """One optimisation step; all its randomness is derived from (seed, step).

    ``family``: its name or adapter. ``prepared``: this step's ``step_input`` when it was made
    ahead (e.g. by a worker process).
    """
    s = prepared if prepared is not None else step_input(items, recipe, procedure, seed, step)
    if s.step != step:
        raise ValueError(f"step input of step {s.step} given to step {step}")
    fam = get_family(family) if isinstance(family, str) else family
    torch.manual_seed(s.torch_seed)
    images, gts, clicks, rng = s.images, s.gts, s.clicks, s.rng
    prev = np.zeros(gts.shape, np.float32)
    n_iters = int(rng.integers(recipe.max_iters + 1))
    if n_iters:
        net.eval()
        with torch.no_grad():
            for _ in range(n_iters):
                main, _ = fam.forward_train(net, images, clicks, prev)
                prev = fam.probabilities(main)
                for b in range(len(clicks)):
                    c = next_click(procedure, prev[b], gts[b], clicks[b], rng)
                    if c is not None:
                        clicks[b] = clicks[b] + [c]
    net.train()
    main, aux = fam.forward_train(net, images, clicks, prev)
    target = torch.from_numpy(gts[:, None].astype(np.float32)).to(main.device)
    loss = fam.loss(main, aux, target, recipe)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


# ----------------------------------------------------------------------------------------------
# step inputs made ahead in worker processes

_WORKER: dict[str, Any] = {}  # a worker process's items, recipe, procedure and seed


def _worker_init(state: dict[str, Any]) -> None:
    set_threads(1)
    _WORKER.update(state)


def _worker_step_input(step: int) -> StepInput:
    w = _WORKER
    return step_input(w["items"], w["recipe"], w["procedure"], w["seed"], step)


def step_inputs(
    items, recipe: Recipe, procedure: str, seed: int, steps: Iterable[int], workers: int = 0
) -> Iterator[StepInput]:
    """The step inputs of ``steps`` in order; ``workers`` > 0 makes them ahead in worker processes.

    At most 2 x ``workers`` inputs wait at a time (memory stays flat). The inputs are the same
    as those made here (seeded by step), so the weights do not depend on ``workers``. The workers
    are spawned, not forked (a fork of a process that ran torch's thread pool can hang), and each
    holds a copy of ``items``.
    """
    if workers <= 0:
        return (step_input(items, recipe, procedure, seed, s) for s in steps)
    state = dict(items=items, recipe=recipe, procedure=procedure, seed=seed)
    pool = multiprocessing.get_context("spawn").Pool(
        workers, initializer=_worker_init, initargs=(state,)
    )

    def gen() -> Iterator[StepInput]:
        todo = iter(steps)
        pending: deque = deque()
        try:
            for s in todo:
                pending.append(pool.apply_async(_worker_step_input, (s,)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                ready = pending.popleft().get()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(pool.apply_async(_worker_step_input, (nxt,)))
                yield ready
        finally:
            pool.terminate()

    return gen()


def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto": CUDA when available, else the CPU."""
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device")
    return dev


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return "cpu"


# ----------------------------------------------------------------------------------------------
# the run: checkpoints, resume, export


def _cpu(obj: Any) -> Any:
    """``obj`` with every tensor in it moved to the CPU (checkpoints load on any machine)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def _plain(obj: Any) -> Any:
    """``obj`` with tuples turned into lists (compares configs whatever their sequence types)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


CHECKPOINT_KEYS = ("net", "opt", "step", "losses", "wall_seconds", "config")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A resumable training checkpoint, read with ``weights_only=True`` (no code runs from it).

    A checkpoint holds only tensors (CPU) and plain types: the network's and Adam's state dicts,
    the step, the losses (floats), the wall time and the config. Anything else, e.g. a pickle
    that would run code, is refused with a ValueError naming the file.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{path}: not a resumable iislib training checkpoint ({first}); nothing from it was "
            "run. Remove it, or pass --fresh to start over."
        ) from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"{path}: not a resumable iislib training checkpoint (no {missing})")
    return state


def _optimizer(net: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    return torch.optim.Adam(net.parameters(), lr=recipe.lr, betas=(0.9, 0.999))


def _set_lr(opt: torch.optim.Optimizer, recipe: Recipe, step: int) -> None:
    lr = recipe.lr * (0.1 if step >= recipe.lr_drop_at * recipe.steps else 1.0)
    for g in opt.param_groups:
        g["lr"] = lr


def train(
    name: str,
    data_root: str | Path,
    out_dir: str | Path,
    recipe: Recipe | str = "full",
    seed: int = 0,
    sets: tuple[str, ...] = ("horses", "bsds"),
    resume: bool = True,
    progress: bool = True,
    threads: int | None = None,
    stop_after: int | None = None,
    device: str | None = "cpu",
    prefetch: int = 0,
) -> Path:
    """Train compact model ``name``; return the exported weights file (``out_dir/NAME.pt``).

    Args:
        name: one of ``COMPACT``.
        data_root: folder holding ``train_weizmann_horses/`` and ``train_bsds500_nonbench/``.
        out_dir: where ``NAME.ckpt`` (resumable checkpoint) and ``NAME.pt`` (weights) go.
        recipe: a Recipe or the name of one in ``RECIPES``.
        resume: continue from ``out_dir/NAME.ckpt`` when it exists.
        stop_after: stop (checkpointed) after this many steps in this call, as an interruption.
        device: "cpu", "cuda", ... or None for CUDA when available. A GPU run draws the same
            batches as a CPU run but computes in another order, so its weights differ in the
            last bits at first and grow apart (its predictions also steer the added clicks).
        prefetch: worker processes that make the batches ahead (0: none; same weights either way).
    """
    if name not in COMPACT:
        raise ValueError(f"unknown compact model {name!r}; known: {', '.join(COMPACT)}")
    spec = COMPACT[name]
    if spec.procedure not in PROCEDURES:
        raise ValueError(f"unknown procedure {spec.procedure!r}")
    recipe_name = recipe if isinstance(recipe, str) else "custom"
    recipe = RECIPES[recipe] if isinstance(recipe, str) else recipe
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: the fastest kernels, found once
    out_dir = Path(out_dir)
    ckpt_path = out_dir / f"{name}.ckpt"
    family = get_family(spec.family)
    arch = family.compact_arch()
    torch.manual_seed(seed)
    net = family.train_net(family.build_net(arch))
    net.to(dev)  # before the optimiser: a resumed Adam state then loads onto ``dev`` as well
    opt = _optimizer(net, recipe)
    start, losses, wall = 0, [], 0.0
    runs: list[dict[str, Any]] = []  # where each stretch of steps ran (a resume may move machines)
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        if (
            _plain(state["config"]["recipe"]) != _plain(asdict(recipe))
            or state["config"]["seed"] != seed
        ):
            raise ValueError(f"{ckpt_path} was written with another recipe or seed; remove it")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        start, losses, wall = state["step"], state["losses"], state["wall_seconds"]
        old = state["config"]
        runs = old.get("runs") or [
            {"steps": [0, start], "device": old.get("device", "cpu"),
             "threads": old.get("threads"), "wall_seconds": round(wall, 1)}
        ]  # fmt: skip
    items = load_training_set(data_root, sets)
    end = recipe.steps if stop_after is None else min(recipe.steps, start + stop_after)
    inputs = step_inputs(items, recipe, spec.procedure, seed, range(start, end), prefetch)
    config = {
        "name": name, "family": spec.family, "procedure": spec.procedure, "arch": arch,
        "recipe": asdict(recipe), "recipe_name": recipe_name, "seed": seed, "sets": list(sets),
        "parameters": sum(p.numel() for p in net.parameters()),
        "torch": str(torch.__version__), "threads": torch.get_num_threads(),
        "device": device_name(dev),
        "runs": runs,
    }  # fmt: skip

    loads: list[float] = []  # 1-min load averages: how busy the machine was (wall-time context)

    wall_before = wall

    def checkpoint(step: int) -> None:
        here = {"steps": [start, step], "device": config["device"], "threads": config["threads"],
                "wall_seconds": round(wall - wall_before, 1)}  # fmt: skip
        config["runs"] = [*runs, here]
        save_atomic({"net": _cpu(net.state_dict()), "opt": _cpu(opt.state_dict()), "step": step,
                      "losses": [float(x) for x in losses], "wall_seconds": float(wall),
                      "config": config}, ckpt_path)  # fmt: skip

    bar = tqdm(
        range(start, end), initial=start, total=recipe.steps, desc=name, disable=not progress
    )
    for step, prepared in zip(bar, inputs, strict=True):
        t0 = time.perf_counter()
        _set_lr(opt, recipe, step)
        losses.append(
            train_step(net, opt, family, spec.procedure, items, recipe, seed, step, prepared)
        )
        wall += time.perf_counter() - t0
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        if (step + 1) % recipe.checkpoint_every == 0 or step + 1 == end:
            loads.append(os.getloadavg()[0])
            checkpoint(step + 1)
    bar.close()
    if end < recipe.steps:
        return ckpt_path
    config["steps"] = recipe.steps
    config["wall_seconds"] = round(wall, 1)
    config["final_loss"] = float(np.mean(losses[-50:]))
    if loads:
        config["load_average"] = round(float(np.mean(loads)), 2)
        config.setdefault(
            "machine_note",
            f"mean 1-min load average {config['load_average']:.1f} while it trained",
        )
    return export(net, config, out_dir / f"{name}.pt")


# ----------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m iislib.training", description=__doc__.split("\n")[0]
    )
    p.add_argument("name", choices=list(COMPACT))
    p.add_argument("--recipe", default="full", choices=list(RECIPES))
    p.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    p.add_argument("--data", default=os.environ.get("IISLIB_DATA"), help="training data root")
    p.add_argument("--out", default="build/train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sets", default="horses,bsds")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", help='"cpu", "cuda" or "auto" (CUDA when available)')
    p.add_argument("--prefetch", type=int, default=0, metavar="N",
                   help="worker processes making the batches ahead (same weights; 0: none)")  # fmt: skip
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--retrain", action="store_true",
                   help="train from scratch with the shipped model's settings and diff the weights")  # fmt: skip
    p.add_argument("--ship", action="store_true", help="copy the result into iislib/models/weights")
    args = p.parse_args(argv)
    if not args.data:
        print("error: give --data or set IISLIB_DATA", file=sys.stderr)
        return 2
    recipe: Recipe | str = args.recipe
    seed, sets = args.seed, tuple(args.sets.split(","))
    shipped = WEIGHTS_DIR / f"{args.name}.pt"
    if args.retrain:
        if not shipped.is_file():
            print(f"error: {shipped} is not shipped", file=sys.stderr)
            return 2
        cfg = torch.load(shipped, map_location="cpu", weights_only=True)["config"]
        recipe, seed, sets = Recipe(**cfg["recipe"]), cfg["seed"], tuple(cfg["sets"])
        args.fresh = True
    elif args.steps:
        recipe = replace(RECIPES[args.recipe], steps=args.steps)
    out = Path(args.out)
    if args.fresh:
        (out / f"{args.name}.ckpt").unlink(missing_ok=True)
    path = train(
        args.name, args.data, out, recipe, seed=seed, sets=sets, threads=args.threads,
        device=args.device, prefetch=args.prefetch,
    )  # fmt: skip
    cfg = torch.load(path, map_location="cpu", weights_only=True)["config"]
    print(
        json.dumps(
            {k: cfg[k] for k in ("name", "parameters", "steps", "wall_seconds", "final_loss")}
        )
    )
    if args.retrain:
        diffs = compare_weights(shipped, path)
        changed = [(k, d) for k, d in diffs if d > 0]
        print(f"{len(changed)} of {len(diffs)} tensors differ from {shipped}")
        for k, d in changed[:20]:
            print(f"  {k}: max |diff| {d:.3g}")
    if args.ship:
        WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
        if path.parent == WEIGHTS_DIR:
            os.replace(path, shipped)
        else:
            write_bytes(shipped, path.read_bytes())  # a copy that is never half-written
        print(f"shipped {shipped} ({shipped.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "COMPACT",
    "RECIPES",
    "Recipe",
    "StepInput",
    "annotate",
    "compare_weights",
    "export",
    "load_checkpoint",
    "load_compact",
    "main",
    "step_input",
    "step_inputs",
    "train",
    "train_step",
]
