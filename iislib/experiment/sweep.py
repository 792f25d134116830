"""The evaluation sweep: models x robots x images x seeds, as one tidy table, cached and resumable.

    table = evaluate(["random_walker"], ROBOT_NAMES, load_dataset("berkeley"), max_clicks=20)

One row per model x robot x image x seed x click with the click (row, col, positive), every
metric, the settings name and the model and robot time. The unit of work is one (model, image,
seed): its robots run in lockstep (``loop.run_many``) so a network sees one batch per step. Each
finished (model, robot, image, seed) is written to the cache at once (write, then rename), so an
interrupted sweep resumes with nothing lost and a rerun computes only what is missing. Cache keys
hold everything that changes a result: model name, arguments and weights, settings, dataset
folder, image name and content (the SHA256 of the image and mask files and the mask rule:
``Dataset.content_key``), robot, seed, max_clicks, the library version and the score columns
(``SCORE_NAMES``: a cache written before a column existed, such as ``boundary_iou``, is not read;
every entry is recomputed).

A cache file is never trusted blindly: its first line, ``# iislib-cache v1 rows=N key=K
sha256=D``, holds the number of rows it must have, the SHA256 of its key and the SHA256 of the
CSV below it. A file that fails any check (empty, truncated, edited, rows dropped or duplicated,
another result copied over it, or written by an older iislib without that line) is reported
with a ``CacheWarning`` naming it and what is wrong, then recomputed and replaced.

Jobs run in this process, in local worker processes (joblib/loky, ``n_jobs``) or on a Dask
cluster (``scheduler=``); every path writes the same cache files.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import operator
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from iislib import __version__
from iislib.atomic import write_bytes
from iislib.core.loop import Trajectory, make_rng, run_many
from iislib.core.metrics import BOUNDARY_IOU, SCORE_NAMES, auc, miou_at, noc, nof
from iislib.core.robots import ENVELOPE_ROBOTS, ROBOTS, Robot, get_robot
from iislib.experiment.cluster import NEEDS_DISTRIBUTED, check_scheduler, connect_timeout
from iislib.experiment.data import Dataset, file_digest, load_dataset
from iislib.models import (
    IISModel,
    accepts,
    available_models,
    cache_version,
    check_device,
    get_model,
    is_user_model,
    known_models,
    resolve_names,
)
from iislib.models import official as _official
from iislib.models.compact import COMPACT_NAMES, shipped_weights
from iislib.models.settings import DEFAULT_SETTINGS, Settings, get_settings
from iislib.runtime import keep_freed_memory, set_threads, worker_pool

_REGISTERED = {**ROBOTS, **ENVELOPE_ROBOTS}

COLUMNS: tuple[str, ...] = (
    "dataset", "settings", "model", "robot", "image", "seed", "click",
    "row", "col", "positive", *SCORE_NAMES, "model_seconds", "robot_seconds",
)  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """A model to build by registry name with keyword arguments, under a display label, on
    ``device`` (not part of the key: like two CPUs, a GPU moves network outputs in the last
    bits only; docs/decisions.md)."""

    label: str
    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    device: str = "cpu"

    def build(self) -> IISModel:
        kwargs = dict(self.kwargs)
        if self.device != "cpu" and accepts(self.name, "device"):
            kwargs["device"] = self.device  # a model without a device argument runs on the CPU
        return get_model(self.name, **kwargs)

    def key(self) -> str:
        """Everything about the model that changes its results: weights (their digest) and,
        for a user's model, the ``cache_version`` it declares."""
        digest = _weights_digest(self)
        version = cache_version(self.name)
        return json.dumps(
            [self.name, sorted(self.kwargs)] + ([digest] if digest else [])
            + ([f"cache_version={version}"] if version is not None else []),
            default=str,
        )  # fmt: skip


def _weights_digest(spec: ModelSpec) -> str:
    """SHA256 prefix of the weights file a spec loads ('' for a model without one).

    Part of the cache key, so results of retrained or replaced weights are never reused.
    """

    kw = dict(spec.kwargs)
    path = kw.get("weights") or kw.get("checkpoint")
    if path is None and spec.name in COMPACT_NAMES:
        path = shipped_weights(spec.name)
    if path is None or not isinstance(path, str | os.PathLike) or not Path(path).is_file():
        return ""
    return file_digest(path)[:16]  # hashed once per file version (path, size, mtime, ctime, inode)


