"""BatchNorm folding: inference copies of a network without their BatchNorm layers.

In eval mode a BatchNorm2d that directly follows a Conv2d is an affine map per channel, so it
can be folded into that convolution's weights and bias; the copy then skips one full pass over
every normalised activation (7% of a compact RITM forward on the CPU).
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


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

    Args:
        net: a network in eval mode; it is not changed.
        *inputs: an example input (``net(*inputs)``), used to find which convolution feeds which
            BatchNorm and to check the copy.

    Returns:
        The folded copy (same memory format and devices). Its outputs equal ``net``'s to float
        rounding.

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
