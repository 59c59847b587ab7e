# Storekeeper — the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q
CONSTRAINTS := requirements/constraints.txt
PYTEST_WORKERS ?= 2
# The slowest tests are listed at the end of every run (and CI log): where the suite's time goes.
PYTEST_ARGS ?= --durations=30

.PHONY: run test lint typecheck typecheck-js bench soak services cluster cluster-stop clean help proto

help:
	@echo "make run    - install into .venv, migrate, load demo data if empty, serve on :$${STOREKEEPER_PORT:-8000}"
	@echo "make test   - install test tools, make sure PostgreSQL is up, run ruff, import-linter, mypy and pytest"
	@echo "make typecheck-js - type-check the browser JavaScript with tsc --checkJs (needs npm)"
	@echo "make bench  - run the benchmarks in bench/ (results in bench/results/)"
	@echo "make soak   - ~10 minutes of mixed load with retention in minutes: growth levels off, no leak"
	@echo "make cluster - 2 API processes + worker behind nginx on PostgreSQL/RabbitMQ/Redis (loopback); make cluster-stop ends it"
	@echo "make proto  - regenerate storekeeper/grpc/gen/ from proto/ (gRPC code, checked in)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Two distributions (docs/development.md): the server depends on the client (./client, the same
# version, on no package index), so both are named in one pip run.
$(VENV)/.installed-run: pyproject.toml client/pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) -c $(CONSTRAINTS) -e ./client -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml client/pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) -c $(CONSTRAINTS) -e ./client -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/storekeeper migrate
	$(BIN)/storekeeper demo --if-empty
	$(BIN)/storekeeper serve --no-migrate

services:
	@bash scripts/ensure-services.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check storekeeper client tests bench scripts
	$(BIN)/ruff format --check storekeeper client tests bench scripts
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The browser JavaScript (plain ES modules with JSDoc types) checked by TypeScript; Node and
# npm are development tools here, never needed by `make run`.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

typecheck-js:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory node_modules/.installed \
	  && npx --no-install tsc -p tsconfig.json && echo "typecheck-js: ok"; \
	elif [ "$${CI:-}" = "true" ]; then echo "typecheck-js: npm is missing" >&2; exit 1; \
	else echo "typecheck-js: npm not found, JavaScript not type-checked" >&2; fi

test: $(VENV)/.installed-dev services lint typecheck typecheck-js
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev services
	$(BIN)/python -m bench $(BENCH_ARGS)

# Not part of `make test`: about 10 minutes (docs/scaling.md, "Soak"); SOAK_ARGS e.g.
# "--minutes 10 --backend postgresql".
soak: $(VENV)/.installed-dev services
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

proto: $(VENV)/.installed-dev
	PYTHON=$(BIN)/python bash scripts/gen-proto.sh

# A scale-out deployment on loopback (docs/scaling.md); Ctrl-C or `make cluster-stop` ends it.
cluster: $(VENV)/.installed-run services
	$(BIN)/python scripts/cluster.py $(CLUSTER_ARGS)

cluster-stop:
	@pid=$$(cat "$${TMPDIR:-/tmp}/storekeeper-cluster.pid" 2>/dev/null) && kill -TERM "$$pid" \
	  && echo "cluster: stopping ($$pid)" || echo "cluster: not running"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