_MODELS_EXPECTED = (
    'models must be a registry name, a list of names, or {label: {"name": '
    "registry name, **constructor kwargs}} (or {label: registry name})"
)


def as_specs(
    models: str | Sequence[str] | Mapping[str, str | Mapping[str, Any]],
) -> list[ModelSpec]:
    """Model names, or {label: {"name": registry name, **kwargs}} (or {label: name}), as
    ModelSpecs; ValueError saying what is expected for anything else.

    An official name (``iislib.models.official``) without a ``checkpoint`` gets its file's
    absolute path in the weights folder as ``checkpoint``, so that a Dask worker builds it from
    the same file and the key holds that file's digest; FileNotFoundError (one line: the file,
    its link, the folder) when the file is missing.
    """
    if isinstance(models, str):
        models = [models]
    if isinstance(models, Mapping):
        out = []
        for label, kw in models.items():
            if isinstance(kw, str):
                kw = {"name": kw}
            if not isinstance(label, str) or not isinstance(kw, Mapping):
                raise ValueError(f"{_MODELS_EXPECTED}; got {label!r}: {kw!r}")
            kw = dict(kw)
            name = kw.pop("name", label)
            if not isinstance(name, str):
                raise ValueError(f"{_MODELS_EXPECTED}; got {label!r}: {{'name': {name!r}}}")
            out.append(ModelSpec(label, name, tuple(sorted(_official_kwargs(name, kw).items()))))
        return out
    if not isinstance(models, Iterable) or not all(isinstance(m, str) for m in models):
        raise ValueError(f"{_MODELS_EXPECTED}; got {models!r}")
    return [ModelSpec(m, m, tuple(sorted(_official_kwargs(m, {}).items()))) for m in models]


def _official_kwargs(name: str, kw: dict[str, Any]) -> dict[str, Any]:
    if name in _official.OFFICIAL and kw.get("checkpoint") is None:
        kw = {**kw, "checkpoint": str(_official.locate(name).absolute())}
    return kw


def _as_dataset(dataset: Any) -> Dataset:
    """``evaluate``'s dataset: a Dataset, or a name or folder for ``load_dataset``."""
    if isinstance(dataset, Dataset):
        return dataset
    if isinstance(dataset, str | os.PathLike):
        return load_dataset(dataset)
    raise ValueError(
        "dataset must be a Dataset (load_dataset(name or folder), .subset(n) or .select(names) "
        f"for some of its images) or a dataset name or folder, got {type(dataset).__name__}"
        + (": results are cached by the dataset's folder and image names, so a list of samples "
           "cannot be evaluated; save them as a folder with images/ and masks/"
           if isinstance(dataset, list | tuple) else "")
    )  # fmt: skip


def _check_cache_dir(cache: Path, local: bool) -> None:
    """ValueError before any work when ``cache`` cannot be a folder of results: it, or the
    nearest of its parents that exists, is a file; or (``local``) that parent cannot be
    written."""
    existing = cache
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == cache else f" ({existing} is a file)"
        raise ValueError(f"cache_dir {cache} is not a folder{where}: pass a folder, or None")
    if local and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cache_dir {cache} cannot be written ({existing} is not writable)")


@dataclass(frozen=True)
class CacheEntry:
    """Where one (model, robot, image, seed) result is cached and how to verify it.

    ``key`` is the SHA256 (hex) of the cache key JSON; the file name holds its first 24 digits.
    """

    path: Path
    key: str
    rows: int


RobotLike = str | Robot
"""A robot for ``evaluate``: a registered name, or a ``Robot`` (e.g. a ``ReplayRobot`` of recorded
clicks) whose ``name`` labels its rows."""


def robot_label(robot: RobotLike) -> str:
    """The name a robot's rows carry in the table."""
    return robot if isinstance(robot, str) else robot.name


