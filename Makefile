# One entry point for set-up, tests, the demo and the benchmarks.
# Everything installs into the repo: .venv (Python), node_modules (CDK CLI,
# integ-runner and Node 22 for jsii), .venv-py3XX (extension tests per runtime).

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# node_modules/.bin first: its `node` is Node 22, which jsii supports without an end-of-life banner.
export PATH := $(CURDIR)/node_modules/.bin:$(BIN):$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# The Lambda Python runtimes the extension supports; each found under pyenv gets its own run.
EXT_PYTHONS ?= 3.10 3.11 3.12 3.13
PYTEST_ARGS ?=

.PHONY: qemu setup test lint typecheck pytest test-extension-pythons integ-snapshot demo bench bench-smoke clean

setup: $(VENV)/.installed node_modules/.installed qemu

# arm64 binaries of the native extension run under qemu-user in the tests.
qemu:
	@command -v qemu-aarch64-static >/dev/null || { \
	  echo "== installing qemu-user-static (Debian) for arm64 test runs"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## test: the whole suite (lint, types, pytest incl. `bench --smoke` in tests/bench, extension on every runtime, native go test, integ snapshot)
test: setup layers lint typecheck pytest test-extension-pythons test-native integ-snapshot

lint: setup
	$(BIN)/ruff check src extension harness tests sample_app integ demo bench hatch_build.py

typecheck: setup
	$(BIN)/mypy src
	$(BIN)/mypy extension/python/loki_telemetry_extension
	$(BIN)/mypy harness
	$(BIN)/mypy hatch_build.py
	$(BIN)/mypy sample_app demo integ

# Tests that mostly wait (Loki outages of 20-30 s, real Loki restarting): the whole suite runs
# them in a second pytest beside the rest, which saves ~4 of its ~10 minutes on 2 cores.
PYTEST_WAITING := tests/e2e/test_e2e_real_loki.py tests/e2e/test_e2e_loki_faults.py

pytest: setup
ifeq ($(strip $(PYTEST_ARGS)),)
	@set -e; log=$$(mktemp); \
	$(BIN)/python -m pytest -q $(PYTEST_WAITING) >$$log 2>&1 & waiting=$$!; \
	rc=0; $(BIN)/python -m pytest $(addprefix --ignore=,$(PYTEST_WAITING)) || rc=$$?; \
	wrc=0; wait $$waiting || wrc=$$?; \
	echo "== $(PYTEST_WAITING) (run beside the rest)"; cat $$log; rm -f $$log; \
	test $$rc -eq 0 && test $$wrc -eq 0
else
	$(BIN)/python -m pytest $(PYTEST_ARGS)
endif

# The extension is stdlib-only: run its unit tests on each Lambda Python runtime (the real-Loki
# test starts three servers; the main pytest run covers it once).
# They mostly wait on the extension subprocess, so the runtimes run side by side (~45 s, not ~2.5 min).
test-extension-pythons:
	@set -e; main=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	logs=$$(mktemp -d); pids=""; \
	for v in $(EXT_PYTHONS); do \
	  if [ "$$v" = "$$main" ]; then echo "== extension unit tests on Python $$v: in the main pytest run"; continue; fi; \
	  py=$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$$v.*/bin/python3 2>/dev/null | tail -n 1); \
	  if [ -z "$$py" ]; then echo "!! Python $$v not found under pyenv: extension not tested on it"; continue; fi; \
	  env=.venv-py$$(echo $$v | tr -d .); \
	  [ -x $$env/bin/pytest ] || { $$py -m venv $$env && $$env/bin/pip install -q "pytest>=8" "pytest-timeout>=2.3" "hypothesis>=6.100"; }; \
	  ( echo "== extension unit tests on $$($$py --version)"; \
	    $$env/bin/python -m pytest -q -p no:cacheprovider tests/extension \
	      --deselect tests/extension/test_real_loki_metadata.py ) >$$logs/$$v.log 2>&1 & pids="$$pids $$!:$$v"; \
	done; \
	failed=""; for p in $$pids; do wait $${p%%:*} || failed="$$failed $${p#*:}"; cat $$logs/$${p#*:}.log; done; \
	rm -rf $$logs; \
	if [ -n "$$failed" ]; then echo "!! extension unit tests failed on Python$$failed"; exit 1; fi

## layers: the three layer trees LokiTelemetryLayer stages (Python + .pyc for 3.10-3.13, native x86_64
## and arm64) into build/layers/; trees whose sources did not change are kept
.PHONY: layers
layers: setup
	$(BIN)/python hatch_build.py --out build/layers

## native: the Go build of the extension, both architectures, into build/native/<arch>/
.PHONY: native test-native
native: setup
	$(BIN)/python extension/native/build.py --out build/native

# go vet + Go unit tests of the native build (stdlib only, no module proxy).
test-native: setup native
	cd extension/native && CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod $(BIN)/go vet ./... && \
	  CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod $(BIN)/go test ./...

integ-snapshot: setup
	$(BIN)/python -m integ.check_snapshot

## demo: the local end-to-end run (sample app -> emulator -> Loki receiver)
demo: setup layers
	$(BIN)/python -m demo

## bench: every benchmark figure for both builds side by side: bench/results/latest.{json,md} and bench/RESULTS.md
bench: setup layers
	$(BIN)/python -m bench

bench-smoke: setup layers
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) .venv-py* node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
