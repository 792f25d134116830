"""The CPU speed-ups of inference, in one place, applied once to a plain network.

The networks (``hrnet``, ``ritm``, ``resnet_gn``, ``gto99``) are written as plain PyTorch. A
model built for inference (``get_model(name)``; ``fast=False`` turns this off) runs them through
``accelerate``, which changes how they compute, not what (the values agree to float rounding,
docs/decisions.md "Tolerances"; ``benchmarks/bench_equivalence.py`` measures it):

1. weights in channels_last (NHWC) layout: oneDNN convolutions are 20-30% faster in it;
2. every ``nn.Conv2d`` runs its 1x1 inference convolutions with oneDNN (``FastConv2d``):
   PyTorch sends them to a generic GEMM path when it runs one thread on a batch under 16, a
   rule tuned for NCHW that is up to 6x slower on NHWC input with few channels;
3. every ``layers.Concat`` concatenates NHWC tensors as NHWC (``FastConcat``): ``torch.cat``
   along channels of channels_last tensors takes a slow strided path (3-6x slower), and a
   mixed-layout ``torch.cat`` returns NCHW, after which the next convolution converts back;
4. RITM's click disks are drawn only in a window around each click (``WindowedDistMaps``),
   with the very float32 distances of the full computation, so the maps are identical;
5. weight standardisation (gto99) is computed once per weight version, not at every pass;
6. RITM predicts with a copy of its network whose BatchNorms are folded into the convolutions
   (``fold_batchnorm``; 7% of a compact RITM pass).

Steps 1-5 are safe while training (the oneDNN routing and the weight cache step aside when
gradients are needed), and ``iislib.training.train`` runs them as it always has: gto99 all five, RITM
steps 2 and 4 (its network stays NCHW; the oneDNN routing still applies, in the no-grad passes
that place the training clicks, to the OCR head's (B, C, 1, 1) tensors, which count as
channels_last). Without them the trained weights would differ in the last bits.
The glibc allocator tuning of sweep workers (``iislib.runtime.keep_freed_memory``) is a
process-wide setting of the sweep, not of a network, and stays there.
"""

from __future__ import annotations

import copy
import math
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from iislib.models.layers import Concat, DistMaps
from iislib.models.resnet_gn import WSConv2d

# -- NHWC concatenation -------------------------------------------------------------------------


