"""Routing of ib_insync events to the adapter's services (everything runs on the loop thread).

``EventRouter`` wires the facade's ``_on_*`` handlers (the seed names, kept on the facade because
callers and tests invoke them directly) to the IB events, and classifies IB's ``error`` callback:
connectivity (1100/1101/1102, 502/504/1300, 326) → the connection manager, data farms →
``api.data_health``, order ids → the order service, market-data lines → the market service.
"""

from __future__ import annotations

import contextlib
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
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

IB_LINK_DOWN = frozenset({1100, 2110})
"""TWS/IBG lost IB's servers but our socket to it is up: wait for 1101/1102, no reconnect."""


class EventRouter:
    """Connects/disconnects the facade's handlers and implements the non-service ones."""

    def __init__(self, api: IBKRIBInsyncApi) -> None:
        self.api = api

    def _pairs(self) -> tuple[tuple[str, Any], ...]:
        api = self.api
        return (
            ("connectedEvent", api._on_connected),
            ("disconnectedEvent", api._on_disconnected),
            ("orderStatusEvent", api._on_order_status),
            ("execDetailsEvent", api._on_execution),
            ("commissionReportEvent", api._on_commission_report),
            ("positionEvent", api._on_position),
            ("updatePortfolioEvent", api._on_portfolio),
            ("accountValueEvent", api._on_account_value),
            ("errorEvent", api._on_error),
        )

    def setup(self) -> None:
        ib = self.api.ib
        for name, handler in self._pairs():
            event = getattr(ib, name)
            event += handler
            setattr(ib, name, event)
        ib.client.apiError += self.api._on_api_error

    def teardown(self) -> None:
        ib = self.api.ib
        for name, handler in self._pairs() + (("apiError", self.api._on_api_error),):
            owner = ib.client if name == "apiError" else ib
            with contextlib.suppress(Exception):  # best effort
                getattr(owner, name).disconnect(handler)

    # --- connection events --------------------------------------------------------------------

    def connected(self) -> None:
        api = self.api
        api.connected = True
        api.metrics.connection_status.set(1)
        log_info("Connection to IBKR established")

    def disconnected(self) -> None:
        api = self.api
        if api.connection.user_stopped or api.closing:
            log_info("Disconnected from IBKR")
        else:
            log_warning("Disconnected from IBKR")
        api.connection.connection_lost("socket closed")

    def api_error(self, message: str) -> None:
        error = ConnectionLost(f"API connection error: {message}")
        self.api.last_error = error
        self.api.connection.abort_connect(error)

    # --- IB's error callback ------------------------------------------------------------------

    def error(self, req_id: int, code: int, message: str) -> None:
        api = self.api
        if code in CLIENT_ID_IN_USE:
            api.last_error = error_from_ib(code, message)
            log_error(f"IBKR error {code}: {message} (client id {api.client_id} in use)")
            api.connection.abort_connect(api.last_error)
        elif code in CONNECTIVITY_LOST:
            api.last_error = error_from_ib(code, message)
            log_error(f"IBKR connection error {code}: {message}")
            if api.connection.connecting:
                api.connection.abort_connect(api.last_error)
            elif code in IB_LINK_DOWN:
                api.connected = False
                api.metrics.connection_status.set(0)
                api.data_health["ib"] = "down"
                api.connection.link_down()
            else:
                api.connection.connection_lost(f"error {code}")
        elif code in CONNECTIVITY_RESTORED_DATA_LOST or code in CONNECTIVITY_RESTORED_DATA_KEPT:
            log_info(f"IBKR connectivity restored ({code}): {message}")
            api.data_health["ib"] = "ok"
            api.connection.link_restored()
            if api.ib.isConnected() is not False:
                api.connected = True
                api.metrics.connection_status.set(1)
            if code in CONNECTIVITY_RESTORED_DATA_LOST:
                api.ib.reqMarketDataType(api.market_data_type)
                api.market_service.resubscribe_all()
        elif code in DATA_FARM_DOWN or code in DATA_FARM_OK:
            farm = message.rsplit(":", 1)[-1].strip() or str(code)
            api.data_health[farm] = "down" if code in DATA_FARM_DOWN else "ok"
            (log_warning if code in DATA_FARM_DOWN else log_info)(
                f"IBKR data farm {farm}: {api.data_health[farm]} ({code})")
        else:
            handled = api.order_service.on_error(req_id, code, message)
            handled = api.market_service.on_error(req_id, code, message) or handled
            if is_warning(code):
                log_info(f"IBKR warning {code}: {message}, reqId: {req_id}")
            else:
                if not handled:
                    api.last_error = error_from_ib(code, message)
                log_error(f"IBKR error {code}: {message}, reqId: {req_id}")
