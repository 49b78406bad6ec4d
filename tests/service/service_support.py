"""Helpers for the service tests: an app through the factory on the mock client (or on the
placeholder), clients, polling with a deadline."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from polling import wait_until

from src.app.config import Config
from src.brokers.ibkr_api import IBKRApi
from src.service import create_app
from src.utils.clock import FixedClock

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAPER_ACCOUNT = "DU7654321"


def config(**changes: Any) -> Config:
    base: dict[str, Any] = {"SERVICE_BROKER": "placeholder", "IBKR_RECONNECT_BASE": 0.01,
                            "IBKR_RECONNECT_CAP": 0.05, "IBKR_ACCOUNT_ID": PAPER_ACCOUNT}
    base.update(changes)
    return Config().replace(**base)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until truthy (its value); AssertionError after ``timeout`` seconds."""
    return wait_until(predicate, timeout, 0.01, what)


@contextmanager
def running(app: FastAPI, *, ready: bool = True) -> Iterator[TestClient]:
    """A TestClient with the lifespan run; waits (bounded) for /ready when ``ready``."""
    with TestClient(app) as client:
        if ready:
            wait_for(lambda: client.get("/ready").status_code == 200, what="/ready 200")
        yield client


def placeholder_app(*, broker: IBKRApi | None = None, token: str | None = TOKEN,
                    clock: FixedClock | None = None, **changes: Any) -> tuple[FastAPI, list[Any]]:
    """An app whose factory builds (and records) a placeholder; ``broker`` to supply one."""
    built: list[Any] = []

    def factory(cfg: Any) -> Any:
        b = broker if broker is not None else IBKRApi(cfg)
        built.append(b)
        return b

    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return create_app(config(**changes), broker_factory=factory, token=token, **kwargs), built


def mock_app(*, token: str | None = TOKEN, clock: FixedClock | None = None,
             **changes: Any) -> FastAPI:
    """An app through the factory with ``service.broker: mock``: the lifespan builds
    ``ClientBroker`` on a ``MockIBKRClient`` (reach it with :func:`mock_of`)."""
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return create_app(config(SERVICE_BROKER="mock", **changes), token=token, **kwargs)


def broker_of(client: TestClient) -> Any:
    """The one broker the running app's lifespan built."""
    return client.app.state.service.broker  # type: ignore[attr-defined]


def mock_of(client: TestClient) -> Any:
    """The ``MockIBKRClient`` under the running app's broker (to script fills, errors, state)."""
    return broker_of(client).client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of sample ``name{labels}`` in a Prometheus exposition (None if absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, _, value = line.rpartition(" ")
        sample, _, label_text = key.partition("{")
        if sample != name:
            continue
        got = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if got == want:
            return float(value)
    return None
