"""IBKRIBInsyncApi: the real Interactive Brokers adapter (ib_insync 0.9.86), drop-in for IBKRApi.

A thin facade over an :class:`~src.brokers.ib_client.IBKRClient` (the gateway session: loop
thread, ``IB``, connect / reconnect, events, error mapping, metrics): it validates arguments,
applies the safety interlocks and translates results into the contract's shapes
(docs/contract.md). The spread, chain and contract-shape work is done by its services
(``orders_service``, ``market_data`` + ``chain_lines``, ``account``), which get the client and
an :class:`~src.brokers.state.AdapterState` — never the facade. See docs/architecture.md;
``what_if_order`` (an addition to the contract) comes from :mod:`~src.brokers.what_if`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from src.brokers import order_rules, validation
from src.brokers.account import AccountService
from src.brokers.compat import IB
from src.brokers.errors import (
    BrokerError,
    InvalidOrder,
    LiveTradingNotAllowed,
    NotConnected,
    OrderRejected,
    ReadOnlyViolation,
    RequestTimeout,
    from_exception,
)
from src.brokers.ib_client import IBKRClient
from src.brokers.market_data import MarketDataService
from src.brokers.orders_service import OrderService
from src.brokers.retention import RetentionHook, RetentionPolicy, RetentionView
from src.brokers.settings import LIVE_PORTS, PAPER_ACCOUNT_PREFIXES, BrokerSettings
from src.brokers.state import AdapterState
from src.brokers.translate import snapshot
from src.brokers.what_if import WhatIfOrders
from src.models.option import Option, OptionSpread
from src.utils.clock import SYSTEM_CLOCK, Clock, wall_now
from src.utils.logger import log_debug, log_error, log_info, log_warning

__all__ = ["IB", "LIVE_PORTS", "PAPER_ACCOUNT_PREFIXES", "IBKRIBInsyncApi"]
T = TypeVar("T")
LOCK_HELD = "called while holding the adapter's lock (would deadlock with the event handlers)"


def _from_client(name: str, doc: str) -> Any:
    """A read-only property that reads ``self.client.<name>``."""
    return property(lambda self: getattr(self.client, name), doc=doc)


class IBKRIBInsyncApi(WhatIfOrders):
    """Interactive Brokers through ib_insync, usable from any thread.

    Public methods (the drop-in contract, docs/contract.md)::

        connect() -> bool                      disconnect() -> None
        handle_callbacks() -> None             get_next_order_id() -> int
        place_order(symbol, direction, contracts, option_spread, price_type="LIMIT",
                    limit_price=None, *, order_ref=None) -> str
        get_order_status(order_id) -> dict     cancel_order(order_id) -> bool
        get_market_data(symbol) -> dict        get_option_chain(symbol) -> list[Option]
        get_account_summary() -> dict          get_positions() -> dict[str, dict]

    Extras: ``close()`` / context manager (stops the loop thread), ``resubscribe_all()``,
    ``is_live_account()``.

    Built on an :class:`~src.brokers.ib_client.IBKRClient` (``client``), which owns the gateway
    session: the loop thread, ``ib``, connect / reconnect, event wiring, error mapping, metrics
    and the session state (``connected``, ``account_id``, ``last_error``, ``data_health``,
    ``reconnect_count``, ``last_connect_seconds`` — read here through properties; the client is
    their one writer). The adapter's own tables (``orders``, ``positions``, ``lock``) live in an
    :class:`~src.brokers.state.AdapterState` shared with its services; the services get the
    client and that state, never the facade. ``client=`` takes a ready ``IBKRClient`` (its
    settings, clock and reconnect rng/sleep then apply; the services run on its loop thread).

    Errors: the contract's return shapes are kept (``connect`` → False, ``get_market_data`` →
    ``{"symbol", "error"}`` …). Every failure is also classified into the ``BrokerError`` tree
    (``src.brokers.errors``) and stored in ``last_error``; with ``raise_errors=True`` the
    non-order methods raise it instead of returning the error shape. ``place_order`` raises
    ``InvalidOrder`` / ``NotConnected`` / ``ReadOnlyViolation`` / ``LiveTradingNotAllowed`` (all
    ``ValueError``) before anything is sent, ``OrderRejected`` (a ``RuntimeError``, message
    "Order placement failed: …") when the gateway refuses the order, and ``OrderInterrupted``
    (a retryable ``RuntimeError``, same message prefix) when a connection loss or timeout cuts
    the call short — retry with the same ``order_ref``: a known ref is never sent twice.

    Safety: ``ibkr.read_only`` refuses ``place_order``/``cancel_order`` (ReadOnlyViolation);
    orders on a live account (account not "DU…"/"DF…", or port 7496/4001) need
    ``trading_mode: live`` and ``allow_live: true``; contracts ≤ ``risk.max_contracts_per_order``;
    ``order_ref`` makes placement idempotent (a known ref returns its order id, nothing sent).

    Event handlers (the seeds' names, callable from any thread: marshalled onto the loop):
    ``_on_order_status``, ``_on_execution``, ``_on_commission_report``, ``_on_position``,
    ``_on_portfolio``, ``_on_account_value``, ``_on_error``, ``_on_api_error`` (synchronous); live
    order events are merged once per socket read (``order_events``), others handled directly.

    Threading model: every public method may be called from any thread: it validates on the
    caller's thread, then runs its ib_insync work on the client's loop thread with a timeout
    (nothing waits forever). ``orders``/``positions`` are written under ``lock``; the adapter
    never holds it while waiting on the loop thread. A caller that holds ``lock`` itself gets
    reads (``get_order_status``, ``get_positions``, ``get_account_summary``) from the
    handler-kept state on its own thread, and calls that need the gateway fail fast
    (``OrderInterrupted`` / error shapes) instead of deadlocking with the handlers.
    ``disconnect()`` keeps the loop (the adapter can reconnect); ``close()`` stops it.
    """

    def __init__(
        self,
        config: Any,
        *,
        client: IBKRClient | None = None,
        clock: Clock | None = None,
        raise_errors: bool = False,
        max_streams: int | None = None,
        reconnect_rng: random.Random | None = None,
        reconnect_sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        self.config = config
        self.raise_errors = raise_errors
        if client is None:
            settings = BrokerSettings.from_config(config)
            if max_streams is not None:
                settings = settings.replace(max_streams=max_streams)
            ib_class = IB  # looked up now: tests patch src.brokers.ibkr_ib_insync.IB
            client = IBKRClient(settings, ib_factory=ib_class, clock=clock or SYSTEM_CLOCK,
                                rng=reconnect_rng, sleep=reconnect_sleep)
        self.client = client
        self.clock: Clock = client.clock  # "what day is it" (New York), timestamps
        self.client_library = client.client_library
        s = self.settings = client.settings
        self.host, self.port, self.client_id = s.host, s.port, s.client_id
        self.configured_account = s.account_id
        self.read_only, self.timeout, self.request_timeout = s.read_only, s.timeout, \
            s.request_timeout
        self.auto_reconnect, self.max_rate = s.auto_reconnect, s.max_rate
        self.reconnect_base, self.reconnect_cap = s.reconnect_base, s.reconnect_cap
        self.chain_expirations, self.chain_strikes = s.chain_expirations, s.chain_strikes
        self.max_contracts, self.trading_mode, self.allow_live = \
            s.max_contracts, s.trading_mode, s.allow_live
        self.state = AdapterState()
        self.account_service = AccountService(client, self.state)
        self.order_service = OrderService(client, self.state)
        self.market_service = MarketDataService(
            client, s.max_streams, chain_stream_lines=s.chain_stream_lines,
            chain_stream_idle=s.chain_stream_idle)
        self.retention = RetentionHook(  # after each connect + every sweep_seconds
            RetentionView(client, self.state, self.order_service),
            RetentionPolicy(s.order_retention_days, s.ticker_retention, s.retention_sweep))
        self._wire()

    def _wire(self) -> None:
        """Hand the services' handlers and post-connect work to the client."""
        client, orders, account, market = (
            self.client, self.order_service, self.account_service, self.market_service)
        batch = orders.batch
        for event, handler in (
                ("orderStatusEvent", batch.on_order_status), ("updateEvent", batch.flush),
                ("execDetailsEvent", batch.on_execution), ("positionEvent", account.on_position),
                ("commissionReportEvent", batch.on_commission_report),
                ("updatePortfolioEvent", account.on_portfolio),
                ("accountValueEvent", account.on_account_value)):
            client.subscribe(event, handler)
        client.on_session(account.rebuild)
        client.on_session(orders.reconcile)
        client.on_session(market.resubscribe_all)
        client.on_session(self.retention.after_connect)
        client.on_lost(orders.connection_lost)
        client.on_data_lost(market.resubscribe_all)
        client.on_request_error(orders.on_error)
        client.on_request_error(market.on_error)
        client.count_lines(market.line_count)

    # --- the session state (owned by the client) ----------------------------------------------

    @property
    def connected(self) -> bool:
        return self.client.connected

    @connected.setter
    def connected(self, value: bool) -> None:  # the seeds' tests set it without connect()
        self.client.mark_connected(value)

    @property
    def orders(self) -> dict[str, dict[str, Any]]:
        return self.state.orders

    @orders.setter
    def orders(self, value: dict[str, dict[str, Any]]) -> None:  # the seeds' tests replace it
        self.state.orders = value

    @property
    def positions(self) -> dict[str, dict[str, Any]]:
        return self.state.positions

    @positions.setter
    def positions(self, value: dict[str, dict[str, Any]]) -> None:
        self.state.positions = value

    @property
    def lock(self) -> Any:
        return self.state.lock

    @lock.setter
    def lock(self, value: Any) -> None:
        self.state.lock = value

    @property
    def account_id(self) -> str:
        return self.client.account_id

    @account_id.setter
    def account_id(self, value: str) -> None:
        self.client.account_id = value

    @property
    def last_error(self) -> BrokerError | None:
        return self.client.last_error

    @last_error.setter
    def last_error(self, error: BrokerError) -> None:
        self.client.record_error(error)

    # read-only views of the client's session state (the client is their one writer)
    ib = _from_client("ib", "The client's ``IB`` (touch it only on the loop thread).")
    metrics = _from_client("metrics", "The client's AdapterMetrics.")
    connection = _from_client("connection", "The client's reconnect supervisor.")
    reconnect_count = _from_client("reconnect_count", "Successful automatic reconnects.")
    last_connect_seconds = _from_client("last_connect_seconds", "Duration of the last connect.")
    data_health = _from_client("data_health", 'Farm → "ok"/"down", plus "ib" (1100/1101/1102).')
    closing = _from_client("closing", "True once close() started.")
    _loop = _from_client("loop", "The client's IbLoop.")
    _inflight = _from_client("inflight", "Requests a disconnect ends at once.")

    # --- events (seed handler names; marshalled onto the loop thread) --------------------------

    def _on_api_error(self, message: str) -> None:
        self.client.dispatch(self.client.events.api_error, message)

    def _on_order_status(self, trade: Any) -> None:
        self.client.dispatch(self.order_service.on_order_status, trade)

    def _on_execution(self, trade: Any, fill: Any) -> None:
        self.client.dispatch(self.order_service.on_execution, trade, fill)

    def _on_commission_report(self, trade: Any, fill: Any, report: Any) -> None:
        self.client.dispatch(self.order_service.on_commission_report, trade, fill, report)

    def _on_position(self, position: Any) -> None:
        self.client.dispatch(self.account_service.on_position, position)

    def _on_portfolio(self, item: Any) -> None:
        self.client.dispatch(self.account_service.on_portfolio, item)

    def _on_account_value(self, value: Any) -> None:
        self.client.dispatch(self.account_service.on_account_value, value)

    def _on_error(self, reqId: int, errorCode: int, errorString: str,  # noqa: N803 - IB names
                  contract: Any = None) -> None:
        self.client.dispatch(self.client.events.error, reqId, errorCode, errorString)

    # --- the caller's lock -------------------------------------------------------------------

    def _holds_lock(self) -> bool:
        """True when the calling thread holds ``self.lock``.

        Handlers on the loop thread take ``self.lock``; a caller holding it while waiting on the
        loop thread would deadlock. Reads are then served from the handler-kept state on the
        caller's thread, and calls that need the gateway fail fast with ``LOCK_HELD``.
        """
        is_owned = getattr(self.lock, "_is_owned", None)
        return bool(is_owned()) if callable(is_owned) else False

    # --- lifecycle ----------------------------------------------------------------------------

    def connect(self) -> bool:
        """Connect to TWS / IB Gateway. True when connected; False (logged) otherwise. With
        ``auto_reconnect`` a failed attempt keeps being retried in the background."""
        if self._holds_lock():
            error = RequestTimeout(LOCK_HELD)
            self.client.record_error(error)
            log_error(f"Failed to connect to IBKR: {error}")
            if self.raise_errors:
                raise error
            return False
        if not self.client.connect():
            if self.raise_errors and self.client.last_error is not None:
                raise self.client.last_error
            return False
        log_info("Successfully connected to IBKR")
        return True

    def disconnect(self) -> None:
        """Disconnect (stops any reconnect attempts). Never raises; the loop keeps running."""
        self.client.disconnect()

    def close(self) -> None:
        """Disconnect, stop the loop thread and the metrics server. Idempotent."""
        try:
            if not self.client.loop.closed:
                self.client.call(self.retention.stop, timeout=self.request_timeout)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.client.close()

    def __enter__(self) -> IBKRIBInsyncApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle_callbacks(self) -> None:
        """Kept for the host application's loop: the loop thread pumps events itself."""
        return None

    def resubscribe_all(self) -> None:
        """Re-request every streaming market-data line (for the connection manager / 1101)."""
        try:
            self._loop.call(self.market_service.resubscribe_all, timeout=self.request_timeout)
        except Exception as exc:  # noqa: BLE001
            log_error(f"Error resubscribing market data: {exc}")

    # --- orders -------------------------------------------------------------------------------

    def get_next_order_id(self) -> int:
        """A fresh order id: from ib_insync's id sequence when connected, else a local counter
        (also when the caller holds ``lock``: the loop may be waiting for it)."""
        return self.client.next_order_id(local_only=self._holds_lock())

    def is_live_account(self) -> bool:
        """True for a live port (7496/4001) or an account id that is not a paper one."""
        return self.client.is_live_account()

    def _check_live(self) -> None:
        order_rules.check_live(self.is_live_account(), self.trading_mode, self.allow_live,
                               self.account_id, self.port)

    def place_order(
        self,
        symbol: str,
        direction: str,
        contracts: int,
        option_spread: OptionSpread,
        price_type: str = "LIMIT",
        limit_price: float | None = None,
        *,
        order_ref: str | None = None,
    ) -> str:
        """Place ``option_spread`` as one BAG order; return its order id (str).

        Raises ``ValueError`` subclasses before sending anything (bad argument, not connected,
        read-only, live not allowed) and ``OrderRejected`` (``RuntimeError``, "Order placement
        failed: …") when the gateway refuses the order or the call fails.
        """
        try:
            args = validation.order_args(  # the limit on its increment (or InvalidOrder)
                symbol, direction, contracts, option_spread, price_type, limit_price, order_ref,
                self.max_contracts, self.settings.price_increment_policy)
            if self.read_only:
                raise ReadOnlyViolation("read-only (ibkr.read_only is true): order refused")
            if not self.connected:
                raise NotConnected("Not connected to IBKR")
            self._check_live()
        except (InvalidOrder, ReadOnlyViolation, NotConnected, LiveTradingNotAllowed) as exc:
            self.last_error = exc
            log_warning(f"Order refused before sending: {exc}")
            raise
        sym, dirn, qty, spread, kind, price, ref = args
        timeout = 2 * self.request_timeout + 5
        try:
            if self._holds_lock():
                raise RequestTimeout(LOCK_HELD)
            return self._loop.run(
                lambda: self.order_service.place(sym, dirn, qty, spread, kind, price, ref),
                timeout=timeout)
        except OrderRejected as exc:
            reason = exc.message.removeprefix("Order placement failed: ")
            self._order_failed(exc, reason)
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to the contract's RuntimeError
            typed = order_rules.order_failure(exc)
            self._order_failed(typed, str(exc) or type(exc).__name__)
            raise typed from exc

    def _order_failed(self, error: BrokerError, reason: str) -> None:
        self.last_error = error
        self.metrics.order_errors_total.inc()
        log_error(f"Error placing order: {reason}")

    def get_order_status(self, order_id: str) -> dict[str, Any]:
        """The order's dict (live status, fills, commissions); ``{}`` for an unknown id."""
        validation.order_id(order_id)
        if self._holds_lock():  # serve the handler-kept record (the loop may wait on the lock)
            record = self.orders.get(order_id)
            return snapshot(record) if record is not None else {}
        try:
            return self._loop.call(self.order_service.status, order_id,
                                   timeout=self.request_timeout)
        except Exception as exc:  # noqa: BLE001 - fall back to the last known record
            log_error(f"Error getting status of order {order_id}: {exc}")
            with self.lock:
                record = self.orders.get(order_id)
                return snapshot(record) if record is not None else {}

    def cancel_order(self, order_id: str) -> bool:
        """Cancel an open order: True when sent or confirmed; False if unknown, final or offline."""
        validation.order_id(order_id)
        if self.read_only:
            raise ReadOnlyViolation("read-only (ibkr.read_only is true): cancel refused")
        if not self.connected:
            log_warning("Not connected to IBKR when attempting to cancel order")
            return False
        wait = min(self.request_timeout, 5.0)
        try:
            if self._holds_lock():
                raise RequestTimeout(LOCK_HELD)
            return bool(self._loop.run(lambda: self.order_service.cancel(order_id, wait),
                                       timeout=wait + 5))
        except Exception as exc:  # noqa: BLE001 - the contract: False on trouble
            return self._failed(exc, f"cancelling order {order_id}", False)

    def _failed(self, exc: Exception, what: str, shape: T) -> T:
        """The contract's error path: classify ``exc`` into ``last_error``, log "Error <what>",
        then raise it (``raise_errors``) or return the contract's ``shape``."""
        error = from_exception(exc)
        self.last_error = error
        log_error(f"Error {what}: {exc}")
        if self.raise_errors:
            raise error from exc
        return shape

    def _gateway_call_allowed(self) -> None:
        """Connected, and not called with ``lock`` held (the loop thread may be waiting on it)."""
        if not self.connected:
            raise NotConnected("Not connected to IBKR")
        if self._holds_lock():
            raise RequestTimeout(LOCK_HELD)

    # --- market data -------------------------------------------------------------------------

    def get_market_data(self, symbol: str) -> dict[str, Any]:
        """Quote of ``symbol`` from its streaming line; ``{"symbol", "error"}`` on trouble."""
        validation.symbol(symbol)
        try:
            self._gateway_call_allowed()
            return self._loop.run(lambda: self.client.abortable(self.market_service.quote(symbol)),
                                  timeout=2 * self.request_timeout + 5)
        except Exception as exc:  # noqa: BLE001 - the contract: error dict
            return self._failed(exc, f"getting market data for {symbol}",
                                {"symbol": symbol, "error": str(exc) or type(exc).__name__})

    def get_option_chain(self, symbol: str) -> list[Option]:
        """Calls and puts, nearest expirations, strikes nearest the money; ``[]`` on trouble."""
        validation.symbol(symbol)
        try:
            self._gateway_call_allowed()
            # phases bounded by the request timeout, plus the pacing the chain's requests need
            # (a wildcard per expiration, 2 quotes per strike and expiration, and as many
            # qualifications when the secdef fallback runs, at the bulk rate)
            messages = self.chain_expirations * (1 + 4 * self.chain_strikes)
            pacing = messages / self.market_service.pacer.rate
            return self._loop.run(
                lambda: self.client.abortable(self.market_service.option_chain(symbol)),
                timeout=8 * self.request_timeout + 5 + pacing)
        except Exception as exc:  # noqa: BLE001 - the contract: empty list
            return self._failed(exc, f"getting option chain for {symbol}", [])

    # --- account ------------------------------------------------------------------------------

    def get_account_summary(self) -> dict[str, Any]:
        """Account values (floats, None where absent); ``{"error", "timestamp"}`` on trouble."""
        try:
            if not self.connected:
                raise NotConnected("Not connected to IBKR")
            if self._holds_lock():  # read ib_insync's state here: the loop may wait on the lock
                return self.account_service.summary()
            return self._loop.call(self.account_service.summary, timeout=self.request_timeout)
        except Exception as exc:  # noqa: BLE001 - the contract: error dict
            return self._failed(exc, "getting account summary", {
                "error": str(exc) or type(exc).__name__,
                "timestamp": wall_now(self.clock).isoformat()})

    def get_positions(self) -> dict[str, dict[str, Any]]:
        """Positions by symbol (options by local symbol), following the gateway; ``{}`` offline."""
        if not self.connected:
            log_debug("get_positions while not connected")
            return {}
        if self._holds_lock():  # the handler-kept table (the loop may be waiting on the lock)
            return {k: dict(v) for k, v in self.positions.items()}
        try:
            return self._loop.call(self.account_service.rebuild, timeout=self.request_timeout)
        except Exception as exc:  # noqa: BLE001 - the contract: {}
            return self._failed(exc, "getting positions", {})
