# make demo: the whole runbook on a throwaway embedded PostgreSQL.   make test: the test suite.
# make lab: JupyterLab on a long-lived demo database (.lab/), started if needed.
# make lock: requirements.lock and requirements-lab.lock resolved again from pyproject.toml
# (make lock LOCK_ARGS=--upgrade: every package at its newest version pyproject allows).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
LAB_STAMP = $(VENV)/.installed-lab
# The locking tool, at one version so that make lock gives the same output everywhere.
UV_VERSION = 0.13.9
# Exactly the lock: every package at its pinned version, each file checked against its sha256,
# nothing resolved or downloaded besides.
PIP_LOCKED = $(BIN)/python -m pip install --quiet --require-hashes --no-deps

.PHONY: demo test lab install lock clean

install: $(STAMP)

# The project itself goes in without dependencies and without build isolation: its build
# backend (setuptools) is in the lock too. pip check: the lock holds all that the project needs.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP_LOCKED) -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check || { echo "requirements.lock lacks what pyproject.toml needs: run make lock" >&2; exit 1; }
	touch $(STAMP)

$(LAB_STAMP): $(STAMP) requirements-lab.lock
	$(PIP_LOCKED) -r requirements-lab.lock
	touch $(LAB_STAMP)

demo: $(STAMP)
	$(BIN)/tenancy-runbook demo

lab: $(LAB_STAMP)
	$(BIN)/tenancy-runbook lab

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# uv (and packaging, tomli) into the venv if missing; the project from src/ even before it is installed.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)' packaging 'tomli; python_version < "3.11"'
	PYTHONPATH=src $(BIN)/python -m tenancy_runbook.deps --lock $(LOCK_ARGS)

clean:
	-$(BIN)/tenancy-runbook lab --stop
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .lab
