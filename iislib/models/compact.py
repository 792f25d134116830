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
