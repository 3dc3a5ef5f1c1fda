# Frugal — the two commands: `make serve` and `make test` (both install first, idempotently).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0

# llama.cpp compiles for the host CPU (-march=native). On x86-64 it is built without AMX: its AMX kernels
# crash (SIGSEGV in ggml_backend_amx_mul_mat) on this project's Sapphire Rapids CI machines, and a 135M
# model gains nothing from them. pip's wheel cache ignores compiler flags, so the wheel goes to a
# wheelhouse of our own, keyed by version, flags and the CPU's own flags (a -march=native build dies with
# SIGILL on a CPU that lacks what it was built for, e.g. when ~/.cache moves to another machine).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_FLAGS   := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16,)
CPU_FLAGS_KEY     := $(shell grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | md5sum | cut -c1-8)
LLAMA_CPP_WHEELS  := $(HOME)/.cache/frugal/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(shell echo "$(LLAMA_CPP_FLAGS)" | md5sum | cut -c1-8)-$(CPU_FLAGS_KEY)

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

# `make serve HOST=0.0.0.0 PORT=9000` passes flags; without them `frugal serve` reads FRUGAL_HOST / FRUGAL_PORT,
# then config/frugal.yaml (127.0.0.1:8000). Only variables given on make's command line count, so a PORT
# exported by the shell for something else never moves the server.
SERVE_FLAGS := $(if $(filter command line,$(origin HOST)),--host $(HOST)) \
               $(if $(filter command line,$(origin PORT)),--port $(PORT))

serve: install
	$(BIN)/frugal serve $(strip $(SERVE_FLAGS))

# The dashboard's browser test drives Debian's chromium through Playwright (never `playwright install`).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test: install browser
	$(BIN)/python -m router.devtools.check_postgres
	$(BIN)/python -m router.devtools.cpu_report
	$(BIN)/python -m pytest -q -rs

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check router classifiers backends bench tests
	$(BIN)/mypy

clean-venv:
	rm -rf $(VENV)
