# p1-telemetry — every command a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
BIN       := $(VENV)/bin
UV        := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PYTHON    ?= python3
CONTRACTS := libs/contracts/src/p1_contracts
PACKAGES  := libs/config/src libs/contracts/src libs/servicekit/src libs/schema/src libs/tariffs/src libs/peakguard/src services/ingest/src services/query/src services/edge/src services/notify/src
# Seconds of coverage-guided fuzzing per target in `make fuzz` (seven targets: `fuzz.py --list`).
FUZZ_SECONDS ?= 30
# The suites that touch storage: they run once more against TimescaleDB (scripts/timescaledb.sh).
# Not services/notify: its own table is plain, and its reads of readings are p1_peakguard's (in the lane,
# as is notify end to end in tests/e2e); CI's time is better spent elsewhere.
STORAGE_SUITES := libs/schema libs/peakguard services/ingest services/query tests/e2e

.PHONY: help setup uv contracts lint typecheck security audit test test-timescale check bench fuzz demo demo-reset images-test vendor-web screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

uv:
	@command -v uv >/dev/null 2>&1 || test -x $(HOME)/.local/bin/uv || $(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet --break-system-packages --user uv

setup: uv ## install everything into .venv (idempotent)
	$(UV) sync --all-packages --frozen --python $$( $(PYTHON) -c 'import sys; print(sys.executable)')

contracts: ## regenerate libs/contracts from openapi.yaml (after the Tz enum from the pinned tzdata)
	$(BIN)/python scripts/tz_enum.py
	$(BIN)/datamodel-codegen --output $(CONTRACTS)/models.py
	cp openapi.yaml $(CONTRACTS)/openapi.yaml

lint: ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: ## mypy --strict on every package
	$(BIN)/mypy $(PACKAGES) scripts

security: ## bandit on our code (medium severity and up) and pip-audit on uv.lock
	$(BIN)/bandit -q -c pyproject.toml --severity-level medium -r $(PACKAGES) scripts
	scripts/audit.sh

test: setup ## every test against PostgreSQL and Redis, then the storage suites on TimescaleDB if installed
	$(BIN)/pytest
	scripts/timescaledb.sh lane $(BIN)/pytest $(STORAGE_SUITES)

test-timescale: setup ## the storage suites on a throwaway TimescaleDB cluster (sudo scripts/timescaledb.sh install)
	scripts/timescaledb.sh run $(BIN)/pytest $(STORAGE_SUITES)

check: setup lint typecheck security test ## lint, types, security checks and tests: what CI runs

bench: setup ## every benchmark under bench/, each printing ratios to its baseline
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

fuzz: setup ## coverage-guided fuzzing (atheris) of ingest's body parser and every query parameter parser, FUZZ_SECONDS (30) per target
	@mkdir -p .fuzz/artifacts
	@for t in $$($(BIN)/python tests/fuzz/fuzz.py --list); do \
		echo "== $$t ($(FUZZ_SECONDS) s)"; \
		$(BIN)/python tests/fuzz/fuzz.py $$t .fuzz/corpus/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=16384 \
			-timeout=10 -artifact_prefix=.fuzz/artifacts/ -print_final_stats=1 2>&1 \
			| grep -Ev '^INFO: Instrumenting|^#[0-9]+ +(NEW|REDUCE)' || exit 1; \
	done

demo: setup ## a year of a household backfilled, then simulator → edge → ingest → query live; Ctrl-C stops it all
	$(BIN)/python scripts/demo.py

demo-reset: setup ## forget what `make demo` kept (its database p1_demo, Redis keys, spool, meter state, logs)
	$(BIN)/python scripts/demo.py --reset

vendor-web: ## re-fetch the dashboard's uPlot and axe-core from npm (pinned) and check them against vendor/web.sha256
	bash scripts/vendor_web.sh

screenshots: setup ## phone and desktop PNGs of every dashboard view into docs/img/ (a year of the simulated household, chromium)
	$(BIN)/python tests/web/screenshots.py

images-test: setup ## build the three images with podman and run them (needs root; installs podman)
	P1_INSTALL_PODMAN=1 bash deploy/ci-install.sh
	bash deploy/images-test.sh
