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
	$(VENDOR)/swagger-ui-bundle.js $(VENDOR)/swagger-ui.css
LINT_PATHS := $(wildcard app tests migrations bench)
PYTEST_ARGS ?=

.PHONY: help setup run test lint format clean

help: ## Show the available targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: $(VENV)/.installed $(VENDOR_ASSETS) ## Create .venv and copy the front-end assets

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

$(VENDOR)/htmx.min.js: node_modules/.installed
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $@

$(VENDOR)/ws.min.js: node_modules/.installed
	mkdir -p $(VENDOR)
	cp node_modules/htmx-ext-ws/dist/ws.min.js $@

# Swagger UI for the API page at /docs.
$(VENDOR)/swagger-ui-bundle.js $(VENDOR)/swagger-ui.css: node_modules/.installed
	mkdir -p $(VENDOR)
	cp node_modules/swagger-ui-dist/$(notdir $@) $@

var:
	mkdir -p var

run: setup | var ## Upgrade the database (var/stepwise.db), seed demo logins, serve on 127.0.0.1:8000
	$(BIN)/stepwise db upgrade
	$(BIN)/stepwise user seed-demo
	$(BIN)/stepwise serve

test: setup ## Run the test suite (extra pytest arguments: PYTEST_ARGS="-k health")
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
