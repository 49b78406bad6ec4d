"""Scenarios of features/order_management.feature (steps: tests/conftest.py)."""

from pytest_bdd import scenarios

scenarios("order_management.feature")
