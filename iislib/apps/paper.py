"""What the notebooks call: configuration (``config``), the sweeps each notebook requests
(``*_sweeps``, also read by the runner's plan), episodes, captions and saving.

In a notebook, after its ``parameters`` cell::

    cfg = paper.notebook_config(globals())   # the shared parameters; smoke also under CI
    table = paper.sweep(cfg)         # cached in paths.CACHE: every notebook shares the results
    paper.save(figures.fig4(table), "fig4", cfg)

The notebook runner behind ``make figures`` is ``iislib.apps.runner``.
"""

from __future__ import annotations

import ast
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from iislib import paths
from iislib.core.loop import make_rng, run_many
from iislib.core.robots import ENVELOPE_NAMES, RANDOM_ROBOTS, ROBOT_NAMES, get_robot
from iislib.drawing.figures import Episode, contrast_pair, own_pairs
from iislib.drawing.plots import save_figure
from iislib.experiment import findings
from iislib.experiment.data import load_dataset
from iislib.experiment.findings import FAMILY_PROCEDURE
from iislib.experiment.sweep import as_specs, cache_entry, evaluate, worker_count
from iislib.models import (
    OFFICIAL_PAIR,
    available_models,
    check_device,
    is_user_model,
    known_models,
    ready_models,
    resolve_names,
)
from iislib.models.official import OFFICIAL, OWN_SETTINGS
from iislib.models.settings import DEFAULT_SETTINGS, get_settings

SMOKE_IMAGES = 2
SMOKE_CLICKS = 4


# ----------------------------------------------------------------------------------------------
# configuration


def _names(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


MODEL_SETS: dict[str, str] = {
    "ready": "every model that builds with no argument (iislib.models.ready_models())",
    "paper": "random_walker and the compact pair ritm-compact, gto99-compact",
    "official": "the paper's own pair from the weights folder: ritm-sbd-h18, gto99-synthft",
}
"""The set names ``resolve_models`` expands, the same in the notebooks and on the command line."""


def _model_set(name: str) -> list[str]:
    if name == "ready":
        return ready_models()
    if name == "paper":
        return ready_models(cross_trained=False, official=False, user=False)
    return list(OFFICIAL_PAIR.values())


def resolve_models(models: str | Sequence[str]) -> list[str]:
    """Model names from set names and names (a comma list or a sequence), in order, each once.

    The set names (``MODEL_SETS``), which may be mixed with names (``"official,random_walker"``):

    - ``"ready"``: every model ``iislib.models.ready_models()`` returns, i.e. every model that
      builds with no argument: no official weights needed (shipped weights present; the two
      cross-trained controls of the 2x2 experiment included), the official files present in
      the weights folder, and the user's models (entry points that load);
    - ``"paper"``: random_walker and the paper's two families as trained here (ritm-compact,
      gto99-compact): the notebooks' default (their 2x2 section adds the controls itself);
    - ``"official"``: the paper's own pair (``iislib.models.OFFICIAL_PAIR``: ritm-sbd-h18,
      gto99-synthft), built from the official files in the weights folder.

    A name is a registered model, an official name, an installed entry point or an import
    string ``"package.module:factory"``.

    Raises:
        FileNotFoundError: an official file is missing (one line per file: its name, link and
            the weights folder).
        ValueError: an unknown name, or a user model that cannot be loaded (naming its package).
    """

    names: list[str] = []
    for item in _names(models):
        names += _model_set(item) if item in MODEL_SETS else [item]
    names = list(dict.fromkeys(names))
    unknown = [m for m in names if m not in known_models() and not is_user_model(m)]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {available_models()} "
                         f"(or the sets {', '.join(repr(s) for s in MODEL_SETS)}, an official "
                         "name once its file is in the weights folder, or "
                         "'package.module:factory')")  # fmt: skip
    return resolve_names(names)


