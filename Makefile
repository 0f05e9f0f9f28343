# Everything a developer or CI runs, in one place. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SPOTREC := $(BIN)/spotrec
CHECKED := cli config infra stores streams agents api schemas features snapshots sources tests bench

.PHONY: help demo install jars weights up down status migrate worker api \
        test test-unit test-integration browser lint fmt typecheck bench-servers bench-pipeline bench-faults bench-query clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

demo: install jars weights ## set up everything, run the pipeline on a demo catalogue, print a recommendation
	$(SPOTREC) demo

install: $(VENV)/.installed ## create .venv and install the project with pinned dependencies

$(VENV)/.installed: pyproject.toml constraints.txt config/musicnn-weights.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# compat mode puts the repository root on sys.path, so new top-level packages are found.
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]" --config-settings editable_mode=compat
	# The musicnn-msd weights: one wheel, pinned by version and sha256, without its dependencies.
	$(BIN)/pip install -q --no-deps --require-hashes -r config/musicnn-weights.txt
	touch $@

# The explorer page's browser test drives Debian's chromium (Playwright's own browser download
# needs a network this project does not assume). Installed as root when it is missing.
browser: ## install chromium for the browser test (apt, as root) if it is missing
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" -eq 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else echo "install chromium (as root: apt-get install -y chromium) for the browser test"; exit 1; fi; }

jars: install ## resolve the Kafka and Cassandra jars from Maven Central
	$(SPOTREC) jars

weights: install ## put the convnet weights in place (copied or downloaded, sha256-checked)
	$(SPOTREC) weights fetch

up: install jars ## start Kafka, Cassandra and S3 on 127.0.0.1 and apply the schema
	$(SPOTREC) up

down: install ## stop the worker, query node and servers started by up or demo
	$(SPOTREC) down

status: install ## show each server, its memory, and whether it answers
	$(SPOTREC) status

migrate: install ## create or update the Cassandra schema
	$(SPOTREC) migrate

worker: install ## run a Faust worker in the foreground
	$(SPOTREC) worker

api: install ## run a query node in the foreground
	$(SPOTREC) api

test: install jars weights browser lint typecheck ## lint, type-check and run every test (starts servers if needed)
	$(BIN)/pytest $(FLAGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

test-unit: install weights ## run the tests that need no server
	$(BIN)/pytest tests/unit $(FLAGS)

test-integration: install jars browser ## run the tests against the real servers
	$(BIN)/pytest tests/integration $(FLAGS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/ruff format --check $(CHECKED)

fmt: install ## format and auto-fix
	$(BIN)/ruff format $(CHECKED)
	$(BIN)/ruff check --fix $(CHECKED)

typecheck: install ## mypy --strict over code and tests
	$(BIN)/mypy

bench-servers: install jars ## measure cold and warm start time and memory of each server
	$(BIN)/python bench/servers.py

bench-pipeline: install jars weights ## measure pipeline throughput, indexing latency and reindex time
	$(BIN)/spotrec up
	$(BIN)/python -m bench.pipeline

bench-faults: install jars weights ## kill each server, the worker and a query node's store mid-ingest; print what it cost
	$(BIN)/python -m bench.faults

bench-query: install ## build, load and serve 100k and 1M-track snapshots: recall, throughput, tag filter, swaps
	command -v wrk >/dev/null || sudo apt-get install -y wrk || apt-get install -y wrk
	$(BIN)/python -m bench.query

clean: down ## stop the servers and remove their data (keeps .venv, jars and weights)
	rm -rf run
