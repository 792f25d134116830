"""Absolute paths of the project's folders (notebooks must not rely on the working directory)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
"""The checkout's root (for an installed wheel, set IISLIB_HOME to choose where outputs go)."""

HOME = Path(os.environ.get("IISLIB_HOME", ROOT))
FIGURES = HOME / "figures"
BUILD = HOME / "build"
RESULTS = HOME / "results"
CACHE = HOME / ".cache" / "results"
DATA = HOME / "data"
"""Where datasets are downloaded when ``IISLIB_DATA`` is unset (``data/README.md`` lists them)."""
NOTEBOOKS = ROOT / "notebooks"
STYLE = PACKAGE / "drawing" / "paper.mplstyle"


def weights_dir() -> Path:
    """The official weights folder: ``$IISLIB_WEIGHTS`` (read at each call), else
    ``data/weights`` under ``IISLIB_HOME`` (``iislib.models.official`` lists its files)."""
    env = os.environ.get("IISLIB_WEIGHTS")
    return Path(env).expanduser() if env else DATA / "weights"
