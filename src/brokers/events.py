"""Routing of IB events (everything runs on the loop thread).

``EventRouter`` belongs to one :class:`~src.brokers.ib_client.IBKRClient`. It wires the
session events the client itself handles (connected, disconnected, error, the socket's
apiError) and the handlers other objects subscribe through ``client.subscribe`` (the adapter's
order / position / account handlers), and classifies IB's ``error`` callback: connectivity
(1100/1101/1102, 502/504/1300, 326) → the connection manager, data farms →
``client.data_health``, everything else → the client's own order / market-data requests, then the
error handlers registered with ``client.on_request_error`` (the adapter's services).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from src.brokers.errors import (
    CLIENT_ID_IN_USE,
    CONNECTIVITY_LOST,
    CONNECTIVITY_RESTORED_DATA_KEPT,
    CONNECTIVITY_RESTORED_DATA_LOST,
    DATA_FARM_DOWN,
    DATA_FARM_OK,
    ConnectionLost,
    error_from_ib,
    is_warning,
)
from src.utils.logger import log_error, log_info, log_warning

if TYPE_CHECKING:
    from src.brokers.session import Session

IB_LINK_DOWN = frozenset({1100, 2110})
"""TWS/IBG lost IB's servers but our socket to it is up: wait for 1101/1102, no reconnect."""


class EventRouter:
    """Connects/disconnects the event handlers of one client's ``IB``; handles the session ones."""

    def __init__(self, client: Session) -> None:
        self.client = client
        self.subscribed: list[tuple[str, Callable[..., Any]]] = []

    def _pairs(self) -> tuple[tuple[str, Any], ...]:
        return (
            ("connectedEvent", self.connected),
            ("disconnectedEvent", self.disconnected),
            ("errorEvent", self.on_error_event),
            *self.subscribed,
        )

    def setup(self) -> None:
        ib = self.client.ib
        for name, handler in self._pairs():
            self._attach(ib, name, handler)
        ib.client.apiError += self.api_error
        conn = getattr(ib.client, "conn", None)  # test doubles may have no socket
        if conn is not None and hasattr(conn, "disconnected"):
            conn.disconnected += self.socket_closed

    @staticmethod
    def _attach(ib: Any, name: str, handler: Callable[..., Any]) -> None:
        event = getattr(ib, name)
        event += handler
        setattr(ib, name, event)

    def subscribe(self, name: str, handler: Callable[..., Any]) -> None:
        """Wire ``handler`` to the IB event ``name`` (now, and again after ``setup``)."""
        self.subscribed.append((name, handler))
        self._attach(self.client.ib, name, handler)

    def teardown(self) -> None:
        ib = self.client.ib
        for name, handler in self._pairs() + (("apiError", self.api_error),):
            owner = ib.client if name == "apiError" else ib
            with contextlib.suppress(Exception):  # best effort
                getattr(owner, name).disconnect(handler)
        with contextlib.suppress(Exception):
            ib.client.conn.disconnected.disconnect(self.socket_closed)

    # --- connection events --------------------------------------------------------------------

    def connected(self) -> None:
        """The API handshake is done; ``connected`` turns true after the post-connect work."""
        log_info("Connection to IBKR established (API handshake done)")

    def disconnected(self) -> None:
        client = self.client
        if client.connection.user_stopped or client.closing:
            log_info("Disconnected from IBKR")
        else:
            log_warning("Disconnected from IBKR")
        client.connection.connection_lost("socket closed")

    def api_error(self, message: str) -> None:
        error = ConnectionLost(f"API connection error: {message}")
        self.client.record_error(error)
        self.client.connection.abort_connect(error)

    def socket_closed(self, message: str = "") -> None:
        """The socket closed. During the API handshake an orderly close (a gateway that is down
        behind a relay: ib-gateway-docker's socat accepts, then closes) is reported by neither
        library (``_onSocketDisconnected`` is silent before CONNECTED): the attempt would wait
        its whole timeout for ``apiStart``. End it now, so the backoff keeps its spacing."""
        connection = self.client.connection
        if connection.connecting and not self.client.ib.isConnected():
            detail = f": {message}" if message else ""
            error = ConnectionLost(f"socket closed during the API handshake{detail}")
            self.client.record_error(error)
            connection.abort_connect(error)

    # --- IB's error callback ------------------------------------------------------------------

    def on_error_event(self, reqId: int, errorCode: int, errorString: str,  # noqa: N803
                       contract: Any = None) -> None:
        self.error(reqId, errorCode, errorString)

    def error(self, req_id: int, code: int, message: str) -> None:
        client = self.client
        connection = client.connection
        if code in CLIENT_ID_IN_USE:
            client.record_error(error_from_ib(code, message))
            log_error(f"IBKR error {code}: {message} "
                      f"(client id {client.settings.client_id} in use)")
            connection.abort_connect(error_from_ib(code, message))
        elif code in CONNECTIVITY_LOST:
            error = error_from_ib(code, message)
            client.record_error(error)
            log_error(f"IBKR connection error {code}: {message}")
            if connection.connecting:
                connection.abort_connect(error)
            elif code in IB_LINK_DOWN:
                client.mark_connected(False)
                client.data_health["ib"] = "down"
                connection.link_down()
            else:
                connection.connection_lost(f"error {code}")
        elif code in CONNECTIVITY_RESTORED_DATA_LOST or code in CONNECTIVITY_RESTORED_DATA_KEPT:
            log_info(f"IBKR connectivity restored ({code}): {message}")
            client.data_health["ib"] = "ok"
            connection.link_restored()
            if client.ib.isConnected() is not False:
                client.mark_connected(True)
            if code in CONNECTIVITY_RESTORED_DATA_LOST:
                client.ib.reqMarketDataType(client.settings.market_data_type)
                client.data_lost()
        elif code in DATA_FARM_DOWN or code in DATA_FARM_OK:
            farm = message.rsplit(":", 1)[-1].strip() or str(code)
            client.data_health[farm] = "down" if code in DATA_FARM_DOWN else "ok"
            (log_warning if code in DATA_FARM_DOWN else log_info)(
                f"IBKR data farm {farm}: {client.data_health[farm]} ({code})")
        else:
            handled = client.request_error(req_id, code, message)
            if is_warning(code):
                log_info(f"IBKR warning {code}: {message}, reqId: {req_id}")
            else:
                if not handled:
                    client.record_error(error_from_ib(code, message))
                log_error(f"IBKR error {code}: {message}, reqId: {req_id}")
