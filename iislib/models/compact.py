"""The compact models trained by this project (``iislib.train``), loaded from shipped weights."""

from __future__ import annotations

from pathlib import Path

from iislib.models.base import IISModel

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


def design_differences(names: tuple[str, ...] = COMPACT_NAMES) -> list[str]:
    """How the shipped models of the 2x2 were trained differently, beyond their procedure.

    The 2x2 isolates family and procedure only if everything else (recipe, seed, data) is the
    same; an empty list means it is. Models without shipped weights are left out.
    """
    keys = ("recipe", "seed", "sets")
    configs = {n: training_config(n) for n in names if shipped_weights(n).is_file()}
    out = []
    for key in keys:
        values = {n: c.get(key) for n, c in configs.items()}
        if len({repr(v) for v in values.values()}) > 1:
            if key == "recipe":  # name only the recipe fields that differ
                all_fields = sorted({f for v in values.values() for f in v})
                fields = [f for f in all_fields
                          if len({repr(v.get(f)) for v in values.values()}) > 1]  # fmt: skip
                shown = {n: {f: v.get(f) for f in fields} for n, v in values.items()}
            else:
                shown = values
            out.append(f"{key} differs: " + "; ".join(f"{n} {v}" for n, v in shown.items()))
    return out


def load(name: str, weights: str | Path | None = None, device: str = "cpu") -> IISModel:
    """Compact model ``name`` from ``weights`` (default: the shipped file)."""
    from iislib.train import load_compact

    path = Path(weights) if weights is not None else shipped_weights(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no weights for {name}; train them with "
            f"`python -m iislib.train {name} --data DATA --ship`"
        )
    model = load_compact(path)
    if device != "cpu":
        model.net.to(device)
        model.device = __import__("torch").device(device)
    return model


def ritm_compact(**kw) -> IISModel:
    return load("ritm-compact", **kw)


def gto99_compact(**kw) -> IISModel:
    return load("gto99-compact", **kw)


def ritm_compact_gto99proc(**kw) -> IISModel:
    return load("ritm-compact-gto99proc", **kw)


def gto99_compact_ritmproc(**kw) -> IISModel:
    return load("gto99-compact-ritmproc", **kw)
