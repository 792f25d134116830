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
ritm-sbd-h18, ritm-cocolvis-h18s, ritm-cocolvis-h18, ritm-cocolvis-h32, gto99-synthft: the
                    official files in the weights folder (``iislib.models.official``)
=================== ==========================================================================

The compact models load the weights shipped in ``iislib/models/weights/`` (``weights=PATH`` loads
others); their model cards are in ``iislib/models/cards/``. The official names build from the
weights folder (``$IISLIB_WEIGHTS``, default ``data/weights``); ``python -m iislib weights``
lists the files, their links and whether they are there.

A user's own model enters by name in three ways: ``register_model(name, factory)`` in the
running process; a package declaring an entry point in the group ``iislib.models``
(``[project.entry-points."iislib.models"] mymodel = "mypkg:factory"``), found in every process
(notebook kernels, the CLI, Dask workers); or an import string ``"mypkg.module:factory"`` used
as the name. A factory returns an ``IISModel``, or any object with ``predict(image, clicks,
prev) -> prob`` (wrapped by ``as_model``). A factory (or model class) may declare
``cache_version``: it enters the sweep's cache key (``cache_token``), so that results of an
older version are not reused; without it a warning says so, once per name.

The networks (``hrnet``, ``ritm``, ``resnet_gn``, ``gto99``) are plain PyTorch modules; a network
model is built for fast CPU inference (``fast``: channels_last, oneDNN 1x1 convolutions, NHWC
concatenations, RITM's BatchNorms folded), which ``get_model(name, fast=False)`` turns off to run
the official computation as written. Each family has one adapter (``families``) that training
(``iislib.training.train``) and prediction share; weights files are read and written by ``compact``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from iislib.core.clicks import Click
from iislib.core.model import IISModel
from iislib.models import official as _official
from iislib.models.compact import COMPACT_NAMES, CROSS_TRAINED, shipped_weights
from iislib.models.official import OFFICIAL_NAMES, OFFICIAL_PAIR

# name -> "module:factory"; the factory takes keyword arguments and returns an IISModel.
_BUILTIN: dict[str, str | Callable[..., IISModel]] = {
    "random_walker": "iislib.models.random_walker:RandomWalker",
    "ritm": "iislib.models.ritm:RITM",
    "gto99": "iislib.models.gto99:gto99",
    "ritm-compact": "iislib.models.compact:ritm_compact",
    "gto99-compact": "iislib.models.compact:gto99_compact",
    "ritm-compact-gto99proc": "iislib.models.compact:ritm_compact_gto99proc",
    "gto99-compact-ritmproc": "iislib.models.compact:gto99_compact_ritmproc",
}
_REGISTRY: dict[str, str | Callable[..., Any]] = {
    **_BUILTIN,
    **{name: _official.factory(name) for name in OFFICIAL_NAMES},
}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILTIN)
"""Names of the built-in models (the official names are ``OFFICIAL_NAMES``)."""

# Models that cannot be built without a user-supplied checkpoint (official weights).
NEEDS_CHECKPOINT: frozenset[str] = frozenset({"ritm", "gto99"})

ENTRY_POINT_GROUP = "iislib.models"
"""The entry-point group a package declares its models in."""

_USER: set[str] = set()  # names given to register_model
_WARNED: set[str] = set()  # user models already warned about (no cache_version, broken)


