"""Model registry: ``get_model(name, **kwargs)`` builds any registered model by name.

Models are imported lazily, so ``import iislib.models`` does not import torch.

=================== ==========================================================================
random_walker       training-free random walker with priors (no weights needed)
ritm                RITM HRNet + OCR + Conv1S (needs an official checkpoint: ``checkpoint=PATH``;
                    ``pretrained=False, variant="h18s"`` gives random weights)
gto99               gto99 ResNet-50 GN+WS (needs ``InterSegSynthFT.pth``: ``checkpoint=PATH``)
ritm-compact        ritm family, 0.67 M parameters, trained here with RITM's click procedure
gto99-compact       gto99 family, 0.57 M parameters, trained here with gto99's procedure
ritm-compact-gto99proc, gto99-compact-ritmproc: the cross-trained pair (family x procedure)
=================== ==========================================================================

The compact models load the weights shipped in ``iislib/models/weights/`` (``weights=PATH`` loads
others); their model cards are in ``iislib/models/cards/``.

The networks (``hrnet``, ``ritm``, ``resnet_gn``, ``gto99``) are plain PyTorch modules; a network
model is built for fast CPU inference (``fast``: channels_last, oneDNN 1x1 convolutions, NHWC
concatenations, RITM's BatchNorms folded), which ``get_model(name, fast=False)`` turns off to run
the official computation as written. Each family has one adapter (``families``) that training
(``iislib.training.train``) and prediction share; weights files are read and written by ``compact``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from iislib.core.model import IISModel
from iislib.models.compact import COMPACT_NAMES, CROSS_TRAINED, shipped_weights

# name -> "module:factory"; the factory takes keyword arguments and returns an IISModel.
_REGISTRY: dict[str, str | Callable[..., IISModel]] = {
    "random_walker": "iislib.models.random_walker:RandomWalker",
    "ritm": "iislib.models.ritm:RITM",
    "gto99": "iislib.models.gto99:gto99",
    "ritm-compact": "iislib.models.compact:ritm_compact",
    "gto99-compact": "iislib.models.compact:gto99_compact",
    "ritm-compact-gto99proc": "iislib.models.compact:ritm_compact_gto99proc",
    "gto99-compact-ritmproc": "iislib.models.compact:gto99_compact_ritmproc",
}

MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)
"""Names of the built-in models."""

# Models that cannot be built without a user-supplied checkpoint (official weights).
NEEDS_CHECKPOINT: frozenset[str] = frozenset({"ritm", "gto99"})


def ready_models(cross_trained: bool = True) -> list[str]:
    """Registered models that build with no argument: no official weights needed, and for the
    compact models, their weights are shipped. ``cross_trained=False`` leaves out
    ``CROSS_TRAINED``."""

    return [
        name
        for name in _REGISTRY
        if name not in NEEDS_CHECKPOINT
        and (name not in COMPACT_NAMES or shipped_weights(name).is_file())
        and (cross_trained or name not in CROSS_TRAINED)
    ]


def register_model(name: str, factory: Callable[..., IISModel] | str) -> None:
    """Register a user model under ``name`` (a callable or a ``"module:attr"`` string)."""
    _REGISTRY[name] = factory


def available_models() -> list[str]:
    """Every registered name, built-in and user-registered."""
    return list(_REGISTRY)


def get_model(name: str, **kwargs: Any) -> IISModel:
    """Build the model registered under ``name``; ``kwargs`` go to its constructor.

    The network models (ritm, gto99 and the compact ones) take ``fast`` (default True): False
    predicts with the plain network (``iislib.models.fast``).
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}") from None
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = getattr(importlib.import_module(module), attr)
    model = factory(**kwargs)
    model.name = name
    return model


__all__ = [
    "IISModel",
    "CROSS_TRAINED",
    "MODEL_NAMES",
    "NEEDS_CHECKPOINT",
    "available_models",
    "get_model",
    "ready_models",
    "register_model",
]