def resolve_robots(robots: str | Sequence[str]) -> list[str]:
    """'all' (the paper's seven), 'random' (r01..r05), 'envelope' (rbest, rworst), or names
    (comma list)."""
    if robots == "all":
        return list(ROBOT_NAMES)
    if robots == "envelope":
        return list(ENVELOPE_NAMES)
    if robots == "random":
        return [r for r in ROBOT_NAMES if r in RANDOM_ROBOTS]
    names = _names(robots)
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
    device: str = "cpu"

    @property
    def data(self):
        """The dataset, first ``n_images`` samples."""

        return load_dataset(self.dataset_name).subset(self.n_images)

    @property
    def names(self) -> list[str]:
        return self.data.names

    @property
    def figures(self) -> Path:
        """Where figures go: ``paths.FIGURES`` (``figures/smoke`` in smoke mode) for the paper's
        dataset (Berkeley, ``NOTEBOOK_DEFAULTS``), a subfolder named after any other dataset
        (``figures/davis/``), so that a run on each dataset keeps its own figures."""
        base = paths.FIGURES / "smoke" if self.smoke else paths.FIGURES
        if self.dataset_name == NOTEBOOK_DEFAULTS["dataset"]:
            return base
        return base / Path(self.dataset_name).name

    def __str__(self) -> str:
        return (f"dataset {self.dataset_name} ({len(self.names)} images), models {self.models}, "
                f"robots {self.robots}, {self.max_clicks} clicks, seeds {self.seeds}, settings "
                f"{self.settings}, n_jobs {self.n_jobs} ({worker_count(self.n_jobs)} worker(s))"
                f"{', SMOKE RUN' if self.smoke else ''}")  # fmt: skip


NOTEBOOK_DEFAULTS: dict[str, Any] = {
    "dataset": "berkeley",
    "models": "paper",
    "robots": "all",
    "n_images": 100,
    "max_clicks": 20,
    "seeds": [0],
    "settings": DEFAULT_SETTINGS,
    "n_jobs": -1,  # joblib's convention: one worker process per core, as `make figures`
    "smoke": False,
    "device": "cpu",
}
"""The parameters notebooks 01-04 share, with their defaults: ``config``'s arguments. Each
notebook's ``parameters`` cell repeats them as literals (papermill and the runner read that cell;
``tests/test_notebooks.py`` checks that they agree)."""


class ParameterError(ValueError):
    """Notebook parameters with mistakes; the message lists every one, one per line."""


