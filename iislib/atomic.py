"""Write files so that a reader never sees half of one: a temporary file, then a rename.

Every output of iislib (tables, summaries, figures, cards, weights, click records, notebooks)
goes through here. The temporary file lies in the target's folder (a rename within one
filesystem is atomic), has a unique name (two processes never share one) and is removed when
writing fails, so a full disk or a killed process leaves the previous file as it was. A failed
write raises ``OSError`` naming the file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """A unique hidden name beside ``path`` that keeps its suffix (``.name.<hex>.tmp.png``), so
    that writers that choose a format by extension (matplotlib, torch) still do."""
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _named(e: OSError, path: Path) -> OSError:
    """``e`` again, its message naming ``path`` and saying that the old file is intact."""
    why = e.strerror or str(e) or type(e).__name__
    out = type(e)(e.errno, f"cannot write {path}: {why} (nothing was replaced)")
    out.filename = str(path)
    return out


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on leaving the block it is
    flushed to disk and renamed over ``path``. If the block raises, the temporary file is removed
    and ``path`` is left as it was (an ``OSError`` is raised again naming ``path``).

        with replacing("fig.png") as tmp:
            fig.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _named(e, path) from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path``'s content by ``data`` atomically; return ``path``."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Replace ``path``'s content by ``text`` (UTF-8) atomically; return ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_with(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Replace ``path`` by what ``write(tmp)`` writes to a temporary path; return ``path``."""
    with replacing(path) as tmp:
        write(tmp)
    return Path(path)


def write_files(files: Mapping[str | Path, bytes]) -> list[Path]:
    """Replace several files together: every new content is written and flushed first, then all
    are renamed into place. A failed write replaces none of them (a disk that fills up after the
    first file never leaves a new table beside an old summary). Returns the paths in order."""
    paths = [Path(p) for p in files]
    tmps: list[Path] = []
    try:
        for path, data in zip(paths, files.values(), strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmps.append(temporary_name(path))
            try:
                tmps[-1].write_bytes(data)
                _fsync(tmps[-1])
            except OSError as e:
                raise _named(e, path) from e
        for tmp, path in zip(tmps, paths, strict=True):
            os.replace(tmp, path)  # a rename needs no space
    except BaseException:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    return paths