def robot_key(robot: RobotLike) -> str:
    """What identifies a robot's behaviour in the cache key: a registered name is itself, with
    ``@revision`` once its ``revision`` is raised (so a name and its registry instance share
    results, and results of an earlier behaviour are not read); any other ``Robot`` is its name
    plus its ``cache_token()`` (a replay robot: the digest of its clicks; an envelope robot, registered
    or not: its number of candidates, after its revision). ValueError for a robot
    that has neither."""
    if isinstance(robot, str):
        robot = _REGISTERED.get(robot, robot)  # a name outside the registry is its own key
        if isinstance(robot, str):
            return robot
    base = robot.name + (f"@{robot.revision}" if robot.revision else "")
    token = getattr(robot, "cache_token", None)
    if _REGISTERED.get(robot.name) is robot and token is None:
        return base
    if token is None:
        raise ValueError(
            f"robot {robot.name!r} is not the registered robot of that name and has no "
            "cache_token(): results could not be told apart in the cache (give it one, or pass "
            "cache_dir=None)"
        )
    return f"{base}:{token()}"  # rbest/rworst: "rbest@1:n16" (their number of candidates)


_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")


def path_component(name: str) -> str:
    """``name`` as one file name inside the cache: itself when it is a plain name (the usual
    model labels, robot and image names, so existing caches keep their paths), else (empty,
    '.', '..', a leading '.', a '/' or '\\' or control character, over 100 bytes) its safe
    characters and a digest of the whole name. A robot or model label chosen by a user can
    then never point outside ``cache_dir``."""
    name = str(name)
    if (name and not name.startswith(".") and not _UNSAFE.search(name)
            and len(name.encode("utf-8", "surrogatepass")) <= 100):  # fmt: skip
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    readable = _UNSAFE.sub("_", name).lstrip(".")[:40]
    return f"{readable}~{digest}"


def cache_entry(cache: Path, spec: ModelSpec, settings: Settings, dataset: Dataset,
                image: str, robot: RobotLike, seed: int, max_clicks: int) -> CacheEntry:  # fmt: skip
    """Where one (model, settings, dataset, image, robot, seed, max_clicks) trajectory is cached
    under ``cache``, and the digest of that key which its verification header must carry.

    The key holds the image's content, not only its name (``dataset.content_key``: the digests
    of its image and mask files and the mask rule), so a file replaced in place is recomputed
    and identical files share their results whatever their mtime. It ends with the score
    columns (``SCORE_NAMES``), so that a file written before a column was added
    (``boundary_iou``) has another key: it is never read, and its entry counts as missing
    everywhere (``evaluate``, the plan of ``make figures``) and is recomputed whole."""
    key = json.dumps(
        [__version__, spec.key(), settings.name, str(dataset.folder.resolve()), dataset.name,
         image, dataset.content_key(image), robot_key(robot), int(seed), int(max_clicks),
         list(SCORE_NAMES)]
    )  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()
    path = (cache / path_component(spec.label) / path_component(robot_label(robot))
            / f"{path_component(image)}__s{seed}__{digest[:24]}.csv")  # fmt: skip
    return CacheEntry(path, digest, int(max_clicks))


def trajectory_frame(traj: Trajectory, **ids: Any) -> pd.DataFrame:
    """One row per click of ``traj``; ``ids`` (model, robot, image, ...) are constant columns."""
    k = traj.max_clicks
    rows = np.full(k, -1, dtype=np.int64)
    cols = np.full(k, -1, dtype=np.int64)
    pos = np.full(k, -1, dtype=np.int64)  # -1: no click (after END)
    for i, c in enumerate(traj.clicks):
        rows[i], cols[i], pos[i] = c.row, c.col, int(c.positive)
    frame = pd.DataFrame(
        {"click": np.arange(1, k + 1), "row": rows, "col": cols, "positive": pos,
         **{m: traj.scores[m] for m in SCORE_NAMES},
         "model_seconds": traj.model_seconds, "robot_seconds": traj.robot_seconds}
    )  # fmt: skip
    for name, value in reversed(list(ids.items())):
        frame.insert(0, name, value)
    return frame


_STR_COLUMNS = {c: str for c in ("dataset", "settings", "model", "robot", "image")}

CACHE_FORMAT = "iislib-cache v1"
_HEADER = re.compile(
    rf"# {re.escape(CACHE_FORMAT)} rows=(\d+) key=([0-9a-f]{{64}}) sha256=([0-9a-f]{{64}})"
)


class CacheWarning(UserWarning):
    """A cached result failed verification; it is recomputed and replaced."""


class CacheError(ValueError):
    """A cache file that fails verification; the message names the file and the fault."""


