"""Scenarios of features/account_management.feature (steps: tests/conftest.py)."""

from pytest_bdd import scenarios

scenarios("account_management.feature")
