"""What the notebooks call (configuration, sweep, episodes, saving) and the notebook runner.

In a notebook::

    cfg = nb.config(dataset, models, robots, n_images, max_clicks, seeds, settings, n_jobs, smoke)
    table = nb.sweep(cfg)            # cached in paths.CACHE: every notebook shares the results
    nb.save(figures.fig4(table), "fig4", cfg)

From the shell (``make figures`` / ``make notebooks``)::

    python -m iislib.notebooks              # full run: build/notebooks/full/*.ipynb, figures/
    python -m iislib.notebooks --smoke      # tiny run: build/notebooks/smoke/*.ipynb, figures/smoke/
    python -m iislib.notebooks --only 03 -p n_jobs=2 -p max_clicks=10

Each ``notebooks/NN_name.py`` (jupytext py:percent) is converted to ``build/notebooks/src/`` and
executed by papermill (kernel python3, working directory ``notebooks/``) with the parameters
passed through. Smoke runs write their figures to ``figures/smoke/`` so that they never replace
the full figures.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from iislib import paths
from iislib.figures import FAMILY_PROCEDURE, Episode, own_pairs
from iislib.robots import RANDOM_ROBOTS, ROBOT_NAMES, get_robot

SMOKE_IMAGES = 2
SMOKE_CLICKS = 4


# ----------------------------------------------------------------------------------------------
# configuration


def _names(value: str | Sequence[str], what: str) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def resolve_models(models: str | Sequence[str]) -> list[str]:
    """'ready' (every registered model that needs no official weights, except the cross-trained
    controls that only the 2x2 section uses), or names (comma list)."""
    from iislib.models import available_models, ready_models

    if models == "ready":
        return ready_models(cross_trained=False)
    names = _names(models, "model")
    unknown = [m for m in names if m not in available_models()]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; registered: {available_models()}")
    return names


def resolve_robots(robots: str | Sequence[str]) -> list[str]:
    """'all' (the paper's seven), 'random' (r01..r05), or names (comma list)."""
    if robots == "all":
        return list(ROBOT_NAMES)
    if robots == "random":
        return [r for r in ROBOT_NAMES if r in RANDOM_ROBOTS]
    names = _names(robots, "robot")
    for r in names:
        get_robot(r)
    return names


@dataclass(frozen=True)
class Config:
    """A notebook's resolved parameters (after the smoke switch)."""

    dataset_name: str
    models: list[str]
    robots: list[str]
    n_images: int | None
    max_clicks: int
    seeds: list[int]
    settings: str
    n_jobs: int
    smoke: bool

    @property
    def data(self):
        """The dataset, first ``n_images`` samples."""
        from iislib.data import load_dataset

        return load_dataset(self.dataset_name).subset(self.n_images)

    @property
    def names(self) -> list[str]:
        return self.data.names

    @property
    def figures(self) -> Path:
        """Where figures go: ``paths.FIGURES`` (``figures/smoke`` in smoke mode)."""
        return paths.FIGURES / "smoke" if self.smoke else paths.FIGURES

    def __str__(self) -> str:
        return (f"dataset {self.dataset_name} ({len(self.names)} images), models {self.models}, "
                f"robots {self.robots}, {self.max_clicks} clicks, seeds {self.seeds}, settings "
                f"{self.settings}, {self.n_jobs} job(s){', SMOKE RUN' if self.smoke else ''}")  # fmt: skip


def config(
    dataset: str = "berkeley",
    models: str | Sequence[str] = "ready",
    robots: str | Sequence[str] = "all",
    n_images: int = 100,
    max_clicks: int = 20,
    seeds: Sequence[int] = (0,),
    settings: str = "ipol",
    n_jobs: int = 1,
    smoke: bool = False,
) -> Config:
    """Resolve a notebook's parameters; ``smoke`` shrinks the run to 2 images, 4 clicks, 1 job."""
    from iislib.settings import get_settings

    get_settings(settings)
    if smoke:
        n_images = min(n_images, SMOKE_IMAGES) if n_images else SMOKE_IMAGES
        max_clicks = min(max_clicks, SMOKE_CLICKS)
        n_jobs = 1
    models_ = resolve_models(models)
    if not models_:
        raise ValueError("no model to evaluate (models='ready' found none)")
    return Config(dataset, models_, resolve_robots(robots), n_images or None, int(max_clicks),
                  [int(s) for s in seeds], settings, int(n_jobs), bool(smoke))  # fmt: skip


# ----------------------------------------------------------------------------------------------
# computing


def sweep(
    cfg: Config,
    *,
    models: Sequence[str] | None = None,
    robots: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    n_images: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """``experiment.evaluate`` with the notebook's settings, cached in ``paths.CACHE``.

    Every notebook calls it with the same arguments, so the second one reads the first one's
    results. ``n_images`` takes the first images of ``cfg`` (at most cfg's count).
    """
    from iislib.experiment import evaluate

    data = cfg.data
    if n_images is not None:
        data = data.subset(min(n_images, len(data)))
    return evaluate(
        list(models) if models is not None else cfg.models,
        list(robots) if robots is not None else cfg.robots,
        data, max_clicks=cfg.max_clicks, seeds=list(seeds) if seeds is not None else cfg.seeds,
        settings=cfg.settings, n_jobs=cfg.n_jobs, cache_dir=paths.CACHE, progress=progress,
    )  # fmt: skip


def random_robots(cfg: Config) -> list[str]:
    """The random robots among ``cfg.robots``."""
    return [r for r in cfg.robots if r in RANDOM_ROBOTS]


def family_sweep(cfg: Config) -> pd.DataFrame | None:
    """The sweep of the four 2x2 models when all of them can be built (registered, weights
    present), else None, saying which are missing."""
    from iislib.models import ready_models

    missing = [m for m in FAMILY_PROCEDURE if m not in ready_models()]
    if missing:
        print("The 2x2 family x training-procedure experiment is SKIPPED: these models are not "
              "registered or have no weights: " + ", ".join(missing))  # fmt: skip
        return None
    return sweep(cfg, models=list(FAMILY_PROCEDURE))


def episode(cfg: Config, image: int | str, pairs: Sequence[tuple[str, str]] | None = None,
            seed: int | None = None) -> Episode:  # fmt: skip
    """Run the (model, robot) ``pairs`` (default: each model under its own robots) on one image,
    keeping every probability map. Same preparation and generators as the sweep."""
    from iislib.loop import make_rng, run_many
    from iislib.models import get_model
    from iislib.settings import get_settings

    st = get_settings(cfg.settings)
    data = cfg.data
    sample = data[image if isinstance(image, str) else int(image) % len(data)]
    img, gt, ignore = st.prepare(sample.image, sample.gt, sample.ignore)
    pairs = list(pairs) if pairs is not None else own_pairs(cfg.models)
    seed = cfg.seeds[0] if seed is None else seed
    ep = Episode(sample.name, data.name, st.name, img, gt, ignore, st.threshold)
    for model in dict.fromkeys(m for m, _ in pairs):
        robots = [r for m, r in pairs if m == model]
        trajs = run_many(
            st.wrap(get_model(model)), [(get_robot(r), make_rng(seed, sample.name, r)) for r in robots],
            img, gt, max_clicks=cfg.max_clicks, ignore=ignore, threshold=st.threshold,
            keep_probs=True,
        )  # fmt: skip
        ep.trajs.update({(model, r): t for r, t in zip(robots, trajs, strict=True)})
    return ep


class Episodes(Mapping[str, Episode]):
    """Episodes by image name, computed the first time each image is asked for."""

    def __init__(self, cfg: Config, pairs: Sequence[tuple[str, str]] | None = None):
        self.cfg = cfg
        self.pairs = list(pairs) if pairs is not None else own_pairs(cfg.models)
        self._names = cfg.names
        self._done: dict[str, Episode] = {}

    def __getitem__(self, name: str) -> Episode:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._done:
            self._done[name] = episode(self.cfg, name, self.pairs)
        return self._done[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def at(self, index: int) -> Episode:
        """The episode of the image at ``index`` (modulo the number of images)."""
        return self[self._names[int(index) % len(self._names)]]

    def first(self, n: int) -> list[Episode]:
        """The episodes of the first ``n`` images."""
        return [self[name] for name in self._names[: max(0, int(n))]]


def time_robots(
    episodes: Iterable[Episode], robots: Sequence[str] = ROBOT_NAMES, repeats: int = 3
) -> pd.DataFrame:
    """Seconds per robot call on real predictions: every step of every trajectory of each episode.

    Each call is repeated ``repeats`` times and the fastest kept (the usual way to time code on a
    shared machine). Columns: robot, image, step, seconds.
    """
    from iislib.loop import make_rng

    rows = []
    for ep in episodes:
        for key, traj in ep.trajs.items():
            for k in range(traj.max_clicks):
                pred, clicks = ep.pred(key, k), ep.clicks(key, k)
                for robot in robots:
                    fn, best = get_robot(robot), np.inf
                    for _ in range(repeats):
                        rng = make_rng(0, ep.name, robot)
                        t0 = time.perf_counter()
                        fn(pred, ep.gt, clicks, rng, ignore=ep.ignore)
                        best = min(best, time.perf_counter() - t0)
                    rows.append({"robot": robot, "image": ep.name, "step": k, "seconds": best})
    return pd.DataFrame(rows, columns=["robot", "image", "step", "seconds"])


def caption(cfg: Config, extra: str = "", n_images: int | None = None) -> str:
    """A figure caption from the configuration (for figures not built from a sweep table)."""
    n = len(cfg.names) if n_images is None else min(n_images, len(cfg.names))
    text = (f"dataset: {cfg.dataset_name}; {n} images; settings: {cfg.settings}; "
            f"models: {', '.join(cfg.models)}; robots: {', '.join(cfg.robots)}")  # fmt: skip
    return text + (f". {extra}" if extra else "")


def save(fig: Figure | None, name: str, cfg: Config) -> Figure | None:
    """Write ``fig`` as ``name``.png and .pdf into ``cfg.figures``; return it (to display it).

    None (a figure that does not apply, e.g. a pairwise one with a single model) is skipped.
    """
    from iislib.plots import save_figure

    if fig is None:
        print(f"{name}: not produced")
        return None
    written = save_figure(fig, name, cfg.figures)
    print("saved " + ", ".join(str(p.relative_to(paths.HOME)) if p.is_relative_to(paths.HOME)
                               else str(p) for p in written))  # fmt: skip
    return fig


# ----------------------------------------------------------------------------------------------
# the runner


def notebook_sources(only: Sequence[str] | None = None) -> list[Path]:
    """``notebooks/NN_*.py`` in order; ``only`` keeps those whose name starts with one of them."""
    srcs = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.py"))
    if only:
        srcs = [s for s in srcs if any(s.stem.startswith(o) for o in only)]
    return srcs


def to_ipynb(src: Path, folder: Path) -> Path:
    """Convert a py:percent notebook to ``folder/<stem>.ipynb`` with jupytext (no outputs)."""
    import jupytext

    folder.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(src)
    out = folder / f"{src.stem}.ipynb"
    jupytext.write(nb, out, fmt="ipynb")
    return out


SMOKE_CELL_TIMEOUT = 300
FULL_CELL_TIMEOUT = 5400
"""Seconds per cell of a full run: the longest cell (a fresh full-Berkeley sweep with
``random_walker``) takes ~40 min here; a kernel that stops answering is retried after it. (The
full-run hang after ``02_qualitative``'s widget cell was the client sleeping through the reply:
``iislib.kernel_client``.)"""


def execute(
    src: Path,
    out_dir: Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout: int | None = None,
    log_output: bool = False,
) -> Path:
    """Convert ``src`` and execute it with papermill into ``out_dir``; return the output path.

    Raises papermill's PapermillExecutionError (naming the cell) when a cell fails; the output
    notebook is still written, with the error in it. A notebook whose kernel stopped answering
    (cell timeout, dead kernel) is run once more; a rerun is cheap because results are cached.
    A cell that raises is never retried. The kernel client polls its sockets in slices
    (``iislib.kernel_client``), so a missed wake-up costs a second instead of the cell timeout.
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    from iislib.kernel_client import SlicedPollKernelManager

    ipynb = to_ipynb(src, paths.BUILD / "notebooks" / "src")
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / ipynb.name
    for attempt in (1, 2):
        try:
            pm.execute_notebook(
                str(ipynb), str(out), parameters=dict(parameters or {}), kernel_name="python3",
                language="python", cwd=str(paths.NOTEBOOKS), progress_bar=False,
                log_output=log_output, execution_timeout=timeout,
                kernel_manager_class=SlicedPollKernelManager,
            )  # fmt: skip
            break
        except (CellTimeoutError, DeadKernelError) as e:
            if attempt == 2:
                raise
            print(f"[notebooks] {src.name}: the kernel stopped answering ({type(e).__name__}); "
                  "running it once more", flush=True)  # fmt: skip
    return out


def run_all(
    smoke: bool = False,
    parameters: Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
    out_dir: Path | None = None,
    log_output: bool = False,
    timeout: int | None = None,
) -> list[tuple[Path, float]]:
    """Execute every notebook; returns (executed notebook, seconds) for each.

    ``timeout``: seconds per cell (default: ``SMOKE_CELL_TIMEOUT`` in smoke mode,
    ``FULL_CELL_TIMEOUT`` in a full run), so that a kernel that stops answering is noticed (and
    retried once by ``execute``) instead of waiting forever.
    """
    if timeout is None:
        timeout = SMOKE_CELL_TIMEOUT if smoke else FULL_CELL_TIMEOUT
    params = dict(parameters or {})
    if smoke:
        params["smoke"] = True
    out_dir = out_dir or paths.BUILD / "notebooks" / ("smoke" if smoke else "full")
    done = []
    for src in notebook_sources(only):
        t0 = time.perf_counter()
        print(f"[notebooks] {src.name} ...", flush=True)
        out = execute(src, out_dir, params, log_output=log_output, timeout=timeout)
        dt = time.perf_counter() - t0
        print(f"[notebooks] {src.name}: {dt:.1f} s -> {out}", flush=True)
        done.append((out, dt))
    return done


def _param(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name.strip(), value  # a bare string such as berkeley


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iislib.notebooks",
                                description="Convert (jupytext) and execute (papermill) the notebooks.")  # fmt: skip
    p.add_argument("--smoke", action="store_true", help="2 images, 4 clicks (figures/smoke/)")
    p.add_argument("--jobs", type=int, default=None, help="n_jobs parameter of the sweeps")
    p.add_argument("--only", nargs="*", default=None, help="notebook prefixes, e.g. 01 03")
    p.add_argument("-p", "--param", type=_param, action="append", default=[],
                   help="NAME=VALUE notebook parameter (Python literal or bare string)")  # fmt: skip
    p.add_argument("--out", type=Path, default=None, help="folder of the executed notebooks")
    p.add_argument("--log-output", action="store_true", help="stream cell output")
    args = p.parse_args(argv)
    params = dict(args.param)
    if args.jobs is not None:
        params["n_jobs"] = args.jobs
    t0 = time.perf_counter()
    try:
        done = run_all(args.smoke, params, args.only, args.out, args.log_output)
    except Exception as e:  # papermill's error names the notebook cell that failed
        print(f"[notebooks] FAILED: {e}", file=sys.stderr)
        return 1
    print(f"[notebooks] {len(done)} notebook(s) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