_SCANNED: dict[tuple[str, ...], list[importlib.metadata.EntryPoint]] = {}


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed models of ``ENTRY_POINT_GROUP`` by name; a name that a built-in or registered
    model already has is left out (with a warning, once). The installed packages are scanned
    once per ``sys.path`` (a scan takes ~10 ms and cache keys ask for it thousands of times):
    a package installed while a process runs is seen after a restart."""
    path = tuple(sys.path)
    if path not in _SCANNED:
        _SCANNED[path] = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    out = {}
    for ep in _SCANNED[path]:
        if ep.name in _REGISTRY:
            _warn_once(f"shadow:{ep.name}", f"the entry point {ep.name!r} of package "
                       f"{_package(ep)} is ignored: iislib already has a model of that name")  # fmt: skip
            continue
        out.setdefault(ep.name, ep)
    return out


def _package(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else ep.module


def _warn_once(key: str, message: str) -> None:
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, UserWarning, stacklevel=3)


def _import_string(spec: str) -> Callable[..., Any]:
    """The object named by ``"package.module:attr"``; ValueError naming it and the error."""
    module, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # noqa: BLE001 - any failure: the user's code, reported by name
        raise ValueError(f"model {spec!r}: cannot import {attr!r} from {module!r}: "
                         f"{type(e).__name__}: {e}") from None  # fmt: skip
    return obj


def _factory(name: str) -> Callable[..., Any]:
    """The factory of ``name``: registered, entry point, or import string."""
    if name in _REGISTRY:
        factory = _REGISTRY[name]
        return _import_string(factory) if isinstance(factory, str) else factory
    eps = _entry_points()
    if name in eps:
        ep = eps[name]
        try:
            return ep.load()
        except Exception as e:  # noqa: BLE001 - the package's own error, reported by name
            raise ValueError(f"model {name!r} of package {_package(ep)} (entry point "
                             f"{ep.value}) cannot be loaded: {type(e).__name__}: {e}") from None  # fmt: skip
    if _is_import_string(name):
        return _import_string(name)
    raise ValueError(f"unknown model {name!r}; known models: {', '.join(available_models())} "
                     "(or an import string 'package.module:factory')")  # fmt: skip


def _is_import_string(name: str) -> bool:
    module, sep, attr = name.partition(":")
    return bool(sep and module and attr) and all(
        p.isidentifier() for p in [*module.split("."), *attr.split(".")]
    )


def is_user_model(name: str) -> bool:
    """Whether ``name`` is a user's model (registered, entry point or import string)."""
    if name in _BUILTIN or name in OFFICIAL_NAMES:
        return False
    return name in _USER or (name not in _REGISTRY and (
        _is_import_string(name) or name in _entry_points()))  # fmt: skip


def ready_models(cross_trained: bool = True, official: bool = True, user: bool = True) -> list[str]:
    """Models that build with no argument: the built-in ones that need no official weights
    (the compact ones when their weights are shipped), the official names whose file is in the
    weights folder (``official``), and the user's models (``user``: registered, or entry
    points that load; a broken one is left out with a warning naming its package and error).
    ``cross_trained=False`` leaves out ``CROSS_TRAINED``."""

    names = [
        name
        for name in _BUILTIN
        if name not in NEEDS_CHECKPOINT
        and (name not in COMPACT_NAMES or shipped_weights(name).is_file())
        and (cross_trained or name not in CROSS_TRAINED)
    ]
    if official:
        names += [n for n in OFFICIAL_NAMES if _official.is_present(n)]
    if user:
        names += [n for n in _REGISTRY if n in _USER]
        for name in _entry_points():
            try:
                _factory(name)
            except ValueError as e:
                _warn_once(f"broken:{name}", f"{e}; the other models are unaffected")
                continue
            names.append(name)
    return names


def register_model(name: str, factory: Callable[..., Any] | str) -> None:
    """Register a user model under ``name`` (a callable or a ``"module:attr"`` string)."""
    _REGISTRY[name] = factory
    _USER.add(name)


def available_models() -> list[str]:
    """Every name a user can pick now: built-in and registered models, the official names
    whose file is in the weights folder, and installed entry points (not loaded here)."""
    names = [n for n in _REGISTRY if n not in OFFICIAL_NAMES or _official.is_present(n)]
    return names + [n for n in _entry_points() if n not in names]


def known_models() -> list[str]:
    """``available_models`` and the official names whose file is missing."""
    return list(dict.fromkeys([*_REGISTRY, *available_models()]))