class TableError(ValueError):
    """A result table that is not whole (cut short, rows missing); the message names the file."""


def read_table(path: str | Path) -> pd.DataFrame:
    """A result table written by ``evaluate``'s caller (a plain CSV), names kept as strings.

    Image '8023' stays the string '8023', not a number. A table that is not whole raises
    ``TableError`` (a ValueError) naming the file: one that does not end with a complete line
    (a write cut short), with no rows or empty cells, or, for a table with ``COLUMNS``, a trajectory whose
    clicks are not 1..K with the K of the others (rows lost).
    """
    path = Path(path)
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size:
            f.seek(-1, os.SEEK_END)
        last = f.read(1)
    if last != b"\n":
        raise TableError(f"{path}: {'empty' if not size else 'the last line is cut short'} "
                         "(a write that did not finish); rerun the command that wrote it")  # fmt: skip
    try:
        frame = pd.read_csv(path, dtype=_STR_COLUMNS)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise TableError(f"{path}: unreadable CSV ({' '.join(str(e).split())})") from None
    if frame.empty:
        raise TableError(f"{path}: no rows (the table is not whole)")
    if frame.isna().any(axis=None):
        row = int(np.flatnonzero(frame.isna().any(axis=1).to_numpy())[0]) + 2  # 1-based + header
        raise TableError(f"{path}: line {row} has empty cells (the table is not whole)")
    if set(COLUMNS) <= set(frame.columns) and len(frame):
        clicks = frame.groupby(["dataset", "settings", "model", "robot", "image", "seed"],
                               sort=False)["click"]  # fmt: skip
        n, first, last = clicks.size(), clicks.min(), clicks.max()
        k = int(frame["click"].max())
        bad = n[(n != k) | (first != 1) | (last != k)]
        if len(bad):
            ids = ", ".join(map(str, bad.index[0]))
            raise TableError(f"{path}: {len(bad)} trajectories do not have clicks 1..{k} (first: "
                             f"{ids}, {int(bad.iloc[0])} rows); the table is not whole")  # fmt: skip
    return frame


def read_cached(path: str | Path, key: str | None = None, rows: int | None = None) -> pd.DataFrame:
    """Read one cache file after verifying it; raise ``CacheError`` (a ValueError) if it fails.

    Checks, in order: a verification header (files of older iislib versions have none), the key
    digest (``key``, when given: the file holds this result, not another's), the row count
    (``rows``, when given, and the header's), the SHA256 of the content, then the CSV itself:
    the columns ``COLUMNS`` and clicks 1..rows. Names are kept as strings.
    """
    path = Path(path)

    def fail(why: str) -> CacheError:
        return CacheError(f"{path}: {why}")

    data = path.read_bytes()
    if not data:
        raise fail("the file is empty")
    first, sep, body = data.partition(b"\n")
    header = first.decode("ascii", errors="replace").rstrip("\r")
    m = _HEADER.fullmatch(header) if sep else None
    if m is None:
        if header.startswith("# iislib-cache"):
            raise fail(f"malformed verification header {header[:120]!r}")
        raise fail(
            "no verification header (the file was written by an older iislib without one, or "
            "is not an iislib cache file)"
        )
    n, file_key, file_sha = int(m[1]), m[2], m[3]
    if key is not None and file_key != key:
        raise fail(
            f"its key is {file_key[:24]}..., not its own {key[:24]}... (another result was "
            "copied over it)"
        )
    if rows is not None and n != rows:
        raise fail(f"its header says {n} rows, the sweep needs {rows}")
    if hashlib.sha256(body).hexdigest() != file_sha:
        raise fail("its content does not match its SHA256 digest (truncated or edited)")
    try:
        frame = pd.read_csv(io.BytesIO(body), dtype=_STR_COLUMNS)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise fail(f"unreadable CSV ({e})") from None
    if list(frame.columns) != list(COLUMNS):
        raise fail(f"columns {list(frame.columns)} are not {list(COLUMNS)}")
    if len(frame) != n or list(frame["click"]) != list(range(1, n + 1)):
        raise fail(f"{len(frame)} rows with clicks {list(frame['click'])[:30]}, expected 1..{n}")
    return frame


