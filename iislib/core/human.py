"""A person's clicks: a record that can be saved as JSON, and the robot that replays it.

The demo's "you click" mode (``iislib.apps.demo_app``) records the clicks a person places on one
image for one model; ``ClickRecord`` keeps them with what they were made on::

    rec = ClickRecord.new(image="berkeley/42049", gt=gt, model="ritm-compact")
    rec.add(Click(120, 200, True))          # time stamped now (ISO 8601, UTC)
    rec.save("my_clicks.json"); rec = ClickRecord.load("my_clicks.json")
    robot = ReplayRobot(rec)                # or get_robot("replay", clicks=rec)
    run(model, robot, image, gt, max_clicks=len(rec))   # the person's run, through Algorithm 1

The record names the mask by a digest (``mask_digest``: SHA256 of the bit-packed mask and its
shape), so a record is never replayed on another image or mask by mistake: ``ReplayRobot`` and
``ClickRecord.check_mask`` refuse it with a message saying what differs.

A replay is open-loop: it places the recorded clicks in their order whatever the model predicts,
whereas the person chose each click after seeing the previous prediction. Replayed on the model
it was recorded with (same settings, same image), it gives the person's own run again.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from iislib.atomic import write_text
from iislib.core.clicks import Click
from iislib.core.robots import Robot

FORMAT = "iislib.click-record"
"""The ``format`` field of every record file."""
VERSION = 1
"""The ``version`` field; a file of another version is refused."""
EXAMPLES = Path(__file__).resolve().parent / "examples"
"""Click records shipped with the package (examples, not user-study data)."""


class RecordError(ValueError):
    """A click record that cannot be read or used (bad file, another image or mask)."""


def mask_digest(gt: np.ndarray) -> str:
    """'sha256:<hex>' of a bool (H, W) mask: SHA256 of ``b"HxW:"`` then ``np.packbits`` of the
    mask in row-major order. Two masks share a digest only if they have the same shape and the
    same pixels."""
    a = np.asarray(gt)
    if a.ndim != 2:
        raise RecordError(f"the mask must be 2-D (H, W), got shape {a.shape}")
    if a.dtype != np.bool_:
        if not (np.issubdtype(a.dtype, np.number) and np.isin(a, (0, 1)).all()):
            raise RecordError(f"the mask must be bool or 0/1, got dtype {a.dtype}")
        a = a.astype(bool)
    h, w = a.shape
    digest = hashlib.sha256(f"{h}x{w}:".encode())
    digest.update(np.packbits(np.ascontiguousarray(a).ravel()).tobytes())
    return "sha256:" + digest.hexdigest()


_DIGEST = re.compile(r"(?i:sha256):[0-9a-fA-F]{64}")


def _short(e: object, limit: int = 200) -> str:
    """An exception's message (or any text), cut to ``limit`` characters (a refused value can
    be huge)."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _num(n: int) -> str:
    """``n`` for a message: in full up to 20 digits, else its ends and its digit count (a
    record can hold a number of thousands of digits)."""
    s = str(n)
    return s if len(s) <= 20 else f"{s[:6]}...{s[-4:]} ({len(s.lstrip('-'))} digits)"


def _max_digits() -> int:
    """Python's limit on the digits of an int read from text (3.10.7+; 4300 by default)."""
    return getattr(sys, "get_int_max_str_digits", lambda: 4300)()


