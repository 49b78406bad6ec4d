# Everything sets itself up: `make demo` / `make test` on a fresh machine create .venv and
# install the project (again only when pyproject.toml changes). No activation needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SIM_PORT ?= 4002

.PHONY: help venv demo demo-placeholder test lint typecheck unit bench soak sim service compose-tool clean

help:
	@echo "make demo    - the app against the simulated IB gateway (ib_insync adapter)"
	@echo "make test    - ruff + mypy + pytest with coverage (not soak)"
	@echo "make service - the HTTP service on the simulated gateway (127.0.0.1:8000)"
	@echo "make lint | bench | soak | sim | demo-placeholder | clean"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,service,ib_async]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m src.app --demo --broker sim

demo-placeholder: $(STAMP)
	$(PY) -m src.app --demo --broker placeholder

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest -q -m "not soak"

test: lint typecheck compose-tool $(STAMP)
	$(PY) -m pytest -q --cov=src --cov-report=term:skip-covered -m "not soak"

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
	  else echo "docker-compose missing: the compose validation test will be skipped"; fi; }

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov $(STAMP)
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