def _literal(value: Any) -> Any:
    """Text as papermill's ``-p``/``-r`` passes it ("[0, 1]", "5"): the Python literal it spells,
    when it spells one; anything else as it is."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
    return value


def _is_whole(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _whole(lo: int | None, what: str) -> Callable[[str, Any], Any]:
    """A rule for a whole number >= ``lo`` (any when None); ``what`` says what it means."""

    def rule(name: str, value: Any) -> Any:
        v = _literal(value)
        if not _is_whole(v) or (lo is not None and v < lo):
            bound = f" >= {lo}" if lo is not None else ""
            raise ValueError(f"{name} must be a whole number{bound} ({what}), got {value!r}")
        return int(v)

    return rule


def _seeds(name: str, value: Any) -> list[int]:
    v = _literal(value)
    v = [v] if _is_whole(v) else v
    if not isinstance(v, list | tuple | range) or not all(_is_whole(s) for s in v):
        raise ValueError(f"{name} must be a list of whole numbers such as [0, 1] (or one number), "
                         f"got {value!r}")  # fmt: skip
    if not v:
        raise ValueError(f"{name} must hold at least one seed, got {value!r}")
    dup = sorted({int(s) for s in v if list(v).count(s) > 1})
    if dup:
        raise ValueError(f"{name} gives seed(s) {dup} more than once: {value!r}")
    return [int(s) for s in v]


def _n_jobs(name: str, value: Any) -> int:
    v = _literal(value)
    if not _is_whole(v) or v == 0:
        raise ValueError(f"{name} must be a whole number: N >= 1 worker processes, or -1 for "
                         f"every core (-2: all but one), got {value!r}")  # fmt: skip
    return int(v)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {value!r}")
    return value


def _nonempty_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a name or a folder, got {value!r}")
    return value


def _bool(name: str, value: Any) -> bool:
    v = _literal(value)
    if not isinstance(v, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(v)


def _names_rule(resolve: Callable[[Any], list[str]]) -> Callable[[str, Any], Any]:
    def rule(name: str, value: Any) -> Any:
        v = _literal(value) if isinstance(value, str) and value.lstrip().startswith("[") else value
        if not (isinstance(v, str) or (isinstance(v, list | tuple)
                                       and all(isinstance(x, str) for x in v))):  # fmt: skip
            raise ValueError(f"{name} must be a comma list of names or a list of names, "
                             f"got {value!r}")  # fmt: skip
        try:
            found = resolve(v)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        if not found:
            raise ValueError(f"{name} names nothing, got {value!r}")
        return v

    return rule


def _datasets(name: str, value: Any) -> list[str]:
    v = _literal(value) if isinstance(value, str) and value.lstrip().startswith("[") else value
    v = _names(v) if isinstance(v, str) else v
    if (
        not isinstance(v, list | tuple)
        or not v
        or not all(isinstance(x, str) and x.strip() for x in v)
    ):
        raise ValueError(f"{name} must be a non-empty list of dataset names or folders, "
                         f"got {value!r}")  # fmt: skip
    return list(v)


def _settings(name: str, value: Any) -> str:
    _text(name, value)
    try:
        get_settings(value)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    return value


PARAMETER_RULES: dict[str, Callable[[str, Any], Any]] = {
    "dataset": _nonempty_text,
    "models": _names_rule(resolve_models),
    "robots": _names_rule(resolve_robots),
    "n_images": _whole(0, "the first N images; 0: all of them"),
    "max_clicks": _whole(1, "clicks per trajectory"),
    "seeds": _seeds,
    "settings": _settings,
    "n_jobs": _n_jobs,
    "smoke": _bool,
    # the parameters of single notebooks, checked when the notebook declares them
    "image": _whole(None, "an image index, modulo the number of images"),
    "fig5_image": _whole(None, "an image index, modulo the number of images"),
    "cost_images": _whole(1, "images whose trajectories time the robots"),
    "k": _whole(1, "a click number"),
    "n_boot": _whole(1, "bootstrap resamples"),
    "variance_seeds": _seeds,
    "variance_images": _whole(1, "images of the seed-variance experiment"),
    "findings_datasets": _datasets,
    "record": _text,
}
"""How each notebook parameter is checked and read (a value given as text, as papermill's
``-p`` passes a list, is read as the Python literal it spells): name -> rule(name, value),
returning the value to use or raising ValueError with the mistake."""


def check_parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``values`` that ``PARAMETER_RULES`` knows, checked and read; others are
    left out. ``ParameterError`` lists every mistake at once, one per line, before any work."""
    out, mistakes = {}, []
    for name, value in values.items():
        rule = PARAMETER_RULES.get(name)
        if rule is None:
            continue
        try:
            out[name] = rule(name, value)
        except ValueError as e:
            mistakes.append(str(e))
    if mistakes:
        n = len(mistakes)
        raise ParameterError(f"{n} notebook parameter{'s are' if n > 1 else ' is'} wrong:\n"
                             + "\n".join(f"- {m}" for m in mistakes))  # fmt: skip
    return out


