"""The model families by name: one adapter each, shared by training and prediction.

=========== ===================================================================================
ritm        ``iislib.models.ritm.RITMFamily``: HRNet + OCR, clicks as disks (Conv1S fusion)
gto99       ``iislib.models.gto99.GTO99Family``: ResNet-50 GN+WS, Gaussian click maps, guided filter
=========== ===================================================================================

A family (``iislib.models.base.Family``) builds its network, turns (images, clicks, previous
probabilities) into the network's inputs, runs a training forward pass, computes the loss, and
wraps a network as an ``IISModel``. ``iislib.training.train`` and the models' ``predict`` use the same
adapter, so the two cannot feed a network differently.
"""

from __future__ import annotations

from iislib.models import gto99, ritm
from iislib.models.base import Family

FAMILIES: dict[str, Family] = {"ritm": ritm.FAMILY, "gto99": gto99.FAMILY}
"""Family name -> its adapter."""


def get_family(name: str) -> Family:
    """The adapter of family ``name``; ValueError naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


__all__ = ["FAMILIES", "Family", "get_family"]