def _write_atomic(frame: pd.DataFrame, entry: CacheEntry) -> None:
    """Write ``frame`` under its verification header: a temporary file, fsync, then rename.

    The temporary name is unique per call, so two workers (even on two hosts sharing the
    folder) never write into the same temporary file; a reader sees the old file or the new
    one, never a mix.
    """
    if len(frame) != entry.rows:
        raise ValueError(f"{entry.path}: {len(frame)} rows to cache, expected {entry.rows}")
    body = frame.to_csv(index=False, lineterminator="\n").encode()
    header = f"# {CACHE_FORMAT} rows={entry.rows} key={entry.key} "
    header += f"sha256={hashlib.sha256(body).hexdigest()}\n"
    write_bytes(entry.path, header.encode() + body)


_MODELS: dict[str, IISModel] = {}


def _model(spec: ModelSpec) -> IISModel:
    """One built model per spec per process (workers reuse it across jobs)."""
    key = spec.key() + "@" + spec.device
    if key not in _MODELS:
        _MODELS[key] = spec.build()
    return _MODELS[key]


def run_job(spec: ModelSpec, robots: list[RobotLike], dataset: Dataset, index: int, seed: int,
            settings: Settings, max_clicks: int, cache: Path | None, threads: int) -> pd.DataFrame:  # fmt: skip
    """Run one (model, image, seed) for ``robots``; write each robot's rows to the cache."""
    keep_freed_memory()
    sample = dataset[index]
    image, gt, ignore = settings.prepare(sample.image, sample.gt, sample.ignore)
    model = settings.wrap(_model(spec))
    if threads:
        # Each worker gets its share of the cores; OpenCV's own pool would oversubscribe them.
        # Set after the model is built: set_threads only configures torch once it is imported.
        set_threads(threads)
    pairs = [(get_robot(r) if isinstance(r, str) else r, make_rng(seed, sample.name, robot_label(r)))
             for r in robots]  # fmt: skip
    trajs = run_many(model, pairs, image, gt, max_clicks=max_clicks, ignore=ignore,
                     threshold=settings.threshold)  # fmt: skip
    frames = []
    for robot, traj in zip(robots, trajs, strict=True):
        frame = trajectory_frame(
            traj, dataset=dataset.name, settings=settings.name, model=spec.label,
            robot=robot_label(robot), image=sample.name, seed=seed,
        )  # fmt: skip
        if cache is not None:
            _write_atomic(frame, cache_entry(cache, spec, settings, dataset, sample.name, robot,
                                              seed, max_clicks))  # fmt: skip
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


_MAX_CACHE_WARNINGS = 20  # beyond this, one summary warning (an old cache can hold thousands)