def config(
    dataset: str = NOTEBOOK_DEFAULTS["dataset"],
    models: str | Sequence[str] = NOTEBOOK_DEFAULTS["models"],
    robots: str | Sequence[str] = NOTEBOOK_DEFAULTS["robots"],
    n_images: int = NOTEBOOK_DEFAULTS["n_images"],
    max_clicks: int = NOTEBOOK_DEFAULTS["max_clicks"],
    seeds: Sequence[int] = tuple(NOTEBOOK_DEFAULTS["seeds"]),
    settings: str = NOTEBOOK_DEFAULTS["settings"],
    n_jobs: int = NOTEBOOK_DEFAULTS["n_jobs"],
    smoke: bool = NOTEBOOK_DEFAULTS["smoke"],
    device: str = NOTEBOOK_DEFAULTS["device"],
) -> Config:
    """Resolve a notebook's parameters; ``smoke`` shrinks the run to 2 images, 4 clicks, 1 job.
    ``device``: where the networks run ("cpu", "cuda"), checked here before any work.

    Every parameter is checked first (``check_parameters``: one ``ParameterError`` listing each
    mistake). ``n_images`` 0 means every image (as ``--n-images 0`` on the command line).
    Notebooks call ``notebook_config``, which also turns smoke on under CI.
    """
    p = check_parameters(dict(dataset=dataset, models=models, robots=robots, n_images=n_images,
                              max_clicks=max_clicks, seeds=seeds, settings=settings,
                              n_jobs=n_jobs, smoke=smoke))  # fmt: skip
    models, robots, n_images, max_clicks = p["models"], p["robots"], p["n_images"], p["max_clicks"]
    seeds, n_jobs, smoke = p["seeds"], p["n_jobs"], p["smoke"]
    if smoke:
        n_images = min(n_images, SMOKE_IMAGES) if n_images else SMOKE_IMAGES
        max_clicks = min(max_clicks, SMOKE_CLICKS)
        n_jobs = 1
    models_ = resolve_models(models)
    if not models_:
        raise ValueError(f"no model to evaluate (models={models!r} found none)")
    return Config(dataset, models_, resolve_robots(robots), n_images or None, int(max_clicks),
                  [int(s) for s in seeds], settings, int(n_jobs), bool(smoke),
                  check_device(device))  # fmt: skip


def notebook_config(parameters: Mapping[str, Any]) -> Config:
    """The configuration of a notebook run: ``config`` on the shared parameters
    (``NOTEBOOK_DEFAULTS``) taken from ``parameters`` (a notebook's variables, or the runner's
    view of them; the others are ignored), with smoke on when asked or when the ``CI``
    environment variable is set (any value).

    Every parameter of ``PARAMETER_RULES`` in ``parameters`` is checked before any work, the
    notebook's own ones (``k``, ``variance_seeds``, ...) included: one ``ParameterError`` lists
    every mistake. A value given as text that spells a Python literal (papermill's ``-p seeds
    "[0, 1]"``) is read as that literal, and written back into ``parameters`` when it can be
    (``globals()``), so that the notebook uses the value it was checked as.

    In a notebook, after its ``parameters`` cell: ``cfg = paper.notebook_config(globals())``.
    """
    checked = check_parameters({k: v for k, v in parameters.items() if k in PARAMETER_RULES})
    if isinstance(parameters, MutableMapping):
        for k, v in checked.items():
            if k not in NOTEBOOK_DEFAULTS:
                parameters[k] = v
    p = {k: checked.get(k, v) for k, v in NOTEBOOK_DEFAULTS.items()}
    p["smoke"] = p["smoke"] or "CI" in os.environ
    return config(**p)


# ----------------------------------------------------------------------------------------------
# computing


