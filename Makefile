# One entry point for humans and CI: `make run`, `make test`, `make check` (what CI runs).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= sample
PYTEST_ARGS ?=
# Two test processes: most tests wait on subprocesses, servers and JVMs, so the suite runs in
# about two thirds of the time on 2 cores (each process starts its own moto, PostgreSQL, Spark).
PYTEST_WORKERS ?= 2

.PHONY: install install-dev machine run test lint check bench clean

# The core only: local files, DuckDB, SQLite state (what `make run` needs).
$(VENV)/.core: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

# Everything the tests use: the s3, postgres, spark and report extras plus pytest, hypothesis, moto
# (dev extra in pyproject.toml).
$(VENV)/.dev: $(VENV)/.core
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.core
install-dev: $(VENV)/.dev

# Chromium, PostgreSQL's server binaries and Java 17, installed when missing.
machine:
	@bash scripts/test-machine

run: install
	rm -rf $(SAMPLE)
	$(BIN)/logroll demo impressions $(SAMPLE)/raw --days 3 --rows 30000
	$(BIN)/logroll run impressions --source $(SAMPLE)/raw --dest $(SAMPLE)/results
	@echo
	@echo "Results:    $(SAMPLE)/results/YYYY/MM/DD/daily_agg_YYYYMMDD_Guy_Fawkes.csv"
	@find $(SAMPLE)/results -name 'daily_agg_*.csv' | sort
	@echo "Quarantine: $(SAMPLE)/results/_logroll/quarantine/"
	@echo "State:      $(SAMPLE)/results/_logroll/catalog.sqlite"
	@echo "Status:     $(BIN)/logroll status impressions --dest $(SAMPLE)/results"

test: machine install-dev
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

check: lint test

bench: install-dev
	$(BIN)/python bench/impressions.py

clean:
	rm -rf $(VENV) $(SAMPLE) .pytest_cache .ruff_cache
