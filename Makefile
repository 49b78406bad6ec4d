# Everything sets itself up: `make demo` / `make test` on a fresh machine create .venv and
# install the project (again only when pyproject.toml changes). No activation needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv demo demo-placeholder test lint typecheck unit bench soak sim clean

help:
	@echo "make demo    - the app against the simulated IB gateway (ib_insync adapter)"
	@echo "make test    - ruff + mypy + pytest with coverage (not soak)"
	@echo "make lint | bench | soak | sim | demo-placeholder | clean"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 required, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,ib_async,bench]"
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

test: lint typecheck $(STAMP)
	$(PY) -m pytest -q --cov=src --cov-report=term:skip-covered -m "not soak"

bench: $(STAMP)
	$(PY) -m benchmarks

soak: $(STAMP)
	$(PY) -m pytest -q -m soak

sim: $(STAMP)
	$(VENV)/bin/ibkr-sim --port 4002

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov $(STAMP)
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