@dataclass(frozen=True)
class SweepRequest:
    """One sweep a notebook asks for: ``models`` x ``robots`` x the first ``n_images`` images of
    ``cfg``'s dataset (all of them when None) x ``seeds``, with ``cfg``'s clicks and settings,
    cached in ``paths.CACHE``. ``notebook`` and ``purpose`` only label it in the plan."""

    cfg: Config
    models: tuple[str, ...]
    robots: tuple[str, ...]
    seeds: tuple[int, ...]
    n_images: int | None = None
    notebook: str = ""
    purpose: str = ""

    @property
    def data(self):
        """The images of this sweep (a ``Dataset``)."""
        data = self.cfg.data
        return data if self.n_images is None else data.subset(min(self.n_images, len(data)))

    def run(self, progress: bool = True) -> pd.DataFrame:
        """``experiment.evaluate`` on this request (cached results are read, not recomputed).

        With ``$IISLIB_SWEEP_LOG`` set, first appends one JSON line to that file: the cache
        files the sweep reads (relative to the cache) and how many are missing (to be computed
        now); the tests use it to check that the runner's plan is what the notebooks request.
        """

        log = os.environ.get("IISLIB_SWEEP_LOG")
        if log:
            plan = make_plan([self])
            line = {"request": str(self), "missing": plan.missing_trajectories,
                    "entries": sorted(str(p.relative_to(plan.cache)) for p in plan.entries)}  # fmt: skip
            with open(log, "a") as f:
                f.write(json.dumps(line) + "\n")
        return evaluate(
            list(self.models), list(self.robots), self.data, max_clicks=self.cfg.max_clicks,
            seeds=list(self.seeds), settings=self.cfg.settings, n_jobs=self.cfg.n_jobs,
            cache_dir=paths.CACHE, progress=progress, device=self.cfg.device,
        )  # fmt: skip

    def __str__(self) -> str:
        n = (
            len(self.cfg.names)
            if self.n_images is None
            else min(self.n_images, len(self.cfg.names))
        )
        label = " ".join(x for x in (self.notebook, self.purpose) if x)
        return (f"{label + ': ' if label else ''}{self.cfg.dataset_name}, models "
                f"{','.join(self.models)} x robots {','.join(self.robots)} x {n} images x seeds "
                f"{','.join(map(str, self.seeds))}, {self.cfg.max_clicks} clicks, {self.cfg.settings}")  # fmt: skip


def request(
    cfg: Config,
    *,
    models: Sequence[str] | None = None,
    robots: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    n_images: int | None = None,
    notebook: str = "",
    purpose: str = "",
) -> SweepRequest:
    """The sweep ``sweep`` runs with these arguments (defaults: ``cfg``'s), not run yet."""
    return SweepRequest(
        cfg, tuple(models if models is not None else cfg.models),
        tuple(robots if robots is not None else cfg.robots),
        tuple(int(s) for s in (seeds if seeds is not None else cfg.seeds)),
        None if n_images is None else int(n_images), notebook, purpose,
    )  # fmt: skip


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
    return request(cfg, models=models, robots=robots, seeds=seeds, n_images=n_images).run(progress)


def random_robots(cfg: Config) -> list[str]:
    """The random robots among ``cfg.robots``."""
    return [r for r in cfg.robots if r in RANDOM_ROBOTS]


def family_request(cfg: Config, notebook: str = "", purpose: str = "2x2") -> SweepRequest | None:
    """The sweep of the four 2x2 models, or None when one of them cannot be built (not
    registered, or no weights)."""

    if any(m not in ready_models() for m in FAMILY_PROCEDURE):
        return None
    return request(cfg, models=list(FAMILY_PROCEDURE), notebook=notebook, purpose=purpose)


def family_sweep(cfg: Config) -> pd.DataFrame | None:
    """The sweep of the four 2x2 models when all of them can be built (registered, weights
    present), else None, saying which are missing."""

    req = family_request(cfg)
    official = [m for m in cfg.models if m in OFFICIAL]
    if official:
        print(f"The official models ({', '.join(official)}) have no cross-trained controls: "
              "nobody trained RITM's network with gto99's click procedure or gto99's with "
              "RITM's. The 2x2 below is the compact one (ritm-compact, gto99-compact and their "
              "controls).")  # fmt: skip
    if req is None:
        missing = [m for m in FAMILY_PROCEDURE if m not in ready_models()]
        print("The 2x2 family x training-procedure experiment is SKIPPED: these models are not "
              "registered or have no weights: " + ", ".join(missing))  # fmt: skip
        return None
    return req.run()


# Each notebook's sweeps, by one function that both the notebook and the runner's plan call.


def qualitative_sweeps(cfg: Config) -> dict[str, SweepRequest]:
    """Notebook 02: ``r01``, the paper pair (else the first model) under r01, which picks the
    images of Figures 8 and 9."""
    pair = contrast_pair(cfg.models)
    r01 = request(cfg, models=list(pair or cfg.models[:1]), robots=["r01"], notebook="02",
                  purpose="r01 (Figures 8, 9)")  # fmt: skip
    return {"r01": r01}