class PlainModel(IISModel):
    """An ``IISModel`` around any object with ``predict(image, clicks, prev) -> prob`` (the
    smallest model a user writes): ``image`` float32 (H, W, 3) in [0, 1], ``clicks`` a list of
    ``Click`` (row, col, positive), ``prev`` float32 (H, W) (zeros before the first click); it
    returns an (H, W) map in [0, 1]."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)

    def _predict(self, image: np.ndarray, clicks: list[Click], prev: np.ndarray) -> np.ndarray:
        prob = np.asarray(self.inner.predict(image, clicks, prev), dtype=np.float32)
        if prob.shape != image.shape[:2]:
            raise ValueError(f"model {self.name!r} returned a map of shape {prob.shape} for an "
                             f"image of {image.shape[:2]}")  # fmt: skip
        return prob


def as_model(obj: Any, name: str = "model") -> IISModel:
    """``obj`` as an ``IISModel``: itself, or wrapped in ``PlainModel`` when it only has
    ``predict(image, clicks, prev)``; ValueError for anything else."""
    if isinstance(obj, IISModel):
        return obj
    if callable(getattr(obj, "predict", None)):
        return PlainModel(obj)
    raise ValueError(f"model {name!r}: its factory returned a {type(obj).__name__}, which has "
                     "no predict(image, clicks, prev) method")  # fmt: skip


def accepts(name: str, argument: str) -> bool:
    """Whether ``name``'s factory takes keyword ``argument`` (e.g. ``device``)."""
    factory = _factory(name)
    if getattr(factory, "official", None):  # official names take what ritm and gto99 take
        return True
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return argument in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def cache_version(name: str) -> str | None:
    """What a user model declares as its version for the cache key: ``cache_version`` on its
    factory (a function attribute, or a class attribute of a model class used as factory);
    None for built-in and official models (their key holds the iislib version and the weights'
    digest) and for a user model that declares none (warned once)."""
    if not is_user_model(name):
        return None
    version = getattr(_factory(name), "cache_version", None)
    if version is None:
        _warn_once(f"version:{name}", f"model {name!r} declares no cache_version: its cached "
                   "results are keyed by its name alone, so after a change to the model they "
                   "would be reused; give its factory a cache_version (e.g. '1', or a digest of "
                   "its weights) and raise it when the model changes")  # fmt: skip
        return None
    return str(version)


def get_model(name: str, **kwargs: Any) -> IISModel:
    """Build the model registered under ``name``; ``kwargs`` go to its constructor.

    ``name`` may also be an installed entry point of ``ENTRY_POINT_GROUP`` or an import string
    ``"package.module:factory"``. The network models (ritm, gto99, the compact and official
    ones) take ``fast`` (default True): False predicts with the plain network
    (``iislib.models.fast``), and ``device`` ("cpu", "cuda").

    Raises:
        ValueError: unknown name, a user model that cannot be loaded (naming its package and
            error), or a factory that returns no model.
        FileNotFoundError: an official name whose file is not in the weights folder (one line:
            the file, its link and the folder).
    """
    model = as_model(_factory(name)(**kwargs), name)
    model.name = name
    return model


def check_device(device: str) -> str:
    """``device`` checked before any work: "cpu", or a CUDA device that exists here.

    Raises:
        ValueError: not a device name, or CUDA asked for where there is none.
    """
    device = str(device)
    if device == "cpu":
        return device
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(
            f"device {device!r} is not a device name (cpu, cuda, cuda:1): {e}"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for, but CUDA is not available here "
                             f"(torch {torch.__version__}, "
                             f"{'a CPU-only build' if torch.version.cuda is None else 'no GPU found'}); "
                             "use device='cpu'")  # fmt: skip
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist: {torch.cuda.device_count()} "
                             "CUDA device(s) here")  # fmt: skip
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r}: only cpu and cuda are supported")
    return device


def resolve_names(names: Sequence[str]) -> list[str]:
    """``names`` checked before any work: each is available, or an official name whose file
    is missing (FileNotFoundError: ``missing_message``, one line per file), or unknown
    (ValueError listing the available names). Entry points and import strings are loaded, so
    a broken one is reported here, naming its package."""
    missing = [_official.missing_message(n) for n in names
               if n in OFFICIAL_NAMES and not _official.is_present(n)]  # fmt: skip
    if missing:
        raise FileNotFoundError("\n".join(missing))
    for n in names:
        _factory(n)
    return list(names)


__all__ = [
    "CROSS_TRAINED",
    "ENTRY_POINT_GROUP",
    "IISModel",
    "MODEL_NAMES",
    "NEEDS_CHECKPOINT",
    "OFFICIAL_NAMES",
    "OFFICIAL_PAIR",
    "PlainModel",
    "accepts",
    "as_model",
    "available_models",
    "cache_version",
    "check_device",
    "get_model",
    "is_user_model",
    "known_models",
    "ready_models",
    "register_model",
    "resolve_names",
]
