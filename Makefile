# Two commands do all the set-up: `make figures` and `make test` (each builds .venv first if needed).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
# The benchmark data: ../shared/data beside the checkout unless IISLIB_DATA says otherwise.
export IISLIB_DATA ?= $(abspath $(CURDIR)/../shared/data)
export MPLBACKEND ?= Agg
JOBS ?= 2

.PHONY: env figures test lint bench demo clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	# torch first, pinned to the CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e '.[notebooks,dev]'
	touch $@

env: $(VENV)/.installed

figures: env
	$(PY) -m iislib evaluate --dataset berkeley --models ready --robots all --settings ipol --jobs $(JOBS)

test: env
	$(PY) -m pytest -q

lint: env
	$(VENV)/bin/ruff format --check iislib tests benchmarks
	$(VENV)/bin/ruff check iislib tests benchmarks

bench: env
	$(PY) benchmarks/bench_robots.py

clean:
	rm -rf build figures results .cache
