# Storekeeper — the two commands a fresh machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q
CONSTRAINTS := requirements/constraints.txt
PYTEST_WORKERS ?= 2

.PHONY: run test lint typecheck bench services clean help

help:
	@echo "make run    - install into .venv, migrate, load demo data if empty, serve on :$${STOREKEEPER_PORT:-8000}"
	@echo "make test   - install test tools, make sure PostgreSQL is up, run ruff, mypy and pytest"
	@echo "make bench  - run the benchmarks in bench/ (results in bench/results/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) -c $(CONSTRAINTS) -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP) -c $(CONSTRAINTS) -e '.[dev]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/storekeeper migrate
	$(BIN)/storekeeper demo --if-empty
	$(BIN)/storekeeper serve --no-migrate

services:
	@bash scripts/ensure-services.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check storekeeper tests bench
	$(BIN)/ruff format --check storekeeper tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

test: $(VENV)/.installed-dev services lint typecheck
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev services
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