def now_iso() -> str:
    """The current time, ISO 8601 in UTC with milliseconds (e.g. 2026-12-01T10:15:02.123+00:00)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _check_time(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise RecordError(
            f"{where}: time must be an ISO 8601 string, got {_short(repr(value), 60)}"
        )
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise RecordError(f"{where}: time {_short(repr(value), 60)} is not ISO 8601") from None
    return value


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise RecordError(f"{where} must be a whole number, got {_short(repr(value), 60)}")
    return int(value)


@dataclass
class ClickRecord:
    """A click sequence recorded on one image and mask for one model.

    Attributes:
        image: the image's id (e.g. ``"berkeley/42049"`` or an uploaded file's name).
        shape: (H, W) of the image and mask.
        mask_digest: ``mask_digest(gt)`` of the ground truth the clicks were made against.
        model: the model that predicted after each click (a registry name).
        clicks: the clicks, oldest first; (row, col) pixel, ``positive`` as the person chose.
        times: one ISO 8601 time stamp per click (when it was placed).
        settings: the inference settings of the model (``iislib.models.settings``).
        example: True for a sequence shipped as an example (not data from a user study).
        note: free text: who or what made it, and how.
    """

    image: str
    shape: tuple[int, int]
    mask_digest: str
    model: str
    clicks: list[Click] = field(default_factory=list)
    times: list[str] = field(default_factory=list)
    settings: str = "direct"
    example: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        self.mask_digest = str(self.mask_digest).lower()  # the hex digits, in either case
        h, w = (_whole(v, "shape") for v in self.shape)
        if h < 1 or w < 1:
            raise RecordError(f"shape must be (H, W) with H, W >= 1, got {self.shape}")
        self.shape = (h, w)
        self.clicks = [Click(int(c[0]), int(c[1]), bool(c[2])) for c in self.clicks]
        self.times = list(self.times)
        if len(self.times) != len(self.clicks):
            raise RecordError(f"{len(self.clicks)} clicks but {len(self.times)} time stamps")
        for i, c in enumerate(self.clicks):
            self._check_inside(c, f"click {i + 1}")

    @classmethod
    def new(
        cls, image: str, gt: np.ndarray, model: str, settings: str = "direct", **kwargs: Any
    ) -> ClickRecord:
        """An empty record for ``gt`` (bool (H, W)), image id ``image`` and ``model``."""
        gt = np.asarray(gt)
        return cls(image=str(image), shape=gt.shape, mask_digest=mask_digest(gt),
                   model=str(model), settings=str(settings), **kwargs)  # fmt: skip

    def __len__(self) -> int:
        return len(self.clicks)

    def _check_inside(self, click: Click, where: str) -> None:
        h, w = self.shape
        if not (0 <= click.row < h and 0 <= click.col < w):
            raise RecordError(
                f"{where} at (row {_num(click.row)}, col {_num(click.col)}) is outside the {w}x{h} image "
                f"(rows 0..{h - 1}, cols 0..{w - 1})"
            )

    def add(self, click: Click, time: str | None = None) -> None:
        """Append ``click`` (time stamp ``time``, default now); RecordError if outside the image."""
        click = Click(int(click[0]), int(click[1]), bool(click[2]))
        self._check_inside(click, f"click {len(self.clicks) + 1}")
        self.times.append(_check_time(time, "time") if time is not None else now_iso())
        self.clicks.append(click)

    def head(self, k: int) -> ClickRecord:
        """A copy holding the first ``k`` clicks (all of them when ``k`` >= their number)."""
        k = max(0, _whole(k, "k"))
        return replace(self, clicks=self.clicks[:k], times=self.times[:k])

    def undo(self) -> Click | None:
        """Remove and return the last click (None when there is none)."""
        if not self.clicks:
            return None
        self.times.pop()
        return self.clicks.pop()

    def reset(self) -> None:
        """Remove every click."""
        self.clicks.clear()
        self.times.clear()

    def check_mask(self, gt: np.ndarray, what: str = "this mask") -> None:
        """RecordError unless ``gt`` is the mask the record was made on (shape, then digest)."""
        gt = np.asarray(gt)
        if gt.shape != self.shape:
            raise RecordError(
                f"the click record of {self.image!r} was made on a {self.shape[1]}x{self.shape[0]} "
                f"mask, but {what} is {gt.shape[1]}x{gt.shape[0]}"
                if gt.ndim == 2
                else f"{what} must be a 2-D (H, W) mask, got shape {gt.shape}"
            )
        digest = mask_digest(gt)
        if digest != self.mask_digest:
            raise RecordError(
                f"the click record of {self.image!r} was made on another mask of the same size "
                f"(digest {self.mask_digest[:19]}..., {what}: {digest[:19]}...): replay it on "
                "the image and mask it was recorded on"
            )

    # -- JSON -----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON types (``format`` and ``version`` first)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "image": self.image,
            "shape": list(self.shape),
            "mask_digest": self.mask_digest,
            "model": self.model,
            "settings": self.settings,
            "example": self.example,
            "note": self.note,
            "clicks": [
                {"row": c.row, "col": c.col, "positive": c.positive, "time": t}
                for c, t in zip(self.clicks, self.times, strict=True)
            ],
        }

    def to_json(self) -> str:
        """The record as JSON text: one field per line, one click per line, newline at the end."""
        d = self.to_dict()
        clicks = d.pop("clicks")
        lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in d.items()]
        body = ",\n".join(f"  {json.dumps(c)}" for c in clicks)
        return (
            "{\n"
            + "\n".join(lines)
            + '\n "clicks": ['
            + (f"\n{body}\n ]" if clicks else "]")
            + "\n}\n"
        )

    @classmethod
    def from_dict(cls, d: Any, source: str = "click record") -> ClickRecord:
        """A record from ``to_dict``'s layout; RecordError naming the first problem (whatever
        it is: a value too large or too deeply nested to convert is a RecordError too)."""
        try:
            return cls._from_dict(d, source)
        except RecordError:
            raise
        except RecursionError:
            raise RecordError(f"{source}: nested too deeply to be a click record") from None
        except (ValueError, TypeError, OverflowError) as e:
            raise RecordError(f"{source}: not a click record ({_short(e)})") from None

    @classmethod
    def _from_dict(cls, d: Any, source: str) -> ClickRecord:
        if not isinstance(d, dict):
            raise RecordError(f"{source}: expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise RecordError(f"{source}: not an iislib click record (format {d.get('format')!r})")
        if d.get("version") != VERSION:
            raise RecordError(
                f"{source}: version {d.get('version')!r} is not supported (this is {VERSION})"
            )
        missing = [k for k in ("image", "shape", "mask_digest", "model", "clicks") if k not in d]
        if missing:
            raise RecordError(f"{source}: missing field(s) {', '.join(missing)}")
        for k in ("image", "model"):
            if not isinstance(d[k], str):
                raise RecordError(f"{source}: {k} must be text, got {type(d[k]).__name__}")
        shape = d["shape"]
        if not (isinstance(shape, list) and len(shape) == 2):
            raise RecordError(f"{source}: shape must be [H, W], got {shape!r}")
        digest = d["mask_digest"]
        if not (isinstance(digest, str) and _DIGEST.fullmatch(digest)):
            raise RecordError(f"{source}: mask_digest must be 'sha256:' and 64 hex digits")
        digest = digest.lower()  # hex digits in either case name the same mask
        if not isinstance(d["clicks"], list):
            raise RecordError(f"{source}: clicks must be a list")
        clicks, times = [], []
        for i, c in enumerate(d["clicks"]):
            where = f"{source}: click {i + 1}"
            if not isinstance(c, dict) or not {"row", "col", "positive"} <= set(c):
                raise RecordError(f"{where} must be an object with row, col, positive (and time)")
            if not isinstance(c["positive"], bool):
                raise RecordError(f"{where}: positive must be true or false, got {c['positive']!r}")
            clicks.append(Click(_whole(c["row"], f"{where}: row"),
                                _whole(c["col"], f"{where}: col"), c["positive"]))  # fmt: skip
            times.append(_check_time(c.get("time"), where))
        try:
            return cls(
                image=str(d["image"]),
                shape=(_whole(shape[0], f"{source}: shape"), _whole(shape[1], f"{source}: shape")),
                mask_digest=digest, model=str(d["model"]), clicks=clicks, times=times,
                settings=str(d.get("settings", "direct")), example=bool(d.get("example", False)),
                note=str(d.get("note", "")),
            )  # fmt: skip
        except RecordError as e:
            raise RecordError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "click record") -> ClickRecord:
        """A record from JSON text; RecordError when it is not valid JSON or not a record."""
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RecordError(f"{source} is not valid JSON: {e}") from None
        except RecursionError:
            raise RecordError(f"{source}: nested too deeply to be a click record") from None
        except ValueError:  # a number of more digits than Python converts (4300, by default)
            raise RecordError(f"{source} cannot be read: a number in it is too long "
                              f"(over {_max_digits()} digits)") from None  # fmt: skip
        return cls.from_dict(d, source)

    def save(self, path: str | Path) -> Path:
        """Write the record as JSON to ``path`` (a temporary file renamed into place)."""
        return write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> ClickRecord:
        """Read a record written by ``save``."""
        path = Path(path)
        try:
            text = path.read_bytes()
        except OSError as e:
            raise RecordError(f"cannot read click record {path}: {e.strerror}") from None
        return cls.from_json(text, str(path))


def example_records() -> list[Path]:
    """The click records shipped in ``EXAMPLES`` (sorted by name)."""
    return sorted(EXAMPLES.glob("*.json"))


def example_record(name: str | None = None) -> ClickRecord:
    """A shipped example record (``name``: its file stem; default the first one)."""
    files = example_records()
    if name is not None:
        files = [f for f in files if f.stem == name]
    if not files:
        known = ", ".join(f.stem for f in example_records()) or "none"
        raise RecordError(f"no shipped click record {name!r}; shipped: {known}")
    return ClickRecord.load(files[0])


class ReplayRobot(Robot):
    """The robot that places recorded clicks, in their order: click k of the record at step k.

    Args:
        clicks: a ``ClickRecord`` (its mask digest is then checked against every ``gt``), or a
            sequence of ``Click`` / (row, col, positive) (no check).
        name: the robot's name in results (default ``"replay"``).

    The robot returns END (None) after the last recorded click, and also when the prediction
    has no error left (as every robot does: there is nothing to correct). It raises ValueError
    (``RecordError``) when ``gt`` is not the recorded mask, when a recorded click lies outside
    ``gt``, or when the clicks placed so far are not the record's first ones (the robot was
    handed another run's clicks). It uses no randomness.
    """

    name, random = "replay", False

    def __init__(self, clicks: ClickRecord | Sequence[Click], name: str = "replay") -> None:
        super().__init__(name=str(name))
        if isinstance(clicks, ClickRecord):
            self.record: ClickRecord | None = clicks
            seq = list(clicks.clicks)
        else:
            self.record = None
            try:
                seq = [Click(int(c[0]), int(c[1]), bool(c[2])) for c in clicks]
            except (TypeError, IndexError, ValueError):
                raise RecordError(
                    "clicks must be a ClickRecord or a sequence of (row, col, positive)"
                ) from None
        self.clicks: tuple[Click, ...] = tuple(seq)
        self._checked: np.ndarray | None = None  # the last gt whose digest matched
        who = f" on {self.record.image}" if self.record is not None else ""
        self.label = f"replay of {len(self.clicks)} recorded clicks{who}"

    def __len__(self) -> int:
        return len(self.clicks)

    def __repr__(self) -> str:
        return f"ReplayRobot({len(self.clicks)} clicks, name={self.name!r})"

    def _check(self, gt: np.ndarray, clicks: Sequence[Click]) -> None:
        # The digest is computed once per mask object: the loop passes the same gt every step
        # (the reference is kept, so the object cannot be replaced by another at the same id).
        if self.record is not None and self._checked is not gt:
            self.record.check_mask(gt, "the ground truth")
            self._checked = gt
        h, w = np.asarray(gt).shape
        for i, c in enumerate(self.clicks):
            if not (0 <= c.row < h and 0 <= c.col < w):
                raise RecordError(
                    f"recorded click {i + 1} at (row {_num(c.row)}, col {_num(c.col)}) is outside the "
                    f"{w}x{h} image"
                )
        k = len(clicks)
        if tuple(Click(*c) for c in clicks) != self.clicks[:k]:
            raise RecordError(
                "the clicks placed so far are not the first recorded ones: a replay robot "
                "continues only its own run"
            )

    def cache_token(self) -> str:
        """What identifies this robot's clicks in a results cache (``evaluate``): SHA256 of the
        recorded clicks and, for a record, its image id and mask digest."""
        ident = [[int(c.row), int(c.col), bool(c.positive)] for c in self.clicks]
        if self.record is not None:
            ident = [self.record.image, self.record.mask_digest, ident]
        return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:24]

    def next_click(self, k: int) -> Click | None:
        """Recorded click k + 1 (0-based index ``k``), or None after the last one."""
        return self.clicks[k] if 0 <= k < len(self.clicks) else None

    def __call__(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        clicks: Sequence[Click],
        rng: np.random.Generator | None = None,
        ignore: np.ndarray | None = None,
    ) -> Click | None:
        """The next recorded click, or None (END) after the last one or with no error left."""
        self._check(gt, clicks)
        pred, gtb = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
        error = pred != gtb
        if ignore is not None:
            error &= ~np.asarray(ignore, dtype=bool)
        if not error.any():
            return None
        return self.next_click(len(clicks))

    def sampling_map(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        clicks: Sequence[Click] = (),
        ignore: np.ndarray | None = None,
    ) -> np.ndarray:
        """float64 (H, W): 1.0 at the pixel the robot clicks next, 0 elsewhere (all 0 at END)."""
        out = np.zeros(np.asarray(gt).shape, np.float64)
        click = self(pred, gt, clicks, None, ignore=ignore)
        if click is not None:
            out[click.row, click.col] = 1.0
        return out


def pixel_distance(a: Click | None, b: Click | None) -> float:
    """Euclidean distance in pixels between two clicks' (row, col); NaN when either is None."""
    if a is None or b is None:
        return math.nan
    return math.hypot(a.row - b.row, a.col - b.col)


def mass_percentile(p: np.ndarray, row: int, col: int) -> float:
    """Where pixel (row, col) falls in the distribution ``p`` (float (H, W), >= 0), in percent.

    The mid-rank percentile: 100 x (mass of the pixels strictly less likely than (row, col) +
    half the mass of the pixels exactly as likely, itself included) / total mass. 0 means the
    robot never clicks there (probability 0); a uniform robot gives 50 to every pixel it can
    click; values near 100 mark the pixels the robot prefers. NaN when ``p`` has no mass.
    """
    p = np.asarray(p, dtype=np.float64)
    total = p.sum()
    if not total > 0:
        return math.nan
    v = p[row, col]
    if v <= 0:
        return 0.0
    below = p[p < v].sum()
    equal = p[p == v].sum()
    return float(100.0 * (below + 0.5 * equal) / total)


__all__ = [
    "EXAMPLES",
    "FORMAT",
    "VERSION",
    "ClickRecord",
    "RecordError",
    "ReplayRobot",
    "example_record",
    "example_records",
    "mask_digest",
    "mass_percentile",
    "now_iso",
    "pixel_distance",
]
