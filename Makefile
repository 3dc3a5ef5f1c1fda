# Frugal — the two commands: `make serve` and `make test` (both install first, idempotently).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0

.PHONY: install serve test test-fast bench lint clean-venv browser

install: $(STAMP)

# torch first: installing it before anything that depends on it keeps pip on the local CPU build
# instead of fetching a multi-GB CUDA build. llama-cpp-python compiles from source once; pip caches it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

serve: install
	$(BIN)/frugal serve --host 127.0.0.1 --port 8000

# The dashboard's browser test drives Debian's chromium through Playwright (never `playwright install`).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test: install browser
	$(BIN)/python -m router.devtools.check_postgres
	$(BIN)/python -m pytest -q -rs

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check router classifiers backends bench tests
	$(BIN)/mypy

clean-venv:
	rm -rf $(VENV)
