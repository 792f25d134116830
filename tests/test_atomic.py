"""Nothing half-written: every output is replaced whole or not at all (``iislib.atomic``), and a
result table cut short is refused by ``read_table``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iislib.atomic import replacing, write_bytes, write_files
from iislib.experiment.sweep import TableError, evaluate, read_table

from .conftest import write_folder_dataset

ROOT = Path(__file__).resolve().parent.parent


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*tmp*"))


def test_write_bytes_replaces_whole(tmp_path):
    p = write_bytes(tmp_path / "sub" / "a.csv", b"new\n")
    assert p.read_bytes() == b"new\n" and _leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file_and_names_it(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"old\n")
    with pytest.raises(RuntimeError), replacing(p) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert p.read_bytes() == b"old\n" and _leftovers(tmp_path) == []

    def fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match=r"cannot write .*a\.csv: No space left on device"):
        with replacing(p) as tmp:
            fail(tmp)
    assert p.read_bytes() == b"old\n" and _leftovers(tmp_path) == []


def test_write_files_is_all_or_none(tmp_path, monkeypatch):
    a, b = tmp_path / "t.csv", tmp_path / "t_summary.csv"
    a.write_bytes(b"old table\n")
    b.write_bytes(b"old summary\n")
    real = Path.write_bytes

    def full_disk(self, data):  # the second file does not fit
        if "summary" in self.name:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError, match=r"t_summary\.csv"):
        write_files({a: b"new table\n", b: b"new summary\n"})
    monkeypatch.undo()
    assert (a.read_bytes(), b.read_bytes()) == (b"old table\n", b"old summary\n")
    assert _leftovers(tmp_path) == []
    assert write_files({a: b"1\n", b: b"2\n"}) == [a, b] and a.read_bytes() == b"1\n"


_FULL_DISK = """
import resource, sys
from iislib.apps.cli import main
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # files over `limit` bytes: EFBIG
sys.exit(main(sys.argv[2:]))
"""


def _cli(args: list[str], limit: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-c", _FULL_DISK, str(limit or 1 << 40), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_evaluate_on_a_full_disk_leaves_the_previous_outputs(tmp_path):
    """Issue 26, section 2: with RLIMIT_FSIZE making the disk look full while ``evaluate --out``
    writes, the previous table, summary and figures stay as they were (the old code left a
    truncated table beside the old summary), the error names the file, and no temporary file
    is left."""
    folder = write_folder_dataset(tmp_path / "tiny")
    out, figs = tmp_path / "r", tmp_path / "f"
    common = ["evaluate", "--dataset", str(folder), "--models", "random_walker",
              "--settings", "direct", "--out", str(out), "--figures", str(figs),
              "--no-cache", "--quiet"]  # fmt: skip
    first = _cli([*common, "--robots", "r02", "--max-clicks", "2"])
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in sorted([*out.iterdir(), *figs.iterdir()])}
    table = out / "tiny_direct.csv"
    assert len(before) == 4 and len(read_table(table)) == 3 * 2

    # a bigger run: its table (~7 kB) is over the limit, which the old table (~1 kB) was not
    limit = 4000
    second = _cli([*common, "--robots", "r02,rritm,rgto99", "--max-clicks", "6"], limit)
    assert second.returncode == 1
    assert f"cannot write {table}" in second.stderr and "File too large" in second.stderr
    assert "Traceback" not in second.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert _leftovers(tmp_path) == []
    assert len(read_table(table)) == 3 * 2


@pytest.fixture(scope="module")
def table_bytes(tmp_path_factory) -> bytes:
    folder = write_folder_dataset(tmp_path_factory.mktemp("d") / "tiny", n=2)
    from iislib.experiment.data import load_dataset

    t = evaluate(["random_walker"], ["r02", "rgto99"], load_dataset(folder), max_clicks=3,
                 settings="direct", progress=False)  # fmt: skip
    return t.to_csv(index=False).encode()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cut=st.floats(0, 1, exclude_max=True))
def test_read_table_refuses_a_table_cut_short(table_bytes, tmp_path, cut):
    """A table cut at any byte is refused naming the file, except at the end of a whole
    trajectory, where what is left is a whole (smaller) table."""
    lines = table_bytes.splitlines(keepends=True)
    # byte offsets where a trajectory (3 clicks) ends: after the header and 3k rows
    ends = {sum(map(len, lines[: 1 + 3 * k])) for k in range(1, (len(lines) - 1) // 3)}
    n = int(cut * len(table_bytes))
    path = tmp_path / "t.csv"
    path.write_bytes(table_bytes[:n])
    if n in ends:
        assert len(read_table(path)) == (table_bytes[:n].count(b"\n") - 1)
    else:
        with pytest.raises(TableError, match=str(path)):
            read_table(path)


def test_read_table_reads_a_whole_table(table_bytes, tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(table_bytes)
    t = read_table(path)
    assert len(t) == 2 * 2 * 3 and t["image"].tolist()[0] == "img0"
