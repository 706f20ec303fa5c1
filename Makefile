# make demo: the whole runbook on a throwaway embedded PostgreSQL.   make test: the test suite.
# make lab: JupyterLab on a long-lived demo database (.lab/), started if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lab install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tenancy-runbook demo

lab: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[lab]'
	$(BIN)/tenancy-runbook lab

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	-$(BIN)/tenancy-runbook lab --stop
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .lab
