"""The evaluation sweep: models x robots x images x seeds, as one tidy table, cached and resumable.

    table = evaluate(["random_walker"], ROBOT_NAMES, load_dataset("berkeley"), max_clicks=20)

One row per model x robot x image x seed x click with the click (row, col, positive), every
metric, the settings name and the model and robot time. The unit of work is one (model, image,
seed): its robots run in lockstep (``loop.run_many``) so a network sees one batch per step. Each
finished (model, robot, image, seed) is written to the cache at once (write, then rename), so an
interrupted sweep resumes with nothing lost and a rerun computes only what is missing. Cache keys
hold everything that changes a result: model name and arguments, settings, dataset folder, image,
robot, seed, max_clicks and the library version.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from iislib import __version__
from iislib.data import Dataset
from iislib.loop import Trajectory, make_rng, run_many
from iislib.metrics import METRIC_NAMES
from iislib.models import IISModel, get_model
from iislib.robots import get_robot
from iislib.runtime import keep_freed_memory, set_threads
from iislib.settings import Settings, get_settings

COLUMNS: tuple[str, ...] = (
    "dataset", "settings", "model", "robot", "image", "seed", "click",
    "row", "col", "positive", *METRIC_NAMES, "model_seconds", "robot_seconds",
)  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """A model to build by registry name with keyword arguments, under a display label."""

    label: str
    name: str
    kwargs: tuple[tuple[str, Any], ...] = ()

    def build(self) -> IISModel:
        return get_model(self.name, **dict(self.kwargs))

    def key(self) -> str:
        """Everything about the model that changes its results, weights included."""
        digest = _weights_digest(self)
        return json.dumps(
            [self.name, sorted(self.kwargs)] + ([digest] if digest else []), default=str
        )


def _weights_digest(spec: ModelSpec) -> str:
    """SHA256 prefix of the weights file a spec loads ('' for a model without one).

    Part of the cache key, so results of retrained or replaced weights are never reused.
    """
    from iislib.models.compact import COMPACT_NAMES, shipped_weights

    kw = dict(spec.kwargs)
    path = kw.get("weights") or kw.get("checkpoint")
    if path is None and spec.name in COMPACT_NAMES:
        path = shipped_weights(spec.name)
    if path is None or not isinstance(path, str | os.PathLike) or not Path(path).is_file():
        return ""
    return _file_digest(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def as_specs(models: str | Sequence[str] | Mapping[str, Mapping[str, Any]]) -> list[ModelSpec]:
    """Model names, or {label: {"name": registry name, **kwargs}}, as ModelSpecs."""
    if isinstance(models, str):
        models = [models]
    if isinstance(models, Mapping):
        out = []
        for label, kw in models.items():
            kw = dict(kw)
            name = kw.pop("name", label)
            out.append(ModelSpec(label, name, tuple(sorted(kw.items()))))
        return out
    return [ModelSpec(m, m) for m in models]


def _cache_file(cache: Path, spec: ModelSpec, settings: Settings, dataset: Dataset,
                image: str, robot: str, seed: int, max_clicks: int) -> Path:  # fmt: skip
    key = json.dumps(
        [__version__, spec.key(), settings.name, str(dataset.folder.resolve()), dataset.name,
         image, robot, int(seed), int(max_clicks)]
    )  # fmt: skip
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache / spec.label / robot / f"{image}__s{seed}__{digest}.csv"


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
         **{m: traj.scores[m] for m in METRIC_NAMES},
         "model_seconds": traj.model_seconds, "robot_seconds": traj.robot_seconds}
    )  # fmt: skip
    for name, value in reversed(list(ids.items())):
        frame.insert(0, name, value)
    return frame


_STR_COLUMNS = {c: str for c in ("dataset", "settings", "model", "robot", "image")}


def read_cached(path: Path) -> pd.DataFrame:
    """A cached result file, with names kept as strings (image '8023' is not a number)."""
    return pd.read_csv(path, dtype=_STR_COLUMNS)


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


_MODELS: dict[str, IISModel] = {}


def _model(spec: ModelSpec) -> IISModel:
    """One built model per spec per process (workers reuse it across jobs)."""
    if spec.key() not in _MODELS:
        _MODELS[spec.key()] = spec.build()
    return _MODELS[spec.key()]


def _job(spec: ModelSpec, robots: list[str], dataset: Dataset, index: int, seed: int,
         settings: Settings, max_clicks: int, cache: Path | None, threads: int) -> pd.DataFrame:  # fmt: skip
    """Run one (model, image, seed) for ``robots``; write each robot's rows to the cache."""
    keep_freed_memory()
    if threads:
        # Each worker gets its share of the cores; OpenCV's own pool would oversubscribe them.
        set_threads(threads)
    sample = dataset[index]
    image, gt, ignore = settings.prepare(sample.image, sample.gt, sample.ignore)
    model = settings.wrap(_model(spec))
    pairs = [(get_robot(r), make_rng(seed, sample.name, r)) for r in robots]
    trajs = run_many(model, pairs, image, gt, max_clicks=max_clicks, ignore=ignore,
                     threshold=settings.threshold)  # fmt: skip
    frames = []
    for robot, traj in zip(robots, trajs, strict=True):
        frame = trajectory_frame(
            traj, dataset=dataset.name, settings=settings.name, model=spec.label, robot=robot,
            image=sample.name, seed=seed,
        )  # fmt: skip
        if cache is not None:
            _write_atomic(frame, _cache_file(cache, spec, settings, dataset, sample.name, robot,
                                             seed, max_clicks))  # fmt: skip
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def evaluate(
    models: str | Sequence[str] | Mapping[str, Mapping[str, Any]],
    robots: Iterable[str],
    dataset: Dataset,
    *,
    max_clicks: int = 20,
    seeds: Iterable[int] = (0,),
    settings: str | Settings = "ipol",
    n_jobs: int = 1,
    backend: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate every model with every robot on every image of ``dataset``, for every seed.

    Args:
        models: registry names, or {label: {"name": registry name, **constructor kwargs}}.
        robots: robot names (``iislib.robots.ROBOT_NAMES`` for the paper's seven).
        dataset: a Dataset (``load_dataset(...)``; ``.subset(n)`` for the first n images).
        max_clicks: clicks per trajectory.
        seeds: one trajectory per seed (the deterministic robots give the same curve for each).
        settings: name of the inference settings (``iislib.settings``), recorded in every row.
        n_jobs: processes over (model, image, seed) jobs; joblib's convention (-1 = all cores).
        backend: joblib backend (default "loky"; pass "dask" or "ray" when such a cluster runs).
        cache_dir: folder of cached results; None disables the cache.
        progress: show a tqdm bar.

    Each process that runs jobs (the calling one when ``n_jobs=1``) keeps freed memory for
    reuse (``iislib.runtime.keep_freed_memory``): faster passes, a resident size at its peak.

    Returns:
        DataFrame with ``COLUMNS``, sorted by model, robot, image, seed, click.
    """
    specs = as_specs(models)
    robots = list(robots)
    for r in robots:
        get_robot(r)  # unknown names fail before any work starts
    settings = get_settings(settings)
    seeds = [int(s) for s in seeds]
    cache = Path(cache_dir) if cache_dir is not None else None

    done: list[pd.DataFrame] = []
    todo: list[tuple[ModelSpec, list[str], int, int]] = []
    names = dataset.names
    for spec in specs:
        for index, image in enumerate(names):
            for seed in seeds:
                missing = []
                for robot in robots:
                    f = (
                        _cache_file(cache, spec, settings, dataset, image, robot, seed, max_clicks)
                        if cache is not None
                        else None
                    )
                    if f is not None and f.is_file():
                        done.append(read_cached(f))
                    else:
                        missing.append(robot)
                if missing:
                    todo.append((spec, missing, index, seed))

    if todo:
        n_workers = _n_workers(n_jobs)
        threads = max(1, (os.cpu_count() or 1) // n_workers)
        args = [
            (s, r, dataset, i, seed, settings, max_clicks, cache, threads) for s, r, i, seed in todo
        ]
        bar = tqdm(total=len(args), desc="evaluate", unit="job", disable=not progress)
        if n_workers == 1:
            for a in args:
                done.append(_job(*a))
                bar.update()
        else:
            from joblib import Parallel, delayed, parallel_config

            with parallel_config(backend=backend or "loky", n_jobs=n_workers):
                results = Parallel(return_as="generator_unordered")(delayed(_job)(*a) for a in args)
                for frame in results:
                    done.append(frame)
                    bar.update()
        bar.close()
    if not done:
        return pd.DataFrame(columns=list(COLUMNS))
    table = pd.concat(done, ignore_index=True)[list(COLUMNS)]
    return table.sort_values(["model", "robot", "image", "seed", "click"], ignore_index=True)


def _n_workers(n_jobs: int) -> int:
    cores = os.cpu_count() or 1
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)


# ----------------------------------------------------------------------------------------------
# summaries of a result table


def iou_curves(table: pd.DataFrame, metric: str = "iou") -> pd.DataFrame:
    """(model, robot, seed, image) x click matrix of ``metric``."""
    return table.pivot_table(index=["model", "robot", "seed", "image"], columns="click",
                             values=metric).sort_index()  # fmt: skip


def summary(table: pd.DataFrame, ks: Sequence[int] = (1, 5, 10, 20)) -> pd.DataFrame:
    """NoC@85/90, NoF@90 (never reached), mIoU@k and AUC per model and robot (seeds pooled)."""
    from iislib.metrics import auc, miou_at, noc, nof

    rows = []
    curves = iou_curves(table)
    for (model, robot), block in curves.groupby(level=["model", "robot"]):
        a = block.to_numpy()
        row = {"model": model, "robot": robot, "images": a.shape[0],
               "NoC@85": noc(a, 0.85).mean(), "NoC@90": noc(a, 0.90).mean(),
               "NoF@90": nof(a, 0.90)}  # fmt: skip
        for k in ks:
            if k <= a.shape[1]:
                row[f"mIoU@{k}"] = miou_at(a, k)
        row["AUC"] = auc(a)
        rows.append(row)
    return pd.DataFrame(rows)
