"""Scenarios of features/market_data.feature (steps: tests/conftest.py)."""

from pytest_bdd import scenarios

scenarios("market_data.feature")
