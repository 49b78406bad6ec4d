"""Fixtures the seeds' step modules (tests/seeds/test_seed_*.py) use but never define.

The seed plan's order-management steps take an ``option_spread`` fixture that the plan does not
ship; it is the valid AAPL bull call spread of the stub kit (tests/stubs.py).

Guard: every step of a seed scenario must come from the seed module itself. pytest-bdd would
otherwise silently fill a step the seed module lacks with the project's own definition in
tests/conftest.py, and the seed scenario would no longer test the seeds' code.

Cleanup: the seeds' ``api`` fixture never closes the adapter; every adapter a seed test builds
is closed afterwards (its loop thread stopped).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stubs  # tests/ is on sys.path

from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi
from src.models.option import OptionSpread


@pytest.fixture
def option_spread() -> OptionSpread:
    return stubs.aapl_bull_call()


@pytest.fixture(autouse=True)
def _close_seed_adapters(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The seeds' ``api`` fixture never closes the adapter: stop its loop thread afterwards."""
    made: list[IBKRIBInsyncApi] = []
    original = IBKRIBInsyncApi.__init__

    def init(self: IBKRIBInsyncApi, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(IBKRIBInsyncApi, "__init__", init)
    yield
    for api in made:
        api.close()
    assert all(api._loop.closed for api in made)


def pytest_bdd_before_step(request: pytest.FixtureRequest, feature: Any, scenario: Any,
                           step: Any, step_func: Any) -> None:
    if request.node.path.parent.name != "seeds":
        return  # a hook sees every scenario of the run: only the seed modules are checked
    module = request.node.module.__name__
    if step_func.__module__ != module:
        raise AssertionError(
            f"seed scenario {scenario.name!r}: step {step.name!r} resolved to "
            f"{step_func.__module__}.{step_func.__name__}, not to the seed module {module}")
