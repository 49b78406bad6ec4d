"""Session: what the connection manager and the event router need from their client.

A ``typing.Protocol`` (implemented by :class:`~src.brokers.ib_client.IBKRClient`), so that
``connection`` and ``events`` depend on this narrow interface rather than on the client module
that composes them: the broker modules' imports (type-only ones included) form no cycle.
"""

from __future__ import annotations

from typing import Any, Protocol

from src.brokers.errors import BrokerError
from src.brokers.settings import BrokerSettings


class Supervisor(Protocol):
    """The connection manager, as the event router sees it."""

    @property
    def user_stopped(self) -> bool: ...

    @property
    def connecting(self) -> bool: ...

    @property
    def reconnecting(self) -> bool: ...

    def connection_lost(self, reason: str) -> None: ...

    def abort_connect(self, exc: BrokerError) -> None: ...

    def link_down(self) -> None: ...

    def link_restored(self) -> None: ...


class Session(Protocol):
    """The session state and hooks of one gateway client (loop thread unless noted)."""

    settings: BrokerSettings
    ib: Any
    account_id: str
    data_health: dict[str, str]
    closing: bool
    last_connect_seconds: float | None

    @property
    def connected(self) -> bool: ...

    @property
    def connection(self) -> Supervisor: ...

    def mark_connected(self, value: bool) -> None: ...

    def mark_lost(self) -> None: ...

    def mark_stopped(self) -> None: ...

    def record_error(self, error: BrokerError) -> None: ...

    async def run_session_hooks(self) -> None: ...

    def session_started(self) -> None: ...

    def session_lost(self) -> None: ...

    def data_lost(self) -> None: ...

    def reconnected(self) -> None: ...

    def request_error(self, req_id: int, code: int, message: str) -> bool: ...

    def abort_inflight(self) -> None: ...
