"""The notebooks: structure of the sources, jupytext round trip, and a smoke run of each.

The smoke run executes every ``notebooks/NN_*.py`` with papermill (``smoke=True``: 2 images, 4
clicks) into ``build/notebooks/smoke/`` (where ``make test`` then runs nbval on them) and checks
that each figure a notebook promises (``figures.NOTEBOOK_FIGURES``) was written as a valid PNG
and PDF into ``figures/smoke/``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from iislib import paths
from iislib.figures import NOTEBOOK_FIGURES
from iislib.notebooks import execute, notebook_sources, to_ipynb

SOURCES = notebook_sources()
OURS = [s for s in SOURCES if s.stem in NOTEBOOK_FIGURES]
SMOKE_OUT = paths.BUILD / "notebooks" / "smoke"


def test_every_promised_notebook_exists():
    assert sorted(s.stem for s in OURS) == sorted(NOTEBOOK_FIGURES)


@pytest.mark.parametrize("src", OURS, ids=lambda p: p.stem)
def test_notebook_structure(src: Path, tmp_path: Path):
    nb = nbformat.read(to_ipynb(src, tmp_path), as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    text = params[0].source
    for name in ("dataset", "models", "robots", "n_images", "max_clicks", "seeds", "settings",
                 "n_jobs"):  # fmt: skip
        assert f"\n{name}: " in f"\n{text}", f"parameter {name} missing or untyped"
    assert "smoke: bool = False" in text and 'models: str = "ready"' in text
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any('"CI" in os.environ' in c.source for c in code)
    for c in code:
        if "widgets." in c.source:
            assert "nbval-ignore-output" in c.metadata.get("tags", []), c.source
        # notebooks only call the library: no function or class definitions
        assert "\ndef " not in f"\n{c.source}" and "\nclass " not in f"\n{c.source}"
    assert nb.cells[0].cell_type == "markdown", "narrative first"


def test_jupytext_round_trip_is_byte_identical(tmp_path: Path):
    """py -> ipynb -> py with the repository's jupytext.toml gives the same bytes (tags kept)."""
    shutil.copy(paths.ROOT / "jupytext.toml", tmp_path / "jupytext.toml")
    copies = [shutil.copy(s, tmp_path / s.name) for s in OURS]
    jt = [sys.executable, "-m", "jupytext", "--quiet"]
    subprocess.run([*jt, "--to", "ipynb", *map(str, copies)], check=True, cwd=tmp_path)
    for c in copies:
        Path(c).unlink()
    subprocess.run([*jt, "--to", "py:percent", *[str(Path(c).with_suffix(".ipynb")) for c in copies]],
                   check=True, cwd=tmp_path)  # fmt: skip
    for src in OURS:
        assert (tmp_path / src.name).read_bytes() == src.read_bytes(), src.name


def _valid_png(path: Path) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert min(im.size) > 100, f"{path}: suspiciously small {im.size}"


def _valid_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and data.rstrip().endswith(b"%%EOF"), path


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_notebook_smoke_run(src: Path, data_root: Path):
    folder = paths.FIGURES / "smoke"
    promised = NOTEBOOK_FIGURES.get(src.stem, ())
    for name in promised:  # stale files from an earlier run must not pass the test
        for ext in ("png", "pdf"):
            (folder / f"{name}.{ext}").unlink(missing_ok=True)
    out = execute(src, SMOKE_OUT, {"smoke": True}, timeout=300)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    for name in promised:
        _valid_png(folder / f"{name}.png")
        _valid_pdf(folder / f"{name}.pdf")


def test_every_run_has_a_cell_timeout(monkeypatch, tmp_path):
    """A kernel that goes silent must end in a retry or an error, never in an endless wait."""
    from iislib import notebooks

    seen = []
    monkeypatch.setattr(notebooks, "execute", lambda src, out, params, **kw: seen.append(kw) or out)
    notebooks.run_all(smoke=False, only=["01"], out_dir=tmp_path)
    notebooks.run_all(smoke=True, only=["01"], out_dir=tmp_path)
    notebooks.run_all(smoke=False, only=["01"], out_dir=tmp_path, timeout=7)
    assert [kw["timeout"] for kw in seen] == [
        notebooks.FULL_CELL_TIMEOUT,
        notebooks.SMOKE_CELL_TIMEOUT,
        7,
    ]
