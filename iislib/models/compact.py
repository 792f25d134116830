"""The compact models trained by this project (``iislib.train``), loaded from shipped weights."""

from __future__ import annotations

from pathlib import Path

from iislib.models.base import IISModel

WEIGHTS_DIR = Path(__file__).parent / "weights"
COMPACT_NAMES: tuple[str, ...] = (
    "ritm-compact",
    "gto99-compact",
    "ritm-compact-gto99proc",
    "gto99-compact-ritmproc",
)


def shipped_weights(name: str) -> Path:
    """Where the weights of compact model ``name`` are shipped (the file may not exist)."""
    return WEIGHTS_DIR / f"{name}.pt"


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
