# Every target makes its own virtual environment: a fresh clone needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint typecheck demo demo-sync bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## install: the virtual environment with the package and every extra
install: $(STAMP)

## test: lint, type-check (strict) and run the whole test suite
test: $(STAMP)
	$(BIN)/ruff check connector tests bench
	$(BIN)/ruff format --check connector tests bench
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check connector tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

## fuzz: the fuzz suite with many randomized, shrunk examples (the default test run has a small, fixed set)
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz

## demo: the README's main job, a multi-step automation against the bundled Zoho sandbox
demo: $(STAMP)
	$(BIN)/python -m connector.sandbox.demo

## demo-sync: the Partner Store → CRM sync on the sandbox: setup, a first run, nothing new, new records, the lag
demo-sync: $(STAMP)
	$(BIN)/python -m connector.sandbox.demo_sync

## bench: the benchmarks of bench/, printed as tables
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