def evaluate(
    models: str | Sequence[str] | Mapping[str, str | Mapping[str, Any]],
    robots: RobotLike | Iterable[RobotLike],
    dataset: Dataset | str | os.PathLike,
    *,
    max_clicks: int = 20,
    seeds: int | Iterable[int] = (0,),
    settings: str | Settings = DEFAULT_SETTINGS,
    n_jobs: int = 1,
    scheduler: Any = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> pd.DataFrame:
    """Evaluate every model with every robot on every image of ``dataset``, for every seed.

    Args:
        models: registry names, or {label: {"name": registry name, **constructor kwargs}}
            (or {label: registry name}).
        robots: robot names (``iislib.core.robots.ROBOT_NAMES`` for the paper's seven) or
            ``Robot`` objects, e.g. recorded clicks: ``get_robot("replay", clicks=record)`` on
            ``dataset.select([record.image])`` with ``settings=record.settings`` (the record
            holds the mask it was made on; any other image stops the sweep with its message).
        dataset: a Dataset (``load_dataset(...)``; ``.subset(n)`` for the first n images), or
            a name or folder, given to ``load_dataset``.
        max_clicks: clicks per trajectory (an int >= 1).
        seeds: one trajectory per seed (the deterministic robots give the same curve for each);
            one int is one seed.
        settings: name of the inference settings (``iislib.models.settings``; default
            ``DEFAULT_SETTINGS``, "ipol"), recorded in every row.
        n_jobs: local processes (joblib/loky) over (model, image, seed) jobs; joblib's
            convention (-1 = all cores).
        scheduler: run the jobs on a Dask cluster instead: its address ("tcp://host:8786"), a
            ``distributed.Client`` or a cluster object (``LocalCluster``, dask-jobqueue's
            ``SLURMCluster``). Needs ``pip install "iislib[cluster]"``. Each job uses one
            thread (Dask's convention: start one worker thread per core). Every worker must
            read the dataset's files and write ``cache_dir`` at the same paths (a shared
            filesystem); relative paths are made absolute here first.
        cache_dir: folder of cached results; None disables the cache.
        progress: show a tqdm bar.
        device: where the networks run: "cpu" (default) or "cuda" ("cuda:1"), checked before
            any work; every robot's lockstep batch of a step goes through the network there.
            A model whose factory takes no ``device`` (random_walker) runs on the CPU. The
            device is not part of the cache key (docs/decisions.md, "Devices").

    Each process that runs jobs (the calling one when ``n_jobs=1``) keeps freed memory for
    reuse (``iislib.runtime.keep_freed_memory``): faster passes, a resident size at its peak.
    A job that fails does not stop the others on a Dask cluster: every other result is cached,
    then a RuntimeError names the failed jobs, and a rerun computes only what is missing.

    Returns:
        DataFrame with ``COLUMNS``, sorted by model, robot, image, seed, click.

    Raises:
        ValueError: before any work or file, saying what was expected: no models, robots,
            images or seeds, duplicate names, unknown model, robot or settings names, a robot
            or seed or model of the wrong type, a dataset that is not one, a bad
            ``max_clicks``, or a ``cache_dir`` that is a file or cannot be written.
    """
    device = check_device(device)
    specs = [dataclasses.replace(s, device=device) for s in as_specs(models)]
    unknown = [s.name for s in specs if s.name not in known_models() and not is_user_model(s.name)]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(map(repr, unknown))}; registered: "
                         f"{', '.join(available_models())}")  # fmt: skip
    resolve_names([s.name for s in specs])  # a user model that cannot be loaded: its package
    dataset = _as_dataset(dataset)
    robots = [robots] if isinstance(robots, str | Robot) else list(robots)
    for r in robots:
        if not isinstance(r, str | Robot):
            raise ValueError(
                f"a robot is a registered name (e.g. 'rritm') or a Robot (get_robot(...)), got {r!r}"
            )
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        seeds = [seeds]  # one seed
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds must be integers, e.g. (0,) or [0, 1] (or one int), got {seeds!r}")
    seeds = list(seeds)
    try:
        if any(isinstance(s, bool) for s in seeds):
            raise TypeError
        seeds = [operator.index(s) for s in seeds]
    except TypeError:
        raise ValueError(f"seeds must be integers, got {seeds!r}") from None
    if isinstance(max_clicks, bool) or not isinstance(max_clicks, int | np.integer):
        raise ValueError(f"max_clicks must be an int >= 1, got {max_clicks!r}")
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be an int >= 1, got {max_clicks}")
    max_clicks = int(max_clicks)
    for what, items in (("models", specs), ("robots", robots), ("seeds", seeds)):
        if not items:
            raise ValueError(f"no {what} to evaluate: pass at least one")
    if len(dataset) == 0:
        raise ValueError(f"dataset {dataset.name!r} has no images to evaluate")
    for what, names in (("model label", [s.label for s in specs]),
                        ("robot", [robot_label(r) for r in robots]),
                        ("seed", seeds)):  # fmt: skip
        dup = sorted(str(x) for x, n in Counter(names).items() if n > 1)
        if dup:
            raise ValueError(f"{what} given more than once: {', '.join(dup)}")
    for r in robots:
        if isinstance(r, str):
            get_robot(r)  # unknown names fail before any work starts
        elif cache_dir is not None:
            robot_key(r)  # a robot the cache could not tell apart fails before any work
    settings = get_settings(settings)
    if scheduler is not None and n_jobs != 1:
        raise ValueError("pass n_jobs (local processes) or scheduler (a Dask cluster), not both")
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        _check_cache_dir(cache, local=scheduler is None)
    if scheduler is not None:
        # Workers run elsewhere: they must not resolve paths against their own working folder.
        dataset = absolute_paths(dataset)
        cache = cache.absolute() if cache is not None else None

    done: list[pd.DataFrame] = []
    todo: list[tuple[ModelSpec, list[str], int, int]] = []
    bad: list[str] = []
    names = dataset.names
    for spec in specs:
        for index, image in enumerate(names):
            for seed in seeds:
                missing = []
                for robot in robots:
                    if cache is None:
                        missing.append(robot)
                        continue
                    entry = cache_entry(cache, spec, settings, dataset, image, robot, seed,
                                         max_clicks)  # fmt: skip
                    if not entry.path.is_file():
                        missing.append(robot)
                        continue
                    try:
                        done.append(read_cached(entry.path, key=entry.key, rows=entry.rows))
                    except (CacheError, OSError) as e:
                        bad.append(str(e))
                        missing.append(robot)
                if missing:
                    todo.append((spec, missing, index, seed))
    for why in bad[:_MAX_CACHE_WARNINGS]:
        warnings.warn(f"cache file failed verification, recomputing it: {why}", CacheWarning,
                      stacklevel=2)  # fmt: skip
    if len(bad) > _MAX_CACHE_WARNINGS:
        warnings.warn(f"{len(bad) - _MAX_CACHE_WARNINGS} more cache files failed verification "
                      f"under {cache}; recomputing them", CacheWarning, stacklevel=2)  # fmt: skip

    if todo:
        bar = tqdm(total=len(todo), desc="evaluate", unit="job", disable=not progress)
        if scheduler is not None:
            args = [
                (s, r, dataset, i, seed, settings, max_clicks, cache, 1) for s, r, i, seed in todo
            ]
            done.extend(run_on_dask(scheduler, args, bar, cached=cache is not None))
        else:
            n_workers = worker_count(n_jobs)
            threads = max(1, (os.cpu_count() or 1) // n_workers)
            args = [(s, r, dataset, i, seed, settings, max_clicks, cache, threads)
                    for s, r, i, seed in todo]  # fmt: skip
            if n_workers == 1:
                for a in args:
                    done.append(run_job(*a))
                    bar.update()
            else:
                from joblib import Parallel, delayed

                with worker_pool(n_workers):  # a killed sweep leaves no worker behind
                    results = Parallel(return_as="generator_unordered")(
                        delayed(run_job)(*a) for a in args
                    )
                    for frame in results:
                        done.append(frame)
                        bar.update()
        bar.close()
    table = pd.concat(done, ignore_index=True)[list(COLUMNS)]
    return table.sort_values(["model", "robot", "image", "seed", "click"], ignore_index=True)


def absolute_paths(dataset: Dataset) -> Dataset:
    """``dataset`` with absolute file paths (the same object when they already are)."""
    pairs = getattr(dataset, "_pairs", None)
    if pairs is None or (
        dataset.folder.is_absolute() and all(Path(p).is_absolute() for _, p, _ in pairs)
    ):
        return dataset
    out = copy.copy(dataset)  # keeps a subclass and its mask rule
    out.folder = dataset.folder.absolute()
    out._pairs = [(stem, Path(i).absolute(), Path(m).absolute()) for stem, i, m in pairs]
    return out


def _client(scheduler: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``scheduler`` and whether this call owns (must close) it.

    An address (or a cluster's) must answer as a Dask scheduler within ``connect_timeout()``
    seconds, else ValueError naming it.
    """
    try:
        from distributed import Client
    except ImportError as e:
        raise ValueError(NEEDS_DISTRIBUTED) from e
    if isinstance(scheduler, Client):
        return scheduler, False
    if isinstance(scheduler, str) or hasattr(scheduler, "scheduler_address"):
        address = scheduler if isinstance(scheduler, str) else scheduler.scheduler_address
        timeout = connect_timeout()
        check_scheduler(address, timeout)
        try:
            return Client(scheduler, set_as_default=False, timeout=timeout), True
        except (OSError, TimeoutError) as e:
            raise ValueError(f"cannot reach the Dask scheduler {address!r}: {e}") from e
    raise ValueError(
        "scheduler must be an address such as 'tcp://host:8786', a distributed.Client or a "
        f"Dask cluster object, got {type(scheduler).__name__}"
    )


def run_on_dask(
    scheduler: Any, args: list[tuple], bar: Any, cached: bool,
    fn: Callable[..., Any] = run_job, on_result: Callable[[tuple, Any], None] | None = None,
) -> list[Any]:  # fmt: skip
    """Run ``fn(*a)`` (default ``run_job``: ``a`` are its arguments) for every ``a`` on a Dask
    cluster (``scheduler``: as in ``evaluate``); the results in completion order. After each
    result, ``on_result(a, result)`` (if given), then ``bar.update()``.

    A failed job (an exception, or its worker killed more often than the scheduler's
    ``allowed-failures``) does not cancel the others; once all have finished, a RuntimeError
    names the failures.
    """
    from distributed import as_completed

    try:
        client, owned = _client(scheduler)
    except ValueError:
        bar.leave = False  # the error, not an empty progress bar, is the last line
        bar.close()
        raise
    try:
        futures = {client.submit(fn, *a, pure=False): a for a in args}
        results: list[Any] = []
        failed: list[tuple[tuple, BaseException]] = []
        for fut in as_completed(list(futures), loop=client.loop):
            try:
                result = fut.result()
            except Exception as e:  # reported below, with every other failure
                failed.append((futures[fut], e))
            else:
                results.append(result)
                if on_result is not None:
                    on_result(futures[fut], result)
            bar.update()
            fut.release()
    finally:
        if owned:
            client.close()
    if failed:
        (spec, robots, dataset, index, seed, *_), err = failed[0]
        rest = "their results are cached: a rerun computes only what failed" if cached else ""
        raise RuntimeError(
            f"{len(failed)} of {len(args)} jobs failed on the Dask cluster; the others finished"
            f"{', ' + rest if rest else ''}. First failure: model {spec.label}, image "
            f"{dataset.names[index]}, seed {seed}, robots {','.join(map(robot_label, robots))}: "
            f"{type(err).__name__}: {err}{_worker_hint(spec, err)}"
        ) from err
    return results


def _worker_hint(spec: ModelSpec, err: BaseException) -> str:
    """What a Dask worker lacks when it cannot build a model that builds here: a user model's
    package (workers look entry points and import strings up in their own environment), or
    a weights file at the caller's path (workers read the same path: a shared filesystem)."""
    if isinstance(err, ValueError) and is_user_model(spec.name):
        return (f" (the workers build {spec.name!r} by name in their own environment: install "
                "its package on every worker, as on this machine)")  # fmt: skip
    if isinstance(err, FileNotFoundError):
        return (" (workers read weights and data at the caller's paths: put them on a "
                "filesystem every worker sees, at the same path)")  # fmt: skip
    return ""


def worker_count(n_jobs: int) -> int:
    """Worker processes for ``n_jobs`` in joblib's convention (-1: every core, -2: all but one)."""
    cores = os.cpu_count() or 1
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)


# ----------------------------------------------------------------------------------------------
# summaries of a result table


def iou_curves(table: pd.DataFrame, metric: str = "iou") -> pd.DataFrame:
    """(model, robot, seed, image) x click matrix of ``metric``."""
    return table.pivot_table(index=["model", "robot", "seed", "image"], columns="click",
                             values=metric).sort_index()  # fmt: skip


def summary(table: pd.DataFrame, ks: Sequence[int] = (1, 5, 10, 20)) -> pd.DataFrame:
    """NoC@85/90, NoF@90 (never reached), mIoU@k and AUC per model and robot (seeds pooled),
    then mBIoU@k, the mean Boundary IoU after k clicks, when the table has ``boundary_iou``."""

    rows = []
    curves = iou_curves(table)
    bcurves = iou_curves(table, BOUNDARY_IOU) if BOUNDARY_IOU in table.columns else None
    for (model, robot), block in curves.groupby(level=["model", "robot"]):
        a = block.to_numpy()
        row = {"model": model, "robot": robot, "images": a.shape[0],
               "NoC@85": noc(a, 0.85).mean(), "NoC@90": noc(a, 0.90).mean(),
               "NoF@90": nof(a, 0.90)}  # fmt: skip
        for k in ks:
            if k <= a.shape[1]:
                row[f"mIoU@{k}"] = miou_at(a, k)
        row["AUC"] = auc(a)
        if bcurves is not None:
            b = bcurves.loc[block.index].to_numpy()
            for k in ks:
                if k <= b.shape[1]:
                    row[f"mBIoU@{k}"] = miou_at(b, k)
        rows.append(row)
    return pd.DataFrame(rows)
