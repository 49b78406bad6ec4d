"""Integration fixtures: the real client library (ib_insync 0.9.86 or ib_async 2.x, whichever this
environment holds) against the simulated TWS gateway.

* ``gateway`` — one :class:`~src.simulator.SimulatedGateway` per test module (module scope keeps
  the suite fast); tests get a fresh client id each, so sessions never collide.
* ``make_api`` — builds (and by default connects) an ``IBKRIBInsyncApi`` pointed at the gateway;
  everything it built is disconnected and closed at teardown.
* ``api`` — one connected adapter.
* ``ib_error_guard`` (autouse) — fails the test on any ERROR record from the client library's
  loggers, except the IB error codes the test declares with
  ``@pytest.mark.allow_ib_errors(201, ...)``.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import clock_support
import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # `pytest` (not `python -m pytest`) without a pythonpath setting
    sys.path.insert(0, _ROOT)

from integ_support import ACCOUNT, LATENCY_MS, api_config, next_client_id  # noqa: E402, F401

_CODE = re.compile(r"\b(?:Error|Warning) (\d+), reqId")
# ib_insync's loggers, and asyncio's (an exception nobody retrieved is a lost error).
_WATCHED_LOGGERS = ("ib_insync", "ib_async", "asyncio")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_ib_errors(*codes, patterns=()): IB error codes (and/or message regexes) a test "
        "provokes on purpose; any other ERROR from the client library's loggers fails the test",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def ib_error_guard(request: pytest.FixtureRequest) -> Iterator[_Collector]:
    """Fail the test on an unexpected ERROR from ib_insync's loggers or asyncio's (an exception
    never retrieved); IB error codes / message patterns a test provokes are allowed."""
    allowed: set[int] = set()
    patterns: list[re.Pattern[str]] = []
    for mark in request.node.iter_markers("allow_ib_errors"):
        allowed.update(int(c) for c in mark.args)
        patterns.extend(re.compile(p) for p in mark.kwargs.get("patterns", ()))
    collector = _Collector()
    watched = [logging.getLogger(name) for name in _WATCHED_LOGGERS]
    for logger in watched:
        logger.addHandler(collector)
    try:
        yield collector
    finally:
        gc.collect()  # surface "Future exception was never retrieved" in the test that caused it
        for logger in watched:
            logger.removeHandler(collector)
    bad = []
    for rec in collector.records:
        msg = rec.getMessage()
        if rec.name.startswith("asyncio"):  # never allowed: a lost exception is always a bug
            bad.append(f"{rec.name}: {msg}")
            continue
        m = _CODE.search(msg)
        if m and int(m.group(1)) in allowed:
            continue
        if any(p.search(msg) for p in patterns):
            continue
        bad.append(f"{rec.name}: {msg}")
    if bad:
        pytest.fail("unexpected ERROR log (ib_insync / ib_async / asyncio):\n  " + "\n  ".join(bad),
                    pytrace=False)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Any]:
    from src.simulator import SimulatedGateway

    with SimulatedGateway(port=0, seed=1, latency_ms=LATENCY_MS, accounts=[ACCOUNT],
                          pacing=True, clock=clock_support.pinned_clock()) as gw:
        yield gw


@pytest.fixture
def make_api(gateway: Any) -> Iterator[Callable[..., Any]]:
    """``make_api(connect=True, **config_overrides)`` → an adapter (connected unless told)."""
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

    built: list[Any] = []

    def _make(connect: bool = True, **overrides: Any) -> Any:
        config = api_config(gateway, **overrides)
        api = IBKRIBInsyncApi(config, clock=gateway.clock)  # the gateway's day is the adapter's
        api.test_client_id = config.IBKR_CLIENT_ID  # for look-ups in gateway.requests
        built.append(api)
        if connect:
            assert api.connect() is True, "connect() to the simulated gateway failed"
            assert api.connected is True
        return api

    yield _make
    for api in built:
        try:
            api.disconnect()
        finally:
            close = getattr(api, "close", None)
            if callable(close):
                close()
    built.clear()  # let the adapters be collected now (the error guard runs gc after this)


@pytest.fixture
def api(make_api: Callable[..., Any]) -> Any:
    return make_api()