def _is_nhwc(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def cat_channels(tensors: Sequence[torch.Tensor], nhwc: bool | None = None) -> torch.Tensor:
    """``torch.cat(tensors, 1)`` for (B, C_i, H, W) tensors; NHWC in, NHWC out.

    When the first tensor is channels_last and not also NCHW-contiguous, or ``nhwc`` is True,
    the concatenation runs on the NHWC views, which is a plain copy of contiguous rows (3-6x
    faster than ``torch.cat`` on this layout) and gives a channels_last result whatever the
    layout of the others. Otherwise (e.g. training on NCHW) it is ``torch.cat``. The values are
    identical either way.
    """
    if nhwc is None:
        nhwc = _is_nhwc(tensors[0]) and not tensors[0].is_contiguous()
    if not nhwc:
        return torch.cat(list(tensors), 1)
    return torch.cat([t.permute(0, 2, 3, 1) for t in tensors], 3).permute(0, 3, 1, 2)


class FastConcat(Concat):
    """``Concat`` through ``cat_channels``; ``nhwc``: None decides per call from the first
    tensor, True always concatenates as NHWC."""

    nhwc: bool | None = None

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return cat_channels(tensors, self.nhwc)


# -- 1x1 convolutions on oneDNN -----------------------------------------------------------------

POINTWISE_MIN_OUT = 8
"""1x1 convolutions with fewer outputs stay on PyTorch's own path, which is faster for them."""


def _onednn_pointwise(x: torch.Tensor, weight: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether ``conv`` applied to ``x`` is an inference 1x1 convolution that oneDNN runs faster."""
    return (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding in ((0, 0), "valid")
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and weight.shape[0] >= POINTWISE_MIN_OUT
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and _is_nhwc(x)
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and torch.backends.mkldnn.is_available()
    )


class _OneDNNPointwise:
    """Mixin for ``nn.Conv2d`` subclasses: NHWC inference 1x1 convolutions on oneDNN.

    224x224, batch 7, one thread: 5 -> 8 channels 8.7 -> 1.4 ms, 3 -> 16 3.8 -> 2.0 ms,
    180 -> 180 at 56x56 26 -> 21 ms. Training (gradients) and every other convolution take
    ``nn.Conv2d``'s path. Outputs agree with it to float rounding (another summation order).
    """

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if _onednn_pointwise(input, weight, self):  # type: ignore[arg-type]
            return torch.mkldnn_convolution(input, weight, bias, [0, 0], [1, 1], [1, 1], 1)
        return super()._conv_forward(input, weight, bias)  # type: ignore[misc]


class FastConv2d(_OneDNNPointwise, nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state-dict keys) with 1x1 inference on oneDNN."""


class FastWSConv2d(_OneDNNPointwise, WSConv2d):
    """``WSConv2d`` with 1x1 inference on oneDNN and its standardised filters cached.

    Without autograd the standardised filters are kept until the weight changes: every
    in-place update (optimiser step, ``load_state_dict``) bumps the tensor's version.
    """

    _ws_cache: tuple[tuple, torch.Tensor] | None = None

    def standardised_weight(self) -> torch.Tensor:
        w = self.weight
        if torch.is_grad_enabled():
            self._ws_cache = None
            return super().standardised_weight()
        key = (w._version, w.data_ptr(), w.dtype, w.device, w.shape)
        if self._ws_cache is None or self._ws_cache[0] != key:
            self._ws_cache = (key, super().standardised_weight())
        return self._ws_cache[1]


# -- click disks in a window around each click --------------------------------------------------


class WindowedDistMaps(DistMaps):
    """``DistMaps`` whose disks are computed only in a window around each point.

    Distances over the whole image for every point are mostly wasted: a disk only reaches
    ``norm_radius`` pixels from its centre. Each pixel of a window gets the same float32 squared
    distance as the full computation (integer rows and columns minus the point), so the maps are
    identical to it.
    """

    def forward(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if not self.use_disks:
            return super().forward(points, height, width)
        b, n2, _ = points.shape
        pts = points[..., :2].to(torch.float32)
        valid = pts.max(dim=2).values >= 0  # (B, 2N)
        k = math.ceil(self.norm_radius) + 1  # window [floor(p) - k, floor(p) + k] covers p +- r
        offsets = torch.arange(-k, k + 1, dtype=torch.float32, device=points.device)
        rows = pts[..., 0:1].floor() + offsets  # (B, 2N, 2k+1)
        cols = pts[..., 1:2].floor() + offsets
        dr = (rows - pts[..., 0:1])[..., :, None]
        dc = (cols - pts[..., 1:2])[..., None, :]
        inside = (dr * dr + dc * dc <= self.norm_radius**2) & valid[..., None, None]
        inside &= ((rows >= 0) & (rows < height))[..., :, None]
        inside &= ((cols >= 0) & (cols < width))[..., None, :]
        # (B, 2N, 2k+1, 2k+1) index grids: item, sign (first N slots positive), row, column
        item = torch.arange(b, device=points.device).view(b, 1, 1, 1)
        sign = (torch.arange(n2, device=points.device) >= n2 // 2).view(1, n2, 1, 1).long()
        r = rows.long()[..., :, None]
        c = cols.long()[..., None, :]
        shape = inside.shape
        out = torch.zeros(b, 2, height, width, dtype=torch.float32, device=points.device)
        index = [t.expand(shape)[inside] for t in (item, sign, r, c)]
        out[tuple(index)] = 1.0
        return out


# -- applying them ------------------------------------------------------------------------------

_FAST_CLASSES: dict[type, type] = {
    nn.Conv2d: FastConv2d,
    WSConv2d: FastWSConv2d,
    Concat: FastConcat,
    DistMaps: WindowedDistMaps,
}
"""Plain module class -> its fast equivalent (same parameters, buffers and state-dict keys)."""


def use_fast_modules(
    net: nn.Module, plain: Iterable[type] | None = None, *, nhwc_concat: bool | None = None
) -> nn.Module:
    """Swap (in place) every module of ``net`` whose class is in ``plain`` (default: every key
    of ``_FAST_CLASSES``) for its fast equivalent; returns ``net``.

    The class is swapped, nothing else: parameters, buffers, hooks and state-dict keys stay. A
    module already fast, or of a class with no fast equivalent, is left alone, so applying this
    twice changes nothing.

    Args:
        nhwc_concat: ``FastConcat.nhwc`` of every concatenation: None decides per call from the
            first tensor's layout, True always concatenates as NHWC (RITM, whose first part is
            a channel slice of its NHWC input, laid out as neither).
    """
    swap = _FAST_CLASSES if plain is None else {c: _FAST_CLASSES[c] for c in plain}
    for module in net.modules():
        fast = swap.get(type(module))
        if fast is not None:
            module.__class__ = fast
        if isinstance(module, FastConcat):
            module.nhwc = nhwc_concat
    return net


def accelerate(net: nn.Module, *, nhwc_concat: bool | None = None) -> nn.Module:
    """Turn ``net`` (in place) into its fast equivalent: weights in channels_last and every
    module swapped for its fast equivalent (``use_fast_modules``); returns ``net``.

    ``net`` may be in any mode: what changes steps aside when gradients are needed.
    """
    net.to(memory_format=torch.channels_last)
    return use_fast_modules(net, nhwc_concat=nhwc_concat)


def is_fast(net: nn.Module) -> bool:
    """Whether ``accelerate`` was applied to ``net`` (some module of it has a fast class)."""
    fast = tuple(_FAST_CLASSES.values())
    return any(isinstance(m, fast) for m in net.modules())


# -- BatchNorm folding --------------------------------------------------------------------------


def _tensors(out: Any) -> Iterator[torch.Tensor]:
    """The tensors of a network output (a tensor, or dicts, lists and tuples of them)."""
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, dict):
        for v in out.values():
            yield from _tensors(v)
    elif isinstance(out, list | tuple):
        for v in out:
            yield from _tensors(v)


def _conv_bn_pairs(net: nn.Module, inputs: tuple) -> tuple[list[tuple[str, str]], Any]:
    """(conv name, BatchNorm name) for every BatchNorm2d whose input is the very tensor a
    Conv2d returned, found by running ``net`` once on ``inputs``; and that run's output."""
    names = {id(m): n for n, m in net.named_modules()}
    # id -> (weak reference to a conv output, conv): a freed output's id may be reused
    produced: dict[int, tuple[weakref.ref, nn.Module]] = {}
    pairs: list[tuple[nn.Module, nn.Module]] = []

    def after_conv(conv: nn.Module, _: Any, out: torch.Tensor) -> None:
        produced[id(out)] = (weakref.ref(out), conv)

    def before_bn(bn: nn.Module, args: tuple) -> None:
        ref, conv = produced.get(id(args[0]), (None, None))
        if ref is not None and ref() is args[0]:
            pairs.append((conv, bn))

    hooks = []
    for mod in net.modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(after_conv))
        elif isinstance(mod, nn.BatchNorm2d):
            hooks.append(mod.register_forward_pre_hook(before_bn))
    try:
        with torch.no_grad():
            out = net(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return [(names[id(c)], names[id(b)]) for c, b in pairs], out


def fold_batchnorm(net: nn.Module, *inputs: Any) -> nn.Module:
    """A copy of eval-mode ``net`` in which every BatchNorm2d fed directly by a Conv2d is folded
    into that convolution and replaced by ``nn.Identity``.

    In eval mode such a BatchNorm is an affine map per channel; the copy skips one full pass
    over every normalised activation.

    Args:
        net: a network in eval mode; it is not changed.
        *inputs: an example input (``net(*inputs)``), used to find which convolution feeds which
            BatchNorm and to check the copy (any input of valid shape: the pairs depend on the
            network's structure, not on values).

    Returns:
        The folded copy (same classes, memory format and devices). Its outputs equal ``net``'s
        to float rounding.

    Raises:
        ValueError: ``net`` is in training mode (its BatchNorms use batch statistics).
        RuntimeError: the copy's outputs differ from ``net``'s (a convolution's output is also
            used elsewhere than by its BatchNorm, so the pair cannot be folded).
    """
    if net.training:
        raise ValueError("fold_batchnorm needs a network in eval mode")
    pairs, out = _conv_bn_pairs(net, inputs)
    folded = copy.deepcopy(net)
    for conv_name, bn_name in pairs:
        conv = folded.get_submodule(conv_name)
        fused = fuse_conv_bn_eval(conv, folded.get_submodule(bn_name))
        conv.weight, conv.bias = fused.weight, fused.bias
        parent, _, attr = bn_name.rpartition(".")
        setattr(folded.get_submodule(parent), attr, nn.Identity())
    with torch.no_grad():
        want, got = list(_tensors(out)), list(_tensors(folded(*inputs)))
    for a, b in zip(want, got, strict=True):
        if not torch.allclose(a, b, rtol=1e-3, atol=1e-3 * (1.0 + float(a.abs().max()))):
            raise RuntimeError(
                "folding the BatchNorms changed the network's outputs (largest difference "
                f"{float((a - b).abs().max()):.3g}): a convolution's output is used beyond its "
                "BatchNorm"
            )
    return folded


__all__ = [
    "POINTWISE_MIN_OUT",
    "FastConcat",
    "FastConv2d",
    "FastWSConv2d",
    "WindowedDistMaps",
    "accelerate",
    "cat_channels",
    "use_fast_modules",
    "fold_batchnorm",
    "is_fast",
]
