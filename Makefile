# Two commands matter: `make demo` and `make test`. Both build .venv from nothing with only Python 3.11 and pip.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The Kerberos extra compiles gssapi, which needs MIT Kerberos headers (Debian: libkrb5-dev).
EXTRAS := dev,spark,databricks,production,deploycheck$(shell command -v krb5-config >/dev/null 2>&1 && echo ",kerberos")
# Jars for local Spark (Delta), fetched once from Maven Central by Maven at install time, never by Spark at run time.
JARS := jars/spark/.fetched

.PHONY: venv test lint demo bench clean

# Third-party PI Web API clients the tests drive, installed without their requests-kerberos/gssapi build (see the file).
NODEPS := osipi_dagster_tests/thirdparty/requirements-nodeps.txt

$(STAMP): pyproject.toml $(NODEPS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install --quiet --no-deps -r $(NODEPS)
	@touch $(STAMP)

$(JARS): jars/pom.xml
	@command -v mvn >/dev/null || { echo "make: Maven (mvn) is needed to fetch the Spark jars (Debian: apt-get install maven)" >&2; exit 1; }
	rm -rf jars/spark
	mvn -q -f jars/pom.xml dependency:copy-dependencies
	@touch $(JARS)

venv: $(STAMP) $(JARS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: venv
	$(BIN)/ruff check .
	$(BIN)/pytest

demo: venv
	$(BIN)/python scripts/demo.py

bench: venv
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS),bench]"
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) jars/spark .dagster_home .demo data .pytest_cache .ruff_cache
