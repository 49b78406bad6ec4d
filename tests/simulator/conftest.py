"""Fixtures for the simulated-gateway suite: the gateway, the client library under test (the
one installed: ib_insync or ib_async), client threads with their own event loops, and a guard
that fails a test when the client library logs an ERROR the test did not declare."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import clock_support
import pytest
from sim_support import ACCOUNT, ENGINE_FACTORY, Client

from src.brokers import compat
from src.simulator import SimulatedGateway

CLIENT_LOGGERS = ("ib_insync", "ib_async")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "expected_ib_errors(*codes_or_texts): ERROR logs from ib_insync/ib_async this test "
        "provokes on purpose (int: IB error code, str: substring of the log message)",
    )


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def ib_error_guard(request: pytest.FixtureRequest) -> Iterator[_Capture]:
    handler = _Capture()
    loggers = [logging.getLogger(n) for n in CLIENT_LOGGERS]
    for lg in loggers:
        lg.addHandler(handler)
    yield handler
    for lg in loggers:
        lg.removeHandler(handler)
    marker = request.node.get_closest_marker("expected_ib_errors")
    allowed = marker.args if marker else ()
    codes = [a for a in allowed if isinstance(a, int)]
    texts = [a for a in allowed if isinstance(a, str)]
    unexpected = []
    for r in handler.records:
        msg = r.getMessage()
        if any(f"Error {c}," in msg for c in codes) or any(t in msg for t in texts):
            continue
        unexpected.append(f"{r.name}: {msg}")
    if unexpected:
        pytest.fail("unexpected ERROR logs from the IB client:\n" + "\n".join(unexpected))


@pytest.fixture(params=[compat.LIBRARY])
def ib_module(request: pytest.FixtureRequest) -> Any:
    """The client library of this environment (one per venv: they share ``eventkit``)."""
    return importlib.import_module(request.param)


@pytest.fixture
def gateway() -> Iterator[SimulatedGateway]:
    with SimulatedGateway(port=0, seed=1, latency_ms=0, accounts=[ACCOUNT], pacing=True,
                          step_seconds=0.05, engine_factory=ENGINE_FACTORY,
                          clock=clock_support.pinned_clock()) as gw:
        yield gw


@pytest.fixture
def make_client(ib_module: Any, gateway: SimulatedGateway) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def factory(client_id: int | None = 1, *, use_async: bool = False) -> Client:
        c = Client(ib_module, gateway)
        clients.append(c)
        if client_id is not None:
            c.connect(client_id, use_async=use_async)
        return c

    yield factory
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client: Callable[..., Client]) -> Client:
    """A connected client (clientId 1, blocking connect from a non-main thread)."""
    return make_client(1)
