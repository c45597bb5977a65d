# The two commands an admin needs: `make lab` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAB_ARGS ?=
PYTEST_ARGS ?=
# JupyterLab refuses to run as root unless told; containers and CI often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

# Test-only packages (keyring backends) that must stay invisible to `make lab`; see tests/keyring-backends.txt.
TEST_ONLY := $(VENV)/test-only

.PHONY: lab test test-fast lint screenshots bench notebooks hub clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.lab-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[lab]'
	touch $@

# The lab, test and lint extras into .venv; the test-only keyring backends into $(TEST_ONLY).
# A .venv made before that split still holds keyrings.cryptfile: it is taken out (and keyrings.alt,
# which shares its keyrings/__init__.py, put back whole) so that `make lab` sees no test backend.
$(VENV)/.test-installed: pyproject.toml tests/keyring-backends.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[lab,test,lint]'
	if $(BIN)/python -m pip show --quiet keyrings.cryptfile >/dev/null 2>&1; then \
	    $(BIN)/python -m pip uninstall --quiet --yes keyrings.cryptfile pycryptodome && \
	    $(BIN)/python -m pip install --quiet --force-reinstall --no-deps keyrings.alt; fi
	rm -rf $(TEST_ONLY)
	$(BIN)/python -m pip install --quiet --no-deps --target $(TEST_ONLY) -r tests/keyring-backends.txt
	touch $@ $(VENV)/.lab-installed

# configurable-http-proxy (npm) for the real-hub tests and `make hub`, into .venv/node (untracked, not global).
PROXY := $(VENV)/node/node_modules/.bin/configurable-http-proxy
$(PROXY): | $(BIN)/python
	npm install --prefix $(VENV)/node --no-audit --no-fund --silent configurable-http-proxy

lab: $(VENV)/.lab-installed
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01_quickstart.ipynb $(LAB_ARGS)

# Every tier: fast, sandbox, keyring, database, notebooks, browser, hub (markers in pyproject.toml, given by
# tests/conftest.py). Writes no tracked file: the browser tests keep their screenshots in a temporary folder.
# The hub tier builds, once, the single-user servers' venv under /var/tmp (tools/real_hub.py: runtime).
test: $(VENV)/.test-installed $(PROXY)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tier only (pure code, the store on a file keyring; no server, kernel or browser): under 30 s.
# Without nbval, whose import alone takes seconds; so pyproject's addopts, less the nbval options.
FAST_ADDOPTS := -ra --strict-markers -p no:cacheprovider
test-fast: $(VENV)/.test-installed
	$(BIN)/python -m pytest -p no:nbval -o addopts='$(FAST_ADDOPTS)' -m fast tests $(PYTEST_ARGS)

# ruff (lint and format) and mypy, with the versions of the lint extra; .ci/run runs it before the tests.
lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests, writing the panel's screenshots into docs/img/ (the only target that does).
screenshots: $(VENV)/.test-installed
	AI_ADMIN_SCREENSHOTS='$(CURDIR)/docs/img' $(BIN)/python -m pytest tests/test_browser.py $(PYTEST_ARGS)

# Time import, Save, failing fast, the panel, AI calls, the notebooks and the AI gateway against their
# baselines; writes benchmarks/RESULTS.md, benchmarks/results.json and the README's table of figures.
# BENCH="gateway ai" runs only those (the others' figures stay as they were). Contacts nothing but 127.0.0.1.
# BENCH=panel-browser: the panel in a real JupyterLab in Chromium (Debian's /usr/bin/chromium), cell run to row shown.
# BENCH=gateway-db: the gateway on SQLite and on PostgreSQL (a temporary cluster as the tests start it,
# Debian's postgresql package; its figures say "not measured" without it), usage and budgets on and off.
# The gateway's baseline, LiteLLM's proxy (pyproject's bench extra), gets a venv of its own: in .venv it
# would downgrade python-dateutil (botocore needs <3) under the tests.
BENCH ?=
BENCH_LITELLM := $(VENV)/bench-litellm
$(BENCH_LITELLM)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_LITELLM)
	$(BENCH_LITELLM)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_LITELLM)/bin/python -m pip install --quiet '.[bench]'
	touch $@

bench: $(VENV)/.test-installed $(BENCH_LITELLM)/.installed
	$(BIN)/python benchmarks/run.py $(if $(strip $(BENCH)),--only $(BENCH),)

# Re-run the walkthrough notebooks and save their outputs (what nbval then compares against).
notebooks: $(VENV)/.test-installed
	$(BIN)/python tools/run_notebooks.py notebooks/*.ipynb

# A real JupyterHub on 127.0.0.1 with the AI gateway as its service, a sandbox as the provider and two
# practice users (shared-password login); prints the login URL, the users and the passwords. Ctrl-C stops it.
hub: $(VENV)/.test-installed $(PROXY)
	$(BIN)/python tools/real_hub.py

clean:
	rm -rf $(VENV) .pytest_cache
