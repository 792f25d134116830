# Two commands do all the set-up: `make figures` and `make test` (each builds .venv first if needed);
# `make lab` opens the notebooks in JupyterLab.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
# The benchmark data: $IISLIB_DATA, else ../shared/data beside the checkout when it exists, else
# data/ (downloaded and verified by `make data`, or on first use).
IISLIB_DATA ?= $(if $(wildcard $(CURDIR)/../shared/data),$(abspath $(CURDIR)/../shared/data),)
export IISLIB_DATA
export MPLBACKEND ?= Agg
# Sweep workers of `make figures`: -1 is one per core (joblib's convention), as in the notebooks.
JOBS ?= -1
# Which models the notebooks evaluate (their `models` parameter): empty keeps the notebooks'
# default ("paper": random_walker and the compact pair); "official" is the paper's own pair from
# the weights folder (`make weights`); any comma list of names and sets works.
MODELS ?=
# Where the networks run (the notebooks' `device` parameter): cpu, or cuda on a GPU machine.
DEVICE ?=
NB_PARAMS = $(if $(MODELS),-p models=$(MODELS)) $(if $(DEVICE),-p device=$(DEVICE))

.PHONY: env figures test lint bench demo lab clean data weights

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	# torch first, pinned to the CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
	$(PIP) install --no-compile -c constraints.txt torch==2.13.0
	$(PIP) install --no-compile -c constraints.txt -e '.[notebooks,dev]'
	# Byte-compile on every core (pip compiles on one: 78 s -> 61 s for the whole venv, measured
	# back to back). One file of torch's own tests is Python 3.12 syntax and fails, as under pip.
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

# The JupyterLab setting that opens notebooks/*.py as notebooks on a double-click (lab-settings/:
# a package of its own, because pip's editable install of iislib leaves data files out).
$(VENV)/.lab-settings: lab-settings/pyproject.toml lab-settings/overrides.d/iislib.json | $(VENV)/.installed
	$(PIP) install --no-compile --no-deps --force-reinstall ./lab-settings
	touch $@

env: $(VENV)/.installed $(VENV)/.lab-settings

# The paper's figures: every notebook executed in full (100 Berkeley images, 7 robots, 20 clicks;
# the findings of notebook 04 on Berkeley only) into build/notebooks/full/, figures into figures/.
# It first prints the plan (the jobs missing from the cache, per model, with an estimated time),
# computes them all in one pass on $(JOBS) workers (one progress bar; cached in .cache/results),
# then runs the notebooks, which only read the cache. `python benchmarks/bench_figures.py` times
# it per phase from an empty cache.
# DATASETS=all (or a comma list of berkeley, grabcut, davis): the full run, notebooks 03 and 04
# once per dataset on all its images into build/notebooks/full/<dataset>/ (figures/<dataset>/;
# Berkeley's into figures/), 04's findings on every one of them and pooled.
# SCHEDULER=tcp://HOST:8786: compute the sweeps on that Dask cluster (README, "On a cluster").
DATASETS ?=
SCHEDULER ?=
figures: env
	$(PY) -m iislib.apps.runner --jobs $(JOBS) $(NB_PARAMS) $(if $(DATASETS),--datasets $(DATASETS)) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

# The full run: Berkeley, GrabCut and DAVIS through notebooks 03 and 04 (make figures DATASETS=all;
# 386,100 planned clicks from an empty cache, 75 min measured on a 2-core EPYC on 2026-12-07;
# `python -m iislib.apps.runner --datasets all --plan` prints its size and estimated time).
# Resumable: an interrupted run computes only what the cache lacks.
.PHONY: figures-full
figures-full: env
	$(MAKE) figures DATASETS=all

# Quick run of every notebook (2 images, 4 clicks): build/notebooks/smoke/, figures/smoke/.
.PHONY: notebooks
notebooks: env
	$(PY) -m iislib.apps.runner --smoke $(NB_PARAMS)

# Unit tests (tests/test_notebooks.py executes every notebook in smoke mode into
# build/notebooks/smoke/), then nbval re-runs those notebooks (widget cells: nbval-ignore-output).
test: env
	$(PY) -m pytest -q
	@if ls build/notebooks/smoke/*.ipynb >/dev/null 2>&1; then \
	  $(PY) -m pytest -q -p no:python --nbval-lax --nbval-current-env --nbval-cell-timeout=600 build/notebooks/smoke/; \
	else echo "nbval skipped: no smoke notebooks in build/notebooks/smoke (benchmark data missing?)"; fi

# Fetch (or find) Berkeley, GrabCut and DAVIS, check every file against
# iislib/experiment/manifests/ (SHA256), print where they are.
data: env
	$(PY) -m iislib data

# The official weights files ($$IISLIB_WEIGHTS, default data/weights/): link, published size,
# registry name, present?, structure check, SHA256; RITM's missing files are downloaded (pooch)
# where the network allows; gto99's (Google Drive) has to be fetched by hand: the link is printed.
weights: env
	$(PY) -m iislib weights --download

lint: env
	$(VENV)/bin/ruff format --check iislib tests benchmarks
	$(VENV)/bin/ruff check iislib tests benchmarks

bench: env
	$(PY) benchmarks/bench_robots.py

# The demo (notebooks/05_demo.py) as a web page: Voila on 127.0.0.1, on DEMO_PORT or a free port,
# with the server settings of demo/voila.json: a kernel whose page is gone is shut down after
# DEMO_CULL_TIMEOUT seconds idle (60), and at most DEMO_MAX_KERNELS pages are open at once (10;
# one more gets a "the demo is full" page). Empty: the file's values.
DEMO_PORT ?=
DEMO_MAX_KERNELS ?=
DEMO_CULL_TIMEOUT ?=
demo: env
	@mkdir -p build/notebooks
	@$(VENV)/bin/jupytext --quiet --to ipynb --output build/notebooks/05_demo.ipynb notebooks/05_demo.py
	@port="$(DEMO_PORT)"; [ -n "$$port" ] || port=$$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	echo "demo: open http://127.0.0.1:$$port/ (Ctrl-C stops it)"; \
	exec $(VENV)/bin/voila build/notebooks/05_demo.ipynb --no-browser --Voila.ip=127.0.0.1 --port=$$port \
	  --Voila.config_file_paths="$(CURDIR)/demo" \
	  $(if $(DEMO_MAX_KERNELS),--DemoKernelManager.max_kernels=$(DEMO_MAX_KERNELS)) \
	  $(if $(DEMO_CULL_TIMEOUT),--MappingKernelManager.cull_idle_timeout=$(DEMO_CULL_TIMEOUT))

# The paper's notebooks in JupyterLab on 127.0.0.1, on LAB_PORT or a free port, in the project
# folder: prints the address of the start page (notebooks/00_start_here.py, with its token);
# notebooks/*.py open as notebooks on a double-click. Ctrl-C stops it (iislib/apps/lab.py).
LAB_PORT ?=
lab: env
	@exec $(PY) -m iislib.apps.lab $(if $(LAB_PORT),--port $(LAB_PORT))

clean:
	rm -rf build figures results .cache
