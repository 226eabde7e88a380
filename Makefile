# One entry point for humans and CI: `make run`, `make test`, `make check` (what CI runs).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= sample
PYTEST_ARGS ?=

.PHONY: install run test lint check bench clean

$(BIN)/logroll: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# moto[server] and s3fs resolve together: they share botocore pins.
	# spark: the Spark engine's tests (tests/test_spark*.py) need pyspark and a Java 17+ runtime.
	$(BIN)/pip install --quiet -e '.[test,postgres,spark]'
	@touch $(BIN)/logroll

install: $(BIN)/logroll

run: install
	rm -rf $(SAMPLE)
	$(BIN)/logroll demo impressions $(SAMPLE)/raw --days 3 --rows 30000
	$(BIN)/logroll run impressions --source $(SAMPLE)/raw --dest $(SAMPLE)/results
	@echo
	@echo "Results:    $(SAMPLE)/results/YYYY/MM/DD/daily_agg_YYYYMMDD_Guy_Fawkes.csv"
	@find $(SAMPLE)/results -name 'daily_agg_*.csv' | sort
	@echo "Quarantine: $(SAMPLE)/results/_logroll/quarantine/"
	@echo "Status:     $(BIN)/logroll status impressions --dest $(SAMPLE)/results"

test: install
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

check: lint test

bench: install
	$(BIN)/python bench/impressions.py

clean:
	rm -rf $(VENV) $(SAMPLE) .pytest_cache .ruff_cache
