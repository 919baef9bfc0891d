# Two commands matter: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export DBT_PROFILES_DIR := $(CURDIR)/.dbt-profiles
export RUNTIME__DLTHUB_TELEMETRY := false
UV = $(shell command -v uv 2>/dev/null || echo python3 -m uv)
# DuckDB extensions (httpfs, aws) come from PyPI packages, never downloaded: dbt reads them here.
export DUCKDB_EXTENSION_DIRECTORY = $(CURDIR)/$(shell ls -d $(VENV)/lib/python3*/site-packages/duckdb_ext 2>/dev/null | head -1)/extensions

.PHONY: help install browser demo test docs lint compile-redshift test-redshift bench clean

help:
	@echo "make demo   run the whole flow locally: MongoDB-wire server, ingestion, dbt build"
	@echo "make test   install and run the test suite"
	@echo "make docs              dbt docs generate and serve (http://127.0.0.1:8080)"
	@echo "make lint              sqlfluff over the dbt models"
	@echo "make compile-redshift  every statement for the redshift target, offline, checked"
	@echo "make test-redshift     the flow against a real Atlas, S3 and Redshift (needs the variables in the README)"
	@echo "make bench             extraction benchmark (BENCH_DOCS=100000 by default)"
	@echo "make clean             remove local data and build output (stops the local server)"

# uv from PyPI if it is missing, then the locked environment.
$(BIN)/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
	  || python3 -m pip install --quiet uv 2>/dev/null \
	  || python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen --all-extras
	@touch $@

$(DBT_PROFILES_DIR)/profiles.yml: profiles.yml.example
	@mkdir -p $(DBT_PROFILES_DIR)
	cp $< $@

install: $(BIN)/.installed $(DBT_PROFILES_DIR)/profiles.yml

# Debian's Chromium, for the docs-site test (the only package not from PyPI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the docs-site test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: install
	$(BIN)/python -m ingestion.local.demo

test: install browser
	$(BIN)/pytest

# dbt docs for the local warehouse, served on http://127.0.0.1:8080 (after make demo).
docs: install
	$(BIN)/dbt docs generate
	$(BIN)/dbt docs serve --host 127.0.0.1 --port 8080 --no-browser

lint: install
	$(BIN)/sqlfluff lint models

# dbt build and run-operations against an offline Redshift driver; SQL lands in target/redshift_sql/.
compile-redshift: install
	$(BIN)/python -m redshift_contract.compile
	$(BIN)/python -m redshift_contract.check target/redshift_sql

# Exits 0 without running anything when the live variables are missing (it says which).
test-redshift: install
	@$(BIN)/python -m tests.live.preflight; rc=$$?; \
	  if [ $$rc -eq 10 ]; then exit 0; elif [ $$rc -ne 0 ]; then exit $$rc; fi; \
	  $(BIN)/pytest tests/live -o addopts=""

bench: install
	$(BIN)/python benchmarks/bench.py

clean:
	-$(BIN)/atlas-ingest local stop
	rm -rf data target logs
