"""How far the fast inference path is from the plain network, and how far threads move each.

    .venv/bin/python benchmarks/bench_equivalence.py            # ritm h18 and gto99, 224x224
    .venv/bin/python benchmarks/bench_equivalence.py --size 321x481 --seed 3

The "plain" path is ``fast=False`` (the network as written: NCHW, unfolded BatchNorms, stock
convolutions and concatenations, the official computation); the "fast" path is the default
(``iislib.models.fast``: channels_last, oneDNN 1x1 convolutions, NHWC concatenations and, for
RITM, BatchNorms folded into the convolutions). Both run through the models' own ``predict``
code on the same random weights, whose BatchNorm statistics are randomised too (so that
folding has something to fold). The table prints the largest absolute
difference of probabilities (and RITM's logits) and the number of pixels whose 0.5 cut differs,
for fast vs plain at 1 and at 2 torch threads, and for each path between 1 and 2 threads.
gto99's Gaussian click maps are computed once per click map here: OpenCV's precise distance
transform, which they use, differs in the last bit from call to call (it depends on where its
buffers lie), and the guided filter would add that noise to every comparison.
docs/decisions.md ("tolerances") records a run of this script.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from iislib.core.clicks import Click


def _randomise_norm_stats(net: torch.nn.Module, gen: torch.Generator) -> None:
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def _inputs(h: int, w: int, seed: int) -> tuple[np.ndarray, list[Click], np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    clicks = [
        Click(h // 2, w // 2, True),
        Click(h // 4, w // 3, False),
        Click(h // 3, w // 2, True),
    ]
    prev = (rng.random((h, w)) > 0.5).astype(np.float32)
    return image, clicks, prev


def ritm_outputs(h: int, w: int, seed: int, threads: int) -> dict[str, np.ndarray]:
    """RITM h18 logits (``RITM.predict_logits``), fast and plain."""
    from iislib.models.ritm import RITM, build_ritm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = build_ritm("h18").eval()
    _randomise_norm_stats(net, torch.Generator().manual_seed(seed))
    image, clicks, prev = _inputs(h, w, seed)
    img = image[None].astype(np.float32) / 255
    pts = [[(c.row, c.col, c.positive) for c in clicks]]
    out = {}
    for path, fast in (("fast", True), ("plain", False)):
        model = RITM(net=copy.deepcopy(net), fast=fast)
        out[f"{path} logits"] = model.predict_logits(img, pts, prev[None])[0]
    return out


def _spread_alpha(net: torch.nn.Module, image: np.ndarray, clicks: list[Click]) -> None:
    """Rescale gto99's last convolution so its alpha spreads around 0.5 (std 0.2).

    With random weights the alpha lies beyond [0, 1] almost everywhere, and the clamps would
    hide every difference.
    """
    from iislib.models.gto99 import GTO99

    probe = copy.deepcopy(net)
    seen: list[torch.Tensor] = []
    probe.decoder.conv_up4[-1].register_forward_hook(
        lambda m, i, o: seen.append(o.detach().clone())
    )
    GTO99(net=probe, fast=False).predict(image, clicks)
    out = seen[0]
    scale = 0.2 / float(out.std())
    last = net.decoder.conv_up4[-1]
    with torch.no_grad():
        last.weight.mul_(scale)
        last.bias.mul_(scale).add_(0.5 - float(out.mean()) * scale)


_GAUSSIANS: dict[tuple, np.ndarray] = {}


def _stable_gaussians() -> None:
    """One result per click map for ``gaussian_click_maps`` (see the module docstring)."""
    import iislib.models.gto99 as G

    real = G.gaussian_click_maps
    if getattr(real, "stable", False):
        return

    def memo(cmap: np.ndarray) -> np.ndarray:
        key = (cmap.shape, cmap.tobytes())
        if key not in _GAUSSIANS:
            _GAUSSIANS[key] = real(cmap)
        return _GAUSSIANS[key].copy()

    memo.stable = True  # type: ignore[attr-defined]
    G.gaussian_click_maps = memo


def gto99_outputs(h: int, w: int, seed: int, threads: int) -> dict[str, np.ndarray]:
    """gto99 (full ResNet-50) probabilities (``GTO99.predict``), fast and plain."""
    from iislib.models.gto99 import GTO99, build_gto99

    _stable_gaussians()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    net = build_gto99().eval().requires_grad_(False)
    image, clicks, _ = _inputs(h, w, seed)
    _spread_alpha(net, image, clicks)
    return {
        f"{path} prob": GTO99(net=copy.deepcopy(net), fast=fast).predict(image, clicks)
        for path, fast in (("fast", True), ("plain", False))
    }


def _row(what: str, a: np.ndarray, b: np.ndarray, prob: bool) -> str:
    if not prob:  # logits: compare them, and the probabilities they give
        pa, pb = 1 / (1 + np.exp(-a.astype(np.float64))), 1 / (1 + np.exp(-b.astype(np.float64)))
        d_logit = float(np.abs(a.astype(np.float64) - b).max())
    else:
        pa, pb, d_logit = a.astype(np.float64), b.astype(np.float64), float("nan")
    flips = int(((pa > 0.5) != (pb > 0.5)).sum())
    logit = "" if np.isnan(d_logit) else f"{d_logit:.2g}"
    return f"| {what} | {float(np.abs(pa - pb).max()):.2g} | {logit} | {flips} |"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="224x224", help="HxW")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", default="ritm,gto99")
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    print(f"torch {torch.__version__}, {h}x{w}, seed {args.seed}")
    print("| comparison | max abs diff (prob) | max abs diff (logit) | pixels flipped at 0.5 |")
    print("|---|---|---|---|")
    for name in args.models.split(","):
        fn, fast_key, plain_key, prob = {
            "ritm": (ritm_outputs, "fast logits", "plain logits", False),
            "gto99": (gto99_outputs, "fast prob", "plain prob", True),
        }[name]
        one, two = fn(h, w, args.seed, 1), fn(h, w, args.seed, 2)
        label = "ritm h18" if name == "ritm" else "gto99"
        print(_row(f"{label}: fast vs plain, 1 thread", one[fast_key], one[plain_key], prob))
        print(_row(f"{label}: fast vs plain, 2 threads", two[fast_key], two[plain_key], prob))
        print(_row(f"{label}: plain, 1 vs 2 threads", one[plain_key], two[plain_key], prob))
        print(_row(f"{label}: fast, 1 vs 2 threads", one[fast_key], two[fast_key], prob))


if __name__ == "__main__":
    main()