def quantitative_sweeps(cfg: Config) -> dict[str, SweepRequest]:
    """Notebook 03: ``main``, every model x robot x image x seed, and ``own NAME`` per official
    model of ``cfg`` (``own_protocol``)."""
    return {"main": request(cfg, notebook="03", purpose="main"), **own_protocol(cfg, "03")}


def own_protocol(cfg: Config, notebook: str = "") -> dict[str, SweepRequest]:
    """Per official model among ``cfg.models`` (``iislib.models.official``), ``own NAME``: the
    sweep of its paper's own protocol, i.e. its own settings (``ritm``: zoom-in and flip at
    full resolution; ``gto99``) under its own robot (rritm, rgto99), on ``cfg``'s images,
    clicks and seeds. Empty when no official model is selected."""
    out = {}
    for name in cfg.models:
        if name in OFFICIAL:
            family = OFFICIAL[name].family
            own = replace(cfg, settings=OWN_SETTINGS[family])
            out[f"own {name}"] = request(own, models=[name], robots=[findings.OWN_ROBOT[family]],
                                         notebook=notebook, purpose=f"{name} own protocol")  # fmt: skip
    return out


def own_protocol_table(cfg: Config) -> pd.DataFrame | None:
    """Notebook 03's NoC of the official models under each paper's own protocol beside the
    published numbers (``findings.own_protocol_noc``); None, saying why, without official models."""
    reqs = own_protocol(cfg)
    if not reqs:
        print("No official model selected (models=official, or an official name such as "
              "ritm-sbd-h18): the own-protocol NoC table is skipped.")  # fmt: skip
        return None
    return findings.own_protocol_noc(pd.concat([r.run() for r in reqs.values()], ignore_index=True))


ENVELOPE_IMAGES = 10
"""Images of notebook 04's envelope by default (``envelope_images``; 0: the whole dataset).
rbest and rworst cost N + 7 = 23 predictions per click: ~22 s of wall time per image for the
three paper models with 2 workers at the fastest measured per-click costs (an AMD EPYC with
AVX-512, 2026-12-02), so 10 images add ~4 minutes, paid for by leaving GrabCut's findings to the
full run (docs/decisions.md, "The envelope robots"). 10 is the least the finding on the envelope
needs for a verdict (``findings.MIN_IMAGES``)."""


def robustness_sweeps(
    cfg: Config,
    variance_seeds: Sequence[int],
    variance_images: int,
    findings_datasets: Sequence[str],
    envelope_images: int = ENVELOPE_IMAGES,
) -> dict[str, SweepRequest | None]:
    """Notebook 04: ``main`` (notebook 03's), ``variance`` (the random robots with
    ``variance_seeds`` on the first ``variance_images`` images), ``family`` (the 2x2; None when
    skipped), ``findings DATASET`` per findings dataset (the 2x2 models when they all
    exist, else the main sweep's models, on that dataset) and ``envelope`` (rbest and rworst,
    every model, the first ``envelope_images`` images; 0: all of the configuration's); with two
    findings datasets or more, ``envelope DATASET`` on each other one (its pooled finding:
    ``envelope_table``)."""
    out: dict[str, SweepRequest | None] = {
        "main": request(cfg, notebook="04", purpose="main"),
        "variance": request(
            cfg,
            robots=random_robots(cfg),
            seeds=variance_seeds,
            n_images=variance_images,
            notebook="04",
            purpose="seed variance",
        ),  # fmt: skip
        "family": family_request(cfg, "04"),
        "envelope": request(
            cfg,
            robots=list(ENVELOPE_NAMES),
            n_images=int(envelope_images) or None,
            notebook="04",
            purpose="envelope",
        ),
    }
    out.update(findings_requests(cfg, findings_datasets))
    # with several findings datasets, the envelope on the others too (for its pooled finding)
    pooled = len(findings_datasets) > 1
    for ds in [d for d in findings_datasets if pooled and d != cfg.dataset_name]:
        out[f"envelope {ds}"] = replace(out["envelope"], cfg=replace(cfg, dataset_name=ds),
                                        purpose=f"envelope {ds}")  # fmt: skip
    return out


def envelope_table(sweeps: Mapping[str, SweepRequest | None], cfg: Config,
                   datasets: Sequence[str]) -> pd.DataFrame:  # fmt: skip
    """Notebook 04's envelope on each of ``datasets`` with the seven robots beside it, one table
    for ``envelope.oracle_vs_model`` (per dataset, and pooled): ``envelope`` and ``main`` on
    ``cfg``'s dataset, ``envelope DATASET`` and ``findings DATASET`` (which holds the paper pair
    under the seven robots) on the others; everything is read from the cache when computed."""
    parts = []
    for ds in datasets:
        own = ds == cfg.dataset_name
        for key in ("envelope", "main") if own else (f"envelope {ds}", f"findings {ds}"):
            req = sweeps.get(key)
            if req is None:
                raise KeyError(f"notebook 04's sweeps have no {key!r} (datasets {list(datasets)})")
            parts.append(req.run())
    return pd.concat(parts, ignore_index=True)


def findings_requests(
    cfg: Config, datasets: Sequence[str], notebook: str = "04"
) -> dict[str, SweepRequest]:
    """``findings DATASET`` -> the sweep that ``findings.findings`` reads on that dataset: the
    2x2 models when they all exist (with the official pair too when ``cfg`` has it), else
    ``cfg``'s models, on ``cfg`` with only the dataset changed (its images, clicks, settings)."""
    out: dict[str, SweepRequest] = {}
    for ds in datasets:
        # what nb.config(ds, ...) gives with the notebook's other parameters
        fcfg = replace(cfg, dataset_name=ds)
        purpose = f"findings {ds}"
        fam = family_request(fcfg, notebook, purpose)
        pair = [m for m in OFFICIAL_PAIR.values() if m in cfg.models]
        if fam is not None and len(pair) == 2:  # the official pair, and the 2x2 for claim 4
            fam = replace(fam, models=(*pair, *fam.models))
        out[purpose] = fam or request(fcfg, notebook=notebook, purpose=purpose)
    return out


def _robustness_from_params(cfg: Config, p: Mapping[str, Any]) -> dict[str, SweepRequest | None]:
    return robustness_sweeps(cfg, p["variance_seeds"], p["variance_images"], p["findings_datasets"],
                             p.get("envelope_images", ENVELOPE_IMAGES))  # fmt: skip


NOTEBOOK_SWEEPS: dict[str, Callable[[Config, Mapping[str, Any]], Mapping[str, SweepRequest | None]]] = {
    "02": lambda cfg, p: qualitative_sweeps(cfg),
    "03": lambda cfg, p: quantitative_sweeps(cfg),
    "04": _robustness_from_params,
}  # fmt: skip
"""Notebook prefix -> its sweeps from (config, every parameter). 01 and 05 run no sweep."""


