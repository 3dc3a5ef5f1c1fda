# Frugal — the two commands: `make serve` and `make test` (both install first, idempotently).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0

# llama.cpp compiles for the host CPU (-march=native). On x86-64 it is built without AMX: its AMX kernels
# crash (SIGSEGV in ggml_backend_amx_mul_mat) on this project's Sapphire Rapids CI machines, and a 135M
# model gains nothing from them. pip's wheel cache ignores compiler flags, so the wheel goes to a
# wheelhouse of our own, keyed by version and flags: built once per machine, reused afterwards.
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_FLAGS   := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16,)
LLAMA_CPP_WHEELS  := $(HOME)/.cache/frugal/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(shell echo "$(LLAMA_CPP_FLAGS)" | md5sum | cut -c1-8)

.PHONY: install serve test test-fast bench lint clean-venv browser

install: $(STAMP)

# torch first: installing it before anything that depends on it keeps pip on the local CPU build
# instead of fetching a multi-GB CUDA build. llama-cpp-python compiles from source once (see above).
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/pip install --quiet $(TORCH)
	ls $(LLAMA_CPP_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || \
	  CFLAGS="$(LLAMA_CPP_FLAGS)" CXXFLAGS="$(LLAMA_CPP_FLAGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
	  $(BIN)/pip wheel --quiet --no-cache-dir --no-deps -w $(LLAMA_CPP_WHEELS) "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	$(BIN)/pip install --quiet --no-deps --force-reinstall $(LLAMA_CPP_WHEELS)/llama_cpp_python-*.whl
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
