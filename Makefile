# The two commands an admin needs: `make lab` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAB_ARGS ?=
PYTEST_ARGS ?=
# JupyterLab refuses to run as root unless told; containers and CI often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test bench notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.lab-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[lab]'
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[lab,test]'
	touch $@ $(VENV)/.lab-installed

lab: $(VENV)/.lab-installed
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01_quickstart.ipynb $(LAB_ARGS)

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Time import, Save, failing fast, the panel, AI calls and the notebooks against their baselines;
# writes benchmarks/RESULTS.md and the README's table of figures. Contacts nothing but 127.0.0.1.
bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/run.py

# Re-run the walkthrough notebooks and save their outputs (what nbval then compares against).
notebooks: $(VENV)/.test-installed
	$(BIN)/python tools/run_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache
