"""Fixtures the seeds' step modules (tests/seeds/test_seed_*.py) use but never define.

The seed plan's order-management steps take an ``option_spread`` fixture that the plan does not
ship; it is the valid AAPL bull call spread of the stub kit (tests/stubs.py).

Guard: every step of a seed scenario must come from the seed module itself. pytest-bdd would
otherwise silently fill a step the seed module lacks with the project's own definition in
tests/conftest.py, and the seed scenario would no longer test the seeds' code.
"""

from __future__ import annotations

from typing import Any

import pytest
import stubs  # tests/ is on sys.path

from src.models.option import OptionSpread


@pytest.fixture
def option_spread() -> OptionSpread:
    return stubs.aapl_bull_call()


def pytest_bdd_before_step(request: pytest.FixtureRequest, feature: Any, scenario: Any,
                           step: Any, step_func: Any) -> None:
    if request.node.path.parent.name != "seeds":
        return  # a hook sees every scenario of the run: only the seed modules are checked
    module = request.node.module.__name__
    if step_func.__module__ != module:
        raise AssertionError(
            f"seed scenario {scenario.name!r}: step {step.name!r} resolved to "
            f"{step_func.__module__}.{step_func.__name__}, not to the seed module {module}")
