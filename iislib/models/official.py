"""The official weights files the project knows, the folder they go in, and their registry names.

The files cannot be shipped: put them in the weights folder, ``$IISLIB_WEIGHTS`` (default
``data/weights/`` in the checkout, git-ignored like the data), under their official file names.
Each file then builds by registry name with no argument (``get_model("ritm-sbd-h18")``):

=================== ============================== ===== =====================================
name                file                           size  what
=================== ============================== ===== =====================================
ritm-sbd-h18        sbd_h18_itermask.pth           38.8  RITM HRNet-18 IT-M, SBD (the paper's)
ritm-cocolvis-h18s  coco_lvis_h18s_itermask.pth    16.5  RITM HRNet-18s IT-M, COCO+LVIS
ritm-cocolvis-h18   coco_lvis_h18_itermask.pth     38.8  RITM HRNet-18 IT-M, COCO+LVIS
ritm-cocolvis-h32   coco_lvis_h32_itermask.pth     119   RITM HRNet-32 IT-M, COCO+LVIS
gto99-synthft       InterSegSynthFT.pth            144   gto99 SyntheticPretrained+Finetune on SBD
=================== ============================== ===== =====================================

(sizes in MB as published.) ``OFFICIAL_PAIR`` is the paper's pair (the set name ``official``).
``python -m iislib weights`` (``make weights``) lists every file: link, published size, name,
present, structure check, SHA256; ``--download`` fetches RITM's files with pooch (GitHub
releases); gto99's file is on Google Drive and has to be fetched by hand.

The structure check (``check_file``) reads the file with ``torch.load(weights_only=True)`` (no
code runs from it) and compares its tensors with the network the name stands for, built on
PyTorch's "meta" device (shapes only, no memory): a truncated file, another format (a RITM
checkpoint under gto99's name) or another architecture (an h18s file under an h18 name) is an
error naming the file. torch is imported only when a file is read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iislib import paths

WEIGHTS_ENV = "IISLIB_WEIGHTS"

RITM_RELEASE = "https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/"
GTO99_DRIVE = "https://drive.google.com/file/d/1nJMTXSlprm5FQaQA5gfyU8CbSEX8ghzJ/view?usp=sharing"


@dataclass(frozen=True)
class OfficialWeights:
    """One official weights file and the registry name it provides.

    Attributes:
        name: registry name (``get_model(name)``).
        file: the official file name, looked up in ``weights_dir()``.
        url: the official download link (RITM: GitHub release; gto99: Google Drive page).
        size: published size as the README gives it ("38.8 MB").
        family: "ritm" or "gto99".
        variant: the architecture (ritm: a key of ``iislib.models.ritm.VARIANTS``; gto99: "").
        what: one line for listings.
        published: NoC published in the official README under that paper's own protocol:
            {(dataset, "NoC@85" | "NoC@90"): value}.
        direct: the link downloads the file itself (pooch can fetch it).
    """

    name: str
    file: str
    url: str
    size: str
    family: str
    variant: str
    what: str
    published: Mapping[tuple[str, str], float] = field(default_factory=dict)
    direct: bool = True


OFFICIAL: dict[str, OfficialWeights] = {
    w.name: w
    for w in (
        OfficialWeights(
            "ritm-sbd-h18", "sbd_h18_itermask.pth", RITM_RELEASE + "sbd_h18_itermask.pth",
            "38.8 MB", "ritm", "h18", "RITM HRNet-18 IT-M trained on SBD (the paper's ritm)",
            {("grabcut", "NoC@85"): 1.76, ("grabcut", "NoC@90"): 2.04,
             ("berkeley", "NoC@90"): 3.22, ("davis", "NoC@85"): 4.94,
             ("davis", "NoC@90"): 6.71},
        ),
        OfficialWeights(
            "ritm-cocolvis-h18s", "coco_lvis_h18s_itermask.pth",
            RITM_RELEASE + "coco_lvis_h18s_itermask.pth", "16.5 MB", "ritm", "h18s",
            "RITM HRNet-18s IT-M trained on COCO+LVIS",
            {("grabcut", "NoC@85"): 1.54, ("grabcut", "NoC@90"): 1.68,
             ("berkeley", "NoC@90"): 2.60, ("davis", "NoC@85"): 4.70,
             ("davis", "NoC@90"): 5.98},
        ),
        OfficialWeights(
            "ritm-cocolvis-h18", "coco_lvis_h18_itermask.pth",
            RITM_RELEASE + "coco_lvis_h18_itermask.pth", "38.8 MB", "ritm", "h18",
            "RITM HRNet-18 IT-M trained on COCO+LVIS",
            {("grabcut", "NoC@85"): 1.42, ("grabcut", "NoC@90"): 1.54,
             ("berkeley", "NoC@90"): 2.26, ("davis", "NoC@85"): 4.36,
             ("davis", "NoC@90"): 5.74},
        ),
        OfficialWeights(
            "ritm-cocolvis-h32", "coco_lvis_h32_itermask.pth",
            RITM_RELEASE + "coco_lvis_h32_itermask.pth", "119 MB", "ritm", "h32",
            "RITM HRNet-32 IT-M trained on COCO+LVIS",
            {("grabcut", "NoC@85"): 1.46, ("grabcut", "NoC@90"): 1.56,
             ("berkeley", "NoC@90"): 2.10, ("davis", "NoC@85"): 4.11,
             ("davis", "NoC@90"): 5.34},
        ),
        OfficialWeights(
            "gto99-synthft", "InterSegSynthFT.pth", GTO99_DRIVE, "144 MB", "gto99", "",
            "gto99 ResNet-50 GN+WS, synthetic pre-training + SBD fine-tuning (the paper's gto99)",
            {("grabcut", "NoC@90"): 1.74, ("berkeley", "NoC@90"): 2.93},
            direct=False,
        ),
    )
}  # fmt: skip
"""Registry name -> the official file it builds from."""

OFFICIAL_NAMES: tuple[str, ...] = tuple(OFFICIAL)
OFFICIAL_PAIR: dict[str, str] = {"ritm": "ritm-sbd-h18", "gto99": "gto99-synthft"}
"""The paper's two models, family -> registry name: the set name ``official``."""
OWN_SETTINGS: dict[str, str] = {"ritm": "ritm", "gto99": "gto99"}
"""Family -> the inference settings of that paper's own protocol (``iislib.models.settings``)."""


