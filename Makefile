# newsdesk — `make run` and `make test` are all a new user needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLES := samples

.PHONY: install run test lint format pytest test-fast test-milvus bench clean

install: $(STAMP)

# torch first, pinned: pip takes the local CPU wheel instead of a multi-GB CUDA build
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q torch==2.13.0
	@$(BIN)/python -m pip install -q -e ".[dev,milvus]"
	@touch $(STAMP)

# index the bundled samples (a no-op when unchanged), then the bot or a terminal chat
run: install
	@$(BIN)/newsdesk index -q $(SAMPLES) >&2
	@if [ -n "$$DISCORD_TOKEN" ]; then exec $(BIN)/newsdesk run; else exec $(BIN)/newsdesk chat; fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

pytest: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test: lint pytest

# everything but the slow tests, for a quick loop while developing
test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" -x -q

# every test whose index depends on the [store] backend, again on Milvus Lite (tests of FAISS
# itself are marked faiss_only). CI runs it after `make test`.
test-milvus: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest --backend milvus -m "not slow" -q

# `newsdesk bench` (docs/performance.md; BENCH_ARGS="--sizes 2000" for a short run), then the
# bot's start-up on the loopback fake Discord, which needs the tests and so is not part of it
bench: install
	HF_HUB_OFFLINE=1 $(BIN)/newsdesk bench $(BENCH_ARGS)
	HF_HUB_OFFLINE=1 $(BIN)/python tests/perf/bot_startup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
