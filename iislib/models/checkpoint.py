"""What is wrong when a state dict does not fit a network (shared by every loader)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def _examples(items: Sequence[str], limit: int = 5) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more


def state_dict_problems(
    own: Mapping[str, torch.Tensor],
    sd: Mapping[str, torch.Tensor],
    optional_suffixes: tuple[str, ...] = (),
) -> list[str]:
    """Human-readable problems of loading ``sd`` into a network whose state dict is ``own``.

    Args:
        own: the network's ``state_dict()``.
        sd: the checkpoint's tensors.
        optional_suffixes: keys of ``own`` that may be absent (e.g. "num_batches_tracked").
    Returns:
        e.g. ["2 missing weights: a.weight; a.bias", "1 wrong shape: b.weight (3, 3) vs (4, 3)"];
        empty when everything fits.
    """
    missing = [k for k in own if k not in sd and not k.endswith(optional_suffixes or ("\0",))]
    extra = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} in the file vs {tuple(v.shape)} in the network"
        for k, v in own.items()
        if k in sd and tuple(sd[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing weights: {_examples(missing)}")
    if extra:
        problems.append(f"{len(extra)} unexpected weights: {_examples(extra)}")
    if shapes:
        problems.append(f"{len(shapes)} wrong shapes: {_examples(shapes)}")
    return problems
