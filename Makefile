# Stepwise developer tasks. A newcomer needs two: `make run` and `make test`.
# Setup steps are stamp files, so repeated runs skip what is already installed.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VENDOR := app/static/vendor
VENDOR_ASSETS := $(VENDOR)/htmx.min.js $(VENDOR)/ws.min.js \
	$(VENDOR)/swagger-ui-bundle.js $(VENDOR)/swagger-ui.css $(VENDOR)/jsQR.js
LINT_PATHS := $(wildcard app tests migrations bench)
PYTEST_ARGS ?=

.PHONY: help setup dev-setup run demo test typecheck lint format clean lock

help: ## Show the available targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# Two levels: what the app needs to run (make run, make demo) and, on top, the test and lint
# tools (make test). A runtime stamp is satisfied by a newer dev install, so running the app
# after the tests does not strip the test tools.
setup: $(VENV)/.runtime $(VENDOR_ASSETS) ## Create .venv with the runtime dependencies only

dev-setup: $(VENV)/.installed node_modules/.installed $(VENDOR_ASSETS) ## setup plus the test tools

# Every package at the version requirements.lock names: two builds of one commit are the same.
$(VENV)/.runtime: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if [[ ! $(VENV)/.installed -nt requirements.lock ]]; then \
		$(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -c requirements.lock -e .; fi
	touch $@

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $@

lock: ## Re-resolve pyproject.toml's dependencies (with the test tools) into requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q --upgrade pip && .lock-venv/bin/pip install -q -e '.[dev]'
	{ sed -n '1,3p' requirements.lock; .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

node_modules/.runtime: package.json package-lock.json
	if [[ ! node_modules/.installed -nt package-lock.json ]]; then \
		npm ci --omit=dev --ignore-scripts --no-audit --no-fund; fi
	touch $@

# With the dev packages: axe-core, which the browser tests inject into every page type.
node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch node_modules/.runtime $@

$(VENDOR)/htmx.min.js: node_modules/.runtime
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $@

$(VENDOR)/ws.min.js: node_modules/.runtime
	mkdir -p $(VENDOR)
	cp node_modules/htmx-ext-ws/dist/ws.min.js $@

# Swagger UI for the API page at /docs.
$(VENDOR)/swagger-ui-bundle.js $(VENDOR)/swagger-ui.css: node_modules/.runtime
	mkdir -p $(VENDOR)
	cp node_modules/swagger-ui-dist/$(notdir $@) $@

# The camera's QR reader where the browser has no BarcodeDetector (Chromium on Linux).
$(VENDOR)/jsQR.js: node_modules/.runtime
	mkdir -p $(VENDOR)
	cp node_modules/jsqr/dist/jsQR.js $@

var:
	mkdir -p var

run: setup | var ## Upgrade the database (var/stepwise.db), seed demo logins, serve on 127.0.0.1:8000
	$(BIN)/stepwise db upgrade
	$(BIN)/stepwise user seed-demo
	$(BIN)/stepwise serve

# A training ward: its own database (var/demo.db, made afresh each time), a clock 30 times
# faster than the wall's, four patients and sessions in different states.
DEMO_DB ?= var/demo.db
DEMO_ENV := STEPWISE_DATABASE_URL=sqlite+aiosqlite:///$(DEMO_DB) \
	STEPWISE_CLOCK_MODE=accelerated STEPWISE_CLOCK_SPEED=30

demo: setup | var ## A training ward on a 30x clock with live sessions (var/demo.db, reset each time)
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(DEMO_ENV) $(BIN)/stepwise db upgrade
	$(DEMO_ENV) $(BIN)/stepwise user seed-demo
	$(DEMO_ENV) $(BIN)/stepwise demo seed
	$(DEMO_ENV) $(BIN)/stepwise serve

test: dev-setup ## Type-check app/, then run the test suite (extra pytest arguments: PYTEST_ARGS="-k health")
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

typecheck: $(VENV)/.installed ## mypy over app/ (settings in pyproject.toml)
	$(BIN)/mypy

lint: $(VENV)/.installed ## ruff check + ruff format --check
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

format: $(VENV)/.installed ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

clean: ## Remove .venv, node_modules, vendored assets and caches (keeps var/)
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache .ruff_cache .hypothesis test-artifacts
	rm -rf *.egg-info
	find app tests migrations -type d -name __pycache__ -prune -exec rm -rf {} +
