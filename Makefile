# Rounds: two commands do everything on a fresh machine (Python 3.11+).
#   make run   - virtualenv, install, migrate, seed a demo hospital if empty, serve
#   make test  - install test tools and run the whole suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
DAPHNE_ARGS ?=

.PHONY: run test check lint lint-js types migrate seed clean docs-examples

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput -v0

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo "Rounds on http://$(HOST):$(PORT)  (health: http://$(HOST):$(PORT)/healthz)"
	ROUNDS_ALLOWED_ORIGINS="$${ROUNDS_ALLOWED_ORIGINS:-http://$(HOST):$(PORT),http://localhost:$(PORT)}" \
	$(BIN)/python -m rounds.serve -b $(HOST) -p $(PORT) --websocket-max-message-size 262144 --websocket-max-frame-size 262144 $(DAPHNE_ARGS) rounds.asgi:application

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The edit-test loop (under a minute on two cores): the checks, then the tests that need
# no live server (daphne, the moto S3 server), browser or benchmark harness and are not
# marked slow, on every core, stopping at the first failure. `make test` is the whole suite.
check: lint
	$(BIN)/python -m pytest -q -x -n auto -m 'not live and not s3 and not slow' -p no:cacheprovider \
	  --ignore=tests/live --ignore=tests/browser --ignore=tests/bench $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(MAKE) --no-print-directory types
	@$(MAKE) --no-print-directory lint-js

# mypy, strict, over the server and the Python client (pyproject.toml [tool.mypy];
# docs/architecture.md, "Types").
types: $(VENV)/.installed-dev
	$(BIN)/mypy

# The browser client's checks (docs/browser.md, "Checking the code"): ESLint, and tsc
# type-checking frontend/js through its JSDoc. Node is needed here only: serving
# frontend/ has no build step. `npm ci` runs again when the lock file changes.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint-js: node_modules/.installed
	@missing=$$(for f in $$(find frontend/js -name '*.js'); do head -n1 "$$f" | grep -qx '// @ts-check' || echo "$$f"; done); \
	  if [ -n "$$missing" ]; then echo "first line is not // @ts-check:"; echo "$$missing"; exit 1; fi
	node_modules/.bin/eslint frontend/js eslint.config.js
	node_modules/.bin/tsc -p tsconfig.json
	node_modules/.bin/tsc -p tsconfig.worker.json

# docs/protocol.md's JSON examples, captured again from a server of their own
# (docs/capture_examples.py: daphne on a temporary SQLite database, the demo seeded).
docs-examples: $(VENV)/.installed-dev
	$(BIN)/python docs/capture_examples.py

clean:
	rm -rf $(VENV) var .pytest_cache