weights_dir = paths.weights_dir
"""The weights folder: ``$IISLIB_WEIGHTS``, else ``data/weights`` under ``IISLIB_HOME``."""


def get_entry(name: str) -> OfficialWeights:
    """The official file of registry ``name``; ValueError naming the known ones otherwise."""
    try:
        return OFFICIAL[name]
    except KeyError:
        raise ValueError(f"{name!r} is no official weights name; known: "
                         f"{', '.join(OFFICIAL)}") from None  # fmt: skip


def weights_path(name: str) -> Path:
    """Where the file of official ``name`` goes (it may not exist)."""
    return weights_dir() / get_entry(name).file


def is_present(name: str) -> bool:
    return weights_path(name).is_file()


def missing_message(name: str) -> str:
    """One line: the file, its link and the folder it belongs in."""
    w = get_entry(name)
    how = "download it from" if w.direct else "download it by hand (Google Drive) from"
    return (f"{name}: {w.file} ({w.size}) is not in the weights folder {weights_dir()} "
            f"(${WEIGHTS_ENV}); {how} {w.url} and put it there")  # fmt: skip


def locate(name: str) -> Path:
    """The present file of official ``name``; FileNotFoundError with ``missing_message``."""
    path = weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(missing_message(name))
    return path


def sha256(path: str | Path) -> str:
    """Hex SHA256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# structure check and building


def _read(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, foreign or unsafe: all unusable
        raise ValueError(f"{path}: not a readable PyTorch weights file (truncated, or another "
                         f"format): {type(e).__name__}: {e}") from None  # fmt: skip


def _ritm_problems(w: OfficialWeights, obj: Any) -> list[str]:
    import torch

    from iislib.models.checkpoint import state_dict_problems
    from iislib.models.ritm import VARIANTS, build_ritm, config_params

    if not isinstance(obj, Mapping) or "state_dict" not in obj or "config" not in obj:
        keys = sorted(map(str, obj))[:6] if isinstance(obj, Mapping) else type(obj).__name__
        return [f"not RITM's {{'state_dict', 'config'}} checkpoint (it holds {keys})"]
    try:
        arch = config_params(obj["config"])
    except (ValueError, KeyError, TypeError) as e:
        return [f"its config is not a supported RITM config: {e}"]
    want = VARIANTS[w.variant]
    got = {k: arch[k] for k in ("width", "ocr_width", "small")}
    if got != {k: want[k] for k in got}:
        return [f"its config is another architecture ({got}), not {w.variant}"]
    with torch.device("meta"):
        net = build_ritm(w.variant)
    sd = obj["state_dict"]
    if not isinstance(sd, Mapping):
        return ["its 'state_dict' is not a dictionary of tensors"]
    sd = {str(k).removeprefix("module."): v for k, v in sd.items()}
    return state_dict_problems(net.state_dict(), sd, ("num_batches_tracked",))


def _gto99_problems(obj: Any) -> list[str]:
    import torch

    from iislib.models.checkpoint import state_dict_problems
    from iislib.models.gto99 import build_gto99

    if isinstance(obj, Mapping) and "state_dict" in obj:
        return [f"a {{'state_dict', ...}} checkpoint (keys {sorted(map(str, obj))[:6]}), not "
                "gto99's plain state dict"]  # fmt: skip
    if not isinstance(obj, Mapping):
        return [f"it holds a {type(obj).__name__}, not a state dict"]
    with torch.device("meta"):
        net = build_gto99()
    sd = {str(k).removeprefix("module."): v for k, v in obj.items()}
    return state_dict_problems(net.state_dict(), sd)


def check_file(name: str, path: str | Path | None = None) -> Any:
    """Check that ``path`` (default: the file in the weights folder) is official ``name``'s
    file: readable, the right format, every tensor of the right architecture present with its
    shape. Returns what ``torch.load`` read.

    Raises:
        FileNotFoundError: no file (``missing_message`` for the weights folder's file).
        ValueError: what is wrong, naming the file and the name.
    """
    w = get_entry(name)
    path = locate(name) if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file (for {name})")
    obj = _read(path)
    problems = _ritm_problems(w, obj) if w.family == "ritm" else _gto99_problems(obj)
    if problems:
        raise ValueError(f"{path} is not the official {w.file} of {name} ({w.what}): "
                         + "; ".join(problems))  # fmt: skip
    return obj


def build(name: str, checkpoint: str | Path | None = None, **kwargs: Any):
    """The model of official ``name`` from its file (``checkpoint``: another path to the same
    kind of file; default: the weights folder's), after ``check_file``. ``kwargs`` go to the
    family's model (``fast``, ``device``, ...)."""
    w = get_entry(name)
    path = locate(name) if checkpoint is None else Path(checkpoint)
    obj = check_file(name, path)
    if w.family == "ritm":
        from iislib.models.ritm import RITM

        model = RITM(checkpoint=obj, **kwargs)
    else:
        from iislib.models.gto99 import GTO99

        model = GTO99(checkpoint=path, **kwargs)
    model.weights_file = str(path)  # type: ignore[attr-defined]
    return model


def factory(name: str):
    """The registry factory of official ``name``: ``factory(name)(**kwargs)`` builds it."""
    get_entry(name)

    def make(**kwargs: Any):
        return build(name, **kwargs)

    make.__name__ = make.__qualname__ = f"official_{name.replace('-', '_')}"
    make.official = name  # type: ignore[attr-defined]
    return make


# ----------------------------------------------------------------------------------------------
# the listing behind `python -m iislib weights` and `make weights`


@dataclass
class Status:
    """One official file as found in the weights folder."""

    weights: OfficialWeights
    path: Path
    present: bool
    check: str  # "ok", the problem, or "" when absent
    sha256: str  # "" when absent

    @property
    def ok(self) -> bool:
        return self.present and self.check == "ok"


def status(name: str, digest: bool = True) -> Status:
    """The file of official ``name`` in the weights folder: present, structure check, SHA256."""
    w, path = get_entry(name), weights_path(name)
    if not path.is_file():
        return Status(w, path, False, "", "")
    try:
        check_file(name, path)
        check = "ok"
    except (ValueError, FileNotFoundError) as e:
        check = str(e)
    return Status(w, path, True, check, sha256(path) if digest else "")


def format_status(s: Status) -> str:
    """Lines describing one official file (what ``iislib weights`` prints)."""
    w = s.weights
    head = f"{w.name:20s} {w.file:30s} {w.size:>8s}  {w.what}"
    if not s.present:
        how = "download the link above" if w.direct else "download the page above by hand"
        state = f"missing: {how} into {s.path.parent}"
    elif s.ok:
        state = f"present, structure check ok, sha256 {s.sha256}"
    else:
        state = f"present, structure check FAILED: {s.check}; sha256 {s.sha256}"
    return f"{head}\n{'':20s} {w.url}\n{'':20s} {state}"


def download(name: str, folder: Path | None = None) -> Path:
    """Fetch official ``name`` into ``folder`` (default ``weights_dir()``) with pooch, then
    check its structure. Only files with a direct link (RITM's); gto99's Google Drive file
    raises a ValueError saying where to put it.

    Raises:
        ValueError: no direct link, or the downloaded file fails ``check_file`` (it is removed).
        OSError / requests errors: the network could not be reached (nothing is left behind:
            pooch writes to a temporary file first).
    """
    import pooch

    w = get_entry(name)
    folder = Path(folder) if folder is not None else weights_dir()
    if not w.direct:
        raise ValueError(missing_message(name))
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(pooch.retrieve(w.url, known_hash=None, fname=w.file, path=folder,
                               progressbar=True))  # fmt: skip
    try:
        check_file(name, path)
    except ValueError:
        path.unlink(missing_ok=True)
        raise
    return path
