"""The compact models trained by this project (``iislib.training.train``): their 2x2 design, and their
weights files (export, load, compare).

A weights file (``NAME.pt``) holds ``{"state_dict": float16 tensors, "config": dict}``; the
config records the family, the architecture and how the weights were trained. It is read with
``torch.load(weights_only=True)``: no code runs from it. torch is imported only when a file is
read or written, so that ``import iislib.models`` does not import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iislib.atomic import write_with
from iislib.core.model import IISModel

WEIGHTS_DIR = Path(__file__).parent / "weights"
DESIGN: dict[str, tuple[str, str]] = {
    "ritm-compact": ("ritm", "ritm"),
    "gto99-compact": ("gto99", "gto99"),
    "ritm-compact-gto99proc": ("ritm", "gto99"),
    "gto99-compact-ritmproc": ("gto99", "ritm"),
}
"""The 2x2 experiment: compact model name -> (architecture family, training click procedure)."""
COMPACT_NAMES: tuple[str, ...] = tuple(DESIGN)
CROSS_TRAINED: tuple[str, ...] = tuple(n for n, (fam, proc) in DESIGN.items() if fam != proc)
"""Compact models trained with the other family's click procedure: controls for the 2x2
experiment, not stand-ins for the paper's models."""


def shipped_weights(name: str) -> Path:
    """Where the weights of compact model ``name`` are shipped (the file may not exist)."""
    return WEIGHTS_DIR / f"{name}.pt"


def training_config(name: str, weights: str | Path | None = None) -> dict:
    """The training config stored in compact model ``name``'s weights (recipe, seed, sets, ...)."""
    import torch

    path = Path(weights) if weights is not None else shipped_weights(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no weights for {name}")
    return torch.load(path, map_location="cpu", weights_only=True)["config"]


_NO_EFFECT = ("checkpoint_every",)  # recipe fields that do not change the weights


def _differences(configs: dict[str, dict]) -> list[str]:
    """The training fields (recipe fields, seed, sets) on which ``configs`` disagree."""
    out = []
    for key in ("recipe", "seed", "sets"):
        values = {n: c.get(key) for n, c in configs.items()}
        if key == "recipe":  # name only the recipe fields that differ and change the weights
            fields = sorted({f for v in values.values() for f in v} - set(_NO_EFFECT))
            fields = [f for f in fields if len({repr(v.get(f)) for v in values.values()}) > 1]
            values = {n: {f: v.get(f) for f in fields} for n, v in values.items()}
        if len({repr(v) for v in values.values()}) > 1:
            out.append(f"{key} differs: " + "; ".join(f"{n} {v}" for n, v in values.items()))
    return out


def design_differences(names: tuple[str, ...] = COMPACT_NAMES) -> list[str]:
    """What, beyond family and procedure, differs inside the contrasts of the 2x2.

    The procedure effect compares the two models of one family, the family effect the two
    models of one procedure. Each line names the effect whose contrast a training difference
    (recipe, seed, data) confounds; an empty list means both contrasts are clean. The
    procedure effect (the paper's claim) stays clean when each family's pair was trained alike
    even if the two families were trained differently. Models without weights are left out.
    """
    configs = {n: training_config(n) for n in names if shipped_weights(n).is_file()}
    out = []
    for effect, axis in (("procedure", 0), ("family", 1)):
        for level in sorted({DESIGN[n][axis] for n in configs}):
            group = {n: c for n, c in configs.items() if DESIGN[n][axis] == level}
            out += [f"{effect} effect: {d}" for d in _differences(group)]
    return out


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a reader never sees half a file."""
    import torch

    write_with(path, lambda tmp: torch.save(obj, tmp))


def export(net: Any, config: dict[str, Any], path: str | Path) -> Path:
    """Write ``net``'s weights as float16 (half the size) with their config; loads as float32."""
    sd = {
        k: (v.half() if v.is_floating_point() else v).detach().cpu()
        for k, v in net.state_dict().items()
    }
    path = Path(path)
    save_atomic({"state_dict": sd, "config": config}, path)
    return path


def annotate(path: str | Path, **fields: Any) -> None:
    """Add or replace fields of an exported file's config (e.g. ``machine_note`` for its card)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    state["config"].update(fields)
    save_atomic(state, Path(path))


def load_compact(path: str | Path, *, fast: bool = True, device: str = "cpu") -> IISModel:
    """An IISModel from an exported ``.pt`` (``fast``: through ``iislib.models.fast``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not such a file, or its weights do not fit its family's network.
    """
    import torch

    from iislib.models.checkpoint import state_dict_problems
    from iislib.models.families import get_family

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        config, sd = state["config"], state["state_dict"]
        family = get_family(config["family"])
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable
        raise ValueError(f"{path}: not an iislib compact-model file ({e})") from None
    net = family.build_net(config["arch"])
    sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
    problems = state_dict_problems(net.state_dict(), sd)
    if problems:
        raise ValueError(f"{path}: the weights do not fit {family.name}: " + "; ".join(problems))
    net.load_state_dict(sd)
    model = family.wrap(net, fast=fast, device=device)
    model.config = config  # type: ignore[attr-defined]
    return model


def compare_weights(a: str | Path, b: str | Path) -> list[tuple[str, float]]:
    """Per tensor, the largest absolute difference between two exported files (largest first)."""
    import torch

    sa = torch.load(a, map_location="cpu", weights_only=True)["state_dict"]
    sb = torch.load(b, map_location="cpu", weights_only=True)["state_dict"]
    if sa.keys() != sb.keys():
        raise ValueError(f"{a} and {b} hold different tensors")
    diffs = [(k, float((sa[k].double() - sb[k].double()).abs().max())) for k in sa]
    return sorted(diffs, key=lambda kv: -kv[1])


def load(
    name: str, weights: str | Path | None = None, device: str = "cpu", fast: bool = True
) -> IISModel:
    """Compact model ``name`` from ``weights`` (default: the shipped file)."""
    path = Path(weights) if weights is not None else shipped_weights(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no weights for {name}; train them with "
            f"`python -m iislib.training {name} --data DATA --ship`"
        )
    return load_compact(path, fast=fast, device=device)


def ritm_compact(**kw) -> IISModel:
    return load("ritm-compact", **kw)


def gto99_compact(**kw) -> IISModel:
    return load("gto99-compact", **kw)


def ritm_compact_gto99proc(**kw) -> IISModel:
    return load("ritm-compact-gto99proc", **kw)


def gto99_compact_ritmproc(**kw) -> IISModel:
    return load("gto99-compact-ritmproc", **kw)
