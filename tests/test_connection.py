"""Scenarios of features/connection.feature (steps: tests/conftest.py)."""

from pytest_bdd import scenarios

scenarios("connection.feature")
