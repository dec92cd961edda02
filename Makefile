# Two commands on a fresh machine:
#   make run    set everything up (venv + install) and run the main experiment (imblab train)
#   make test   set everything up and run the whole test suite (lint + unit + slow end-to-end)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The real SECOM files: $IMBLAB_SECOM_DIR, else ../shared/data/secom when present, else imblab
# downloads the official UCI zip and verifies its sha256.
SHARED_SECOM := $(abspath ../shared/data/secom)
export IMBLAB_SECOM_DIR ?= $(if $(wildcard $(SHARED_SECOM)/secom.data),$(SHARED_SECOM),)
SHARED_NLSWORK := $(abspath ../shared/data/nlswork)
export IMBLAB_NLSWORK_DIR ?= $(if $(wildcard $(SHARED_NLSWORK)/nlswork.csv),$(SHARED_NLSWORK),)

# make server: the team stack (PostgreSQL + artifact store + MLflow tracking server) with its data, logs
# and state under SERVER_DIR; make server-stop stops every process of it. See README, "Team server".
SERVER_DIR  ?= $(abspath team-server)
SERVER_HOST ?= 127.0.0.1
SERVER_PORT ?= 5000
SERVER_ARGS ?=

.PHONY: setup run test test-fast lint ui clean server server-stop server-status

$(BIN)/imblab: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,panel,team]"
	touch $@

setup: $(BIN)/imblab

run: setup
	$(BIN)/imblab train $(ARGS)
	$(BIN)/imblab runs

lint: setup
	$(BIN)/ruff check src tests benchmarks

test: setup lint
	$(BIN)/python -m pytest --timeout=1200 -p no:cacheprovider $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath mlruns/mlflow.db) --host 127.0.0.1

server: setup
	$(BIN)/imblab team-server start --dir $(SERVER_DIR) --host $(SERVER_HOST) --port $(SERVER_PORT) $(SERVER_ARGS)

server-stop: setup
	$(BIN)/imblab team-server stop --dir $(SERVER_DIR)

server-status: setup
	$(BIN)/imblab team-server status --dir $(SERVER_DIR)

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
