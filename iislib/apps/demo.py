"""``iislib demo``'s files: curves.png, panel.png and scores.csv (timings.csv on request).

    result = run_demo(image, gt, "random_walker", "rritm", clicks=20)   # iislib.experiment.demo
    write_outputs("out", result)  # curves.png, panel.png, scores.csv (all or nothing)

The runs come from ``iislib.experiment.demo``, the pictures from ``iislib.drawing.demo_figures``
and a person's clicking session from ``iislib.experiment.session``; the command line
(``iislib.apps.cli``) and the widgets (``iislib.apps.demo_app``, ``notebooks/05_demo.py``) wire
them. This module only checks the output folder, renders the files and writes them atomically.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from iislib.drawing.demo_figures import fig_curves, fig_panel, figure_png
from iislib.experiment.demo import DemoError, DemoResult, scores_csv, timings_csv

OUTPUT_FILES: tuple[str, ...] = ("curves.png", "panel.png", "scores.csv")
"""What ``write_outputs`` writes, always all three."""
TIMINGS_FILE = "timings.csv"
"""Written beside them only on request: wall times change from run to run."""


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as a Path when the outputs can be written there; DemoError saying why not.

    Checked before any work: the folder must not be a file nor lie under one, and the nearest
    existing folder on its path must accept a new file (tried for real, so read-only file
    systems and permissions are both seen). Nothing is left behind.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DemoError(f"output folder {out} is a file, not a folder")
    base = out
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise DemoError(f"output folder {out} lies under the file {base}")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".iislib-probe-")
    except OSError as e:
        raise DemoError(f"output folder {out} cannot be written ({base}: {e.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return out


def render_outputs(
    result: DemoResult,
    other: DemoResult | None = None,
    k: int | None = None,
    timings: bool = False,
) -> dict[str, bytes]:
    """{file name: bytes} of curves.png, panel.png (at click ``k``, default K) and scores.csv,
    and timings.csv when ``timings``."""
    runs = [result] if other is None else [result, other]
    k = result.clicks if k is None else result.check_click(k)
    files = {
        "curves.png": figure_png(fig_curves(*runs)),
        "panel.png": figure_png(fig_panel(result, k, other)),
        "scores.csv": scores_csv(runs),
    }
    if timings:
        files[TIMINGS_FILE] = timings_csv(runs)
    return files


def write_outputs(
    out_dir: str | Path,
    result: DemoResult,
    other: DemoResult | None = None,
    k: int | None = None,
    render: Callable[..., dict[str, bytes]] = render_outputs,
    timings: bool = False,
) -> list[Path]:
    """Write curves.png, panel.png and scores.csv (and timings.csv) into ``out_dir``: all or none.

    Everything is rendered in memory first, then written to temporary files that are renamed
    into place; any failure removes the temporary files and leaves ``out_dir`` as it was (a
    folder created here is removed again).

    Returns:
        The paths, in ``OUTPUT_FILES`` order, then ``TIMINGS_FILE`` when ``timings``.
    """
    files = render(result, other, k, timings=True) if timings else render(result, other, k)
    names = (*OUTPUT_FILES, TIMINGS_FILE) if timings else OUTPUT_FILES
    out = Path(out_dir)
    created = not out.exists()
    tmps: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for fname in names:
            tmp = out / f".{fname}.tmp{os.getpid()}"
            tmps.append(tmp)
            tmp.write_bytes(files[fname])
        for fname, tmp in zip(names, tmps, strict=True):
            os.replace(tmp, out / fname)
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    return [out / f for f in names]


__all__ = ["OUTPUT_FILES", "TIMINGS_FILE", "check_out_dir", "render_outputs", "write_outputs"]
