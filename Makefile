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

.PHONY: run test check lint lint-js types migrate seed clean docs-examples screenshots messages

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
	ROUNDS_SECOND_FACTOR="$${ROUNDS_SECOND_FACTOR:-off}" \
	$(BIN)/python -m rounds.serve -b $(HOST) -p $(PORT) --websocket-max-message-size 262144 --websocket-max-frame-size 262144 $(DAPHNE_ARGS) rounds.asgi:application

# The suite in two runs: everything but the browser on every core, a test file per
# worker (pytest-xdist), then the browser tests on their own (Playwright's sync API
# keeps an event loop running in its process, which no async test may follow).
# BROWSER_TESTS= leaves the second run out; TEST_JOBS=0 runs the first in one process.
TEST_JOBS ?= auto
BROWSER_TESTS ?= tests/browser
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile --ignore=tests/browser $(PYTEST_ARGS)
	$(if $(BROWSER_TESTS),$(BIN)/python -m pytest $(BROWSER_TESTS) $(PYTEST_ARGS))

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
	@missing=$$(for f in $$(find frontend/js -name '*.js') frontend/sw.js; do head -n1 "$$f" | grep -qx '// @ts-check' || echo "$$f"; done); \
	  if [ -n "$$missing" ]; then echo "first line is not // @ts-check:"; echo "$$missing"; exit 1; fi
	node_modules/.bin/eslint frontend/js frontend/sw.js eslint.config.js
	node_modules/.bin/tsc -p tsconfig.json
	node_modules/.bin/tsc -p tsconfig.worker.json

# docs/protocol.md's JSON examples, captured again from a server of their own
# (docs/capture_examples.py: daphne on a temporary SQLite database, the demo seeded).
docs-examples: $(VENV)/.installed-dev
	$(BIN)/python docs/capture_examples.py

# The screenshots kept in the repository (tests/browser/screenshots/<language>/<size>/):
# every screen of the accessibility tour, at 360x740 and 1280x800, in English and French,
# taken again by a run of that tour (docs/browser.md, "Screenshots"). Look at them before
# committing.
screenshots: $(VENV)/.installed-dev
	rm -rf var/screenshots/en var/screenshots/fr
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/browser/test_accessibility.py
	rm -rf tests/browser/screenshots
	mkdir -p tests/browser/screenshots
	cp -r var/screenshots/en var/screenshots/fr tests/browser/screenshots/

# The server's French messages (docs/i18n.md, "The server"): gather every marked message
# into locale/fr/LC_MESSAGES/django.po, translate what is new there, then run this again to
# compile django.mo. The .mo is kept in the repository beside its .po, so `make run` on a
# fresh machine without gettext (xgettext, msgfmt) serves French all the same;
# tests/test_server_i18n.py fails when the .mo lags behind the .po.
MESSAGES_IGNORE := --ignore=.venv --ignore=node_modules --ignore=tests --ignore=frontend --ignore=var
messages: $(VENV)/.installed
	$(BIN)/python manage.py makemessages -l fr --no-wrap $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages -l fr $(MESSAGES_IGNORE)
	mkdir -p var
	xgettext --language=Python --from-code=UTF-8 --keyword=pgettext:1c,2 --keyword=npgettext:1c,2,3 \
	  --add-comments=Translators --add-location=file --package-name=$(CLIENT_DOMAIN) \
	  --output=var/$(CLIENT_DOMAIN).pot $$(find client -name '*.py' | sort)
	msgmerge --quiet --update --backup=none --no-fuzzy-matching --add-location=file \
	  $(CLIENT_PO) var/$(CLIENT_DOMAIN).pot
	msgattrib --no-obsolete --output-file=$(CLIENT_PO) $(CLIENT_PO)
	msgfmt --check --output-file=$(CLIENT_PO:.po=.mo) $(CLIENT_PO)

# The `rounds` command's French (docs/client.md, "Languages"), its own gettext domain: the
# lines above gather the client's strings into client/locale/fr/LC_MESSAGES/rounds_client.po
# (a new one untranslated, never fuzzy; one no longer used dropped), then compile the .mo,
# kept in the repository too; tests/client/test_client_catalogue.py fails when the .po misses
# a string or the .mo lags behind. Django's makemessages must leave client/ alone: it would
# write the client's strings into a django.po of client/locale.
CLIENT_DOMAIN := rounds_client
CLIENT_PO := client/locale/fr/LC_MESSAGES/$(CLIENT_DOMAIN).po
MESSAGES_IGNORE += --ignore=client

clean:
	rm -rf $(VENV) var .pytest_cache