def episode(cfg: Config, image: int | str, pairs: Sequence[tuple[str, str]] | None = None,
            seed: int | None = None) -> Episode:  # fmt: skip
    """Run the (model, robot) ``pairs`` (default: each model under its own robots) on one image,
    keeping every probability map. Same preparation and generators as the sweep."""

    st = get_settings(cfg.settings)
    data = cfg.data
    sample = data[image if isinstance(image, str) else int(image) % len(data)]
    img, gt, ignore = st.prepare(sample.image, sample.gt, sample.ignore)
    pairs = list(pairs) if pairs is not None else own_pairs(cfg.models)
    seed = cfg.seeds[0] if seed is None else seed
    ep = Episode(sample.name, data.name, st.name, img, gt, ignore, st.threshold)
    for model in dict.fromkeys(m for m, _ in pairs):
        robots = [r for m, r in pairs if m == model]
        (spec,) = as_specs([model])
        trajs = run_many(
            st.wrap(replace(spec, device=cfg.device).build()), [(get_robot(r), make_rng(seed, sample.name, r)) for r in robots],
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

    if fig is None:
        print(f"{name}: not produced")
        return None
    written = save_figure(fig, name, cfg.figures)
    print("saved " + ", ".join(str(p.relative_to(paths.HOME)) if p.is_relative_to(paths.HOME)
                               else str(p) for p in written))  # fmt: skip
    return fig


# ----------------------------------------------------------------------------------------------
# what a set of requests still needs: the jobs missing from the cache


@dataclass(frozen=True)
class PlannedJob:
    """One (model, image, seed) to compute: its missing ``robots`` run in lockstep, as in
    ``experiment.evaluate``; ``index`` is the image's position in ``dataset``."""

    spec: Any  # experiment.ModelSpec
    dataset: Any  # data.Dataset
    index: int
    image: str
    seed: int
    settings: Any  # settings.Settings
    max_clicks: int
    robots: tuple[str, ...]

    @property
    def model(self) -> str:
        return self.spec.label

    @property
    def clicks(self) -> int:
        """Planned clicks: trajectories x max_clicks (a trajectory may stop early)."""
        return len(self.robots) * self.max_clicks


@dataclass
class Plan:
    """What ``requests`` read from ``cache``: every cache file (path -> present) and the jobs
    that compute the missing ones, grouped by model (in order of first appearance)."""

    requests: list[SweepRequest]
    cache: Path
    entries: dict[Path, bool]
    jobs: list[PlannedJob]

    @property
    def missing_trajectories(self) -> int:
        return sum(len(j.robots) for j in self.jobs)

    def by_model(self) -> pd.DataFrame:
        """Per model: jobs, trajectories and planned clicks still missing (index: model)."""
        rows = [{"model": j.model, "jobs": 1, "trajectories": len(j.robots), "clicks": j.clicks}
                for j in self.jobs]  # fmt: skip
        frame = pd.DataFrame(rows, columns=["model", "jobs", "trajectories", "clicks"])
        return frame.groupby("model", sort=False).sum()


def make_plan(requests: Sequence[SweepRequest], cache: Path | None = None) -> Plan:
    """The cache files ``requests`` read and the jobs missing from ``cache`` (default
    ``paths.CACHE``). A file counts as present when it exists; one that fails verification is
    recomputed by ``evaluate`` when read. Robots of one (model, image, seed) asked by several
    requests are merged into one job, so they run in lockstep once."""

    cache = Path(cache if cache is not None else paths.CACHE)
    entries: dict[Path, bool] = {}
    groups: dict[tuple, dict[str, Any]] = {}
    for req in requests:
        data, settings, mc = req.data, get_settings(req.cfg.settings), req.cfg.max_clicks
        folder = str(data.folder.resolve())
        for spec in as_specs(list(req.models)):
            spec = replace(spec, device=req.cfg.device)
            for index, image in enumerate(data.names):
                for seed in req.seeds:
                    for robot in req.robots:
                        path = cache_entry(cache, spec, settings, data, image, robot, seed,
                                            mc).path  # fmt: skip
                        if path in entries:
                            continue
                        entries[path] = path.is_file()
                        if entries[path]:
                            continue
                        key = (spec, settings.name, folder, data.name, image, seed, mc)
                        group = groups.setdefault(key, {"spec": spec, "dataset": data,
                                                        "index": index, "image": image,
                                                        "seed": seed, "settings": settings,
                                                        "max_clicks": mc, "robots": []})  # fmt: skip
                        group["robots"].append(robot)
    order = {name: i for i, name in enumerate(ROBOT_NAMES)}
    models = list(dict.fromkeys(g["spec"].label for g in groups.values()))
    jobs = [PlannedJob(**{**g, "robots": tuple(sorted(g["robots"], key=lambda r: order.get(r, 99)))})
            for g in groups.values()]  # fmt: skip
    jobs.sort(key=lambda j: models.index(j.model))  # stable: images and seeds stay in order
    return Plan(list(requests), cache, entries, jobs)
