# Everything sets itself up: `make demo` / `make test` on a fresh machine create the virtualenvs
# and install the project (again only when pyproject.toml changes). No activation needed.
#
# Two environments, one per IB client library: ib_insync and ib_async both install a module
# named `eventkit` (ib_async's is `aeventkit`), so they must never share an environment.
#   .venv        .[dev,ib-insync]  lint, typecheck, the full test suite, demo, bench, sim
#   .venv-async  .[dev,ib-async]   the test suite again, on ib_async (ASYNC_TESTS)
PYTHON      ?= python3
VENV        ?= .venv
VENV_ASYNC  ?= .venv-async
PY          := $(VENV)/bin/python
PY_ASYNC    := $(VENV_ASYNC)/bin/python
STAMP       := $(VENV)/.installed
STAMP_ASYNC := $(VENV_ASYNC)/.installed
SIM_PORT    ?= 4002

# What runs on ib_async: the whole suite (integration, resilience, drop-in, simulator, seeds'
# and unit tests), as on ib_insync; a path list narrows it (make test-async ASYNC_TESTS=tests/unit).
ASYNC_TESTS ?= tests

.PHONY: help venv venv-async demo demo-placeholder test test-insync test-async lint typecheck typecheck-async \
        unit bench soak sim service compose-tool clean

help:
	@echo "make demo       - the app against the simulated IB gateway (.venv, ib_insync)"
	@echo "make test       - ruff + mypy + pytest on ib_insync (.venv) + pytest on ib_async (.venv-async)"
	@echo "make test-insync | test-async - one library only"
	@echo "make service    - the HTTP service on the simulated gateway (127.0.0.1:8000)"
	@echo "make lint | bench | soak | sim | demo-placeholder | clean"

define make_venv
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(1)
endef

$(PY):
	$(call make_venv,$(VENV))

$(PY_ASYNC):
	$(call make_venv,$(VENV_ASYNC))

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,service,ib-insync,bench]"
	@touch $(STAMP)

$(STAMP_ASYNC): pyproject.toml | $(PY_ASYNC)
	$(PY_ASYNC) -m pip install --quiet --upgrade pip
	$(PY_ASYNC) -m pip install --quiet -e ".[dev,service,ib-async]"
	@touch $(STAMP_ASYNC)

venv: $(STAMP)

venv-async: $(STAMP_ASYNC)

demo: $(STAMP)
	$(PY) -m src.app --demo --broker sim

demo-placeholder: $(STAMP)
	$(PY) -m src.app --demo --broker placeholder

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy

typecheck-async: $(STAMP_ASYNC)
	$(PY_ASYNC) -m mypy

unit: $(STAMP)
	$(PY) -m pytest -q -m "not soak"

test-insync: $(STAMP)
	IBKR_CLIENT_LIBRARY=ib_insync $(PY) -m pytest -q --cov=src --cov-report=term:skip-covered -m "not soak"

test-async: $(STAMP_ASYNC)
	IBKR_CLIENT_LIBRARY=ib_async $(PY_ASYNC) -m pytest -q -m "not soak" -p no:cacheprovider $(ASYNC_TESTS)

test: lint typecheck compose-tool test-insync test-async

bench: $(STAMP)
	$(PY) -m benchmarks

soak: $(STAMP)
	$(PY) -m pytest -q -m soak

sim: $(STAMP)
	$(VENV)/bin/ibkr-sim --port 4002

# The HTTP service on the simulated gateway (127.0.0.1:8000; docs at /docs). A token for the
# protected endpoints: IBKR_SERVICE_TOKEN=... make service
service: $(STAMP)
	@$(VENV)/bin/ibkr-sim --port $(SIM_PORT) & sim=$$!; trap "kill $$sim 2>/dev/null" EXIT INT TERM; \
	IBKR_HOST=127.0.0.1 IBKR_PORT=$(SIM_PORT) $(VENV)/bin/ibkr-service --config config.yaml

# Debian's docker-compose validates docker-compose.yml without a daemon (tests/service).
compose-tool:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; \
	  else echo "docker-compose missing: tests/service/test_compose.py will fail"; fi; }

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov $(STAMP) $(STAMP_ASYNC)
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -not -path "./$(VENV_ASYNC)/*" -prune -exec rm -rf {} +
