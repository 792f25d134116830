"""Seconds per forward pass of the networks on the CPU, by input size and thread count.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_networks.py
    .venv/bin/python benchmarks/bench_networks.py --models ritm-h18s --sizes 224x224 --threads 1,2

Each entry of ``BUILDERS`` maps a name to ``builder(h, w, fast) -> (forward, n_parameters)``: the
builder makes the network (random weights: the speed does not depend on them) and inputs of size
h x w once; ``forward()`` runs one batch-1 forward pass under ``torch.no_grad()``. ``--paths``
picks the plain network (``fast=False``), the fast inference path (``iislib.models.fast``:
channels_last, oneDNN 1x1 convolutions, NHWC concatenations, RITM's folded BatchNorms) or both. Add a network by
adding an entry. The table reports the median and the minimum wall time over ``--repeats``
passes after ``--warmup`` passes, and the median process CPU time, in milliseconds. On a shared
machine the CPU time of a 1-thread run is the better estimate of the uncontended speed (time spent
waiting for a core is not counted); with several threads it adds up the threads' time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

Forward = Callable[[], object]
Builder = Callable[[int, int, bool], tuple[Forward, int]]


def _layout(x: torch.Tensor, fast: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last if fast else torch.contiguous_format)


def _ritm(variant: str) -> Builder:
    def build(h: int, w: int, fast: bool) -> tuple[Forward, int]:
        from iislib.models.ritm import RITM, build_ritm, points_tensor

        model = RITM(net=build_ritm(variant), fast=fast)
        net = model.forward_net  # fast: the BatchNorm-folded copy
        x = _layout(torch.rand(1, 4, h, w), fast)
        points = points_tensor([[(h // 2, w // 2, True), (h // 4, w // 4, False)]])

        @torch.no_grad()
        def forward() -> object:
            return net(x, points)

        return forward, sum(p.numel() for p in model.net.parameters())

    return build


def _gto99(compact: bool) -> Builder:
    def build(h: int, w: int, fast: bool) -> tuple[Forward, int]:
        from iislib.models.fast import accelerate
        from iislib.models.gto99 import COMPACT_GTO99, build_gto99, scaled_size

        net = build_gto99(**(COMPACT_GTO99 if compact else {})).eval().requires_grad_(False)
        if fast:
            accelerate(net)
        # gto99 runs at the size rounded up to multiples of 32 (481x321 -> 512x352).
        h1, w1 = scaled_size(h, w)
        x = tuple(
            _layout(t, fast)
            for t in (
                torch.randn(1, 3, h1, w1),
                torch.rand(1, 6, h1, w1),
                torch.rand(1, 1, h1, w1),
                torch.zeros(1, 2, h1, w1),
            )
        )

        @torch.no_grad()
        def forward() -> object:
            return net(*x)

        return forward, sum(p.numel() for p in net.parameters())

    return build


BUILDERS: dict[str, Builder] = {
    "ritm-h18s": _ritm("h18s"),
    "ritm-h18": _ritm("h18"),
    "ritm-compact": _ritm("compact"),
    "gto99": _gto99(compact=False),
    "gto99-compact": _gto99(compact=True),
}
"""Network name -> builder; the gto99 network is added here by its own module's entry."""


def time_forward(forward: Forward, repeats: int, warmup: int) -> tuple[float, float, float]:
    """(median wall, min wall, median process CPU) seconds of ``forward()`` over ``repeats``
    calls after ``warmup`` calls."""
    for _ in range(warmup):
        forward()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        forward()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(BUILDERS), help="comma list of BUILDERS names")
    ap.add_argument("--sizes", default="224x224,481x321", help="comma list of WIDTHxHEIGHT")
    ap.add_argument("--threads", default="1,2", help="comma list of torch thread counts")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--paths", default="fast,plain", help="comma list of fast, plain")
    args = ap.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in BUILDERS]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; known: {', '.join(BUILDERS)}")
    sizes = [_size(s) for s in args.sizes.split(",") if s]
    threads = [int(t) for t in args.threads.split(",") if t]
    paths = [p for p in args.paths.split(",") if p]
    if not set(paths) <= {"fast", "plain"}:
        raise SystemExit(f"--paths takes fast and/or plain, got {args.paths!r}")

    print(
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(
        f"{'model':<16}{'path':>6}{'params':>12}{'size (WxH)':>12}{'threads':>9}"
        f"{'median ms':>11}{'min ms':>9}{'cpu ms':>9}"
    )
    for name in names:
        for h, w in sizes:
            for path in paths:
                forward, n_params = BUILDERS[name](h, w, path == "fast")
                for t in threads:
                    torch.set_num_threads(t)
                    med, low, cpu = time_forward(forward, args.repeats, args.warmup)
                    print(
                        f"{name:<16}{path:>6}{n_params:>12,}{f'{w}x{h}':>12}{t:>9}"
                        f"{med * 1e3:>11.1f}{low * 1e3:>9.1f}{cpu * 1e3:>9.1f}"
                    )


if __name__ == "__main__":
    main()
