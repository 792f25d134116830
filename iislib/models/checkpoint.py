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
        empty when everything fits. A tensor of another rank is a wrong shape, e.g. (3,) vs
        (16, 3, 1, 1); a value that is no tensor is listed as such.
    """
    missing = [k for k in own if k not in sd and not k.endswith(optional_suffixes or ("\0",))]
    extra = [k for k in sd if k not in own]
    # A value that is no tensor (a number, a list) is reported, not read: ``.shape`` would fail.
    not_tensors = [f"{k} ({type(sd[k]).__name__})" for k in own if k in sd
                   and not isinstance(sd[k], torch.Tensor)]  # fmt: skip
    shapes = [
        f"{k} {tuple(sd[k].shape)} in the file vs {tuple(v.shape)} in the network"
        for k, v in own.items()
        if isinstance(sd.get(k), torch.Tensor) and tuple(sd[k].shape) != tuple(v.shape)
    ]
    problems = []
    if not_tensors:
        problems.append(f"{len(not_tensors)} values that are not tensors: {_examples(not_tensors)}")
    if missing:
        problems.append(f"{len(missing)} missing weights: {_examples(missing)}")
    if extra:
        problems.append(f"{len(extra)} unexpected weights: {_examples(extra)}")
    if shapes:
        problems.append(f"{len(shapes)} wrong shapes: {_examples(shapes)}")
    return problems
