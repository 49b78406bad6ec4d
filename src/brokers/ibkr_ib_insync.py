"""IBKRIBInsyncApi: the real Interactive Brokers adapter (ib_insync 0.9.86), drop-in for IBKRApi.

A thin facade: it validates arguments, applies the safety interlocks, marshals every call onto
one event-loop thread and translates results into the contract's shapes
(docs/contract.md). The work is done by one-job modules beside it:

================  =================================================================
``ib_loop``       IbLoop (loop thread, run/call with timeouts), ``ib_request`` helper
``connection``    connect, start-up work after every (re)connect, reconnect supervisor
``events``        wiring of the IB events, classification of IB's error callback
``orders_service`` BAG orders: place / acknowledge / track / cancel / reconcile
``market_data``   streaming quotes (LRU of lines) and option chains (batched, bounded)
``account``       account summary and positions from ib_insync's event-kept state
``translate``     pure conversions ib_insync objects → dicts / ``Option``
``validation``    argument checks (``ValueError`` naming the field)
``errors``        IB code tables and the ``BrokerError`` exception tree
``metrics``       Prometheus registry of the adapter
================  =================================================================
"""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from src.brokers import compat, validation
from src.brokers.account import AccountService
from src.brokers.compat import IB
from src.brokers.connection import ConnectionManager
from src.brokers.errors import (
    BrokerError,
    InvalidOrder,
    LiveTradingNotAllowed,
    NotConnected,
    OrderInterrupted,
    OrderRejected,
    ReadOnlyViolation,
    RequestTimeout,
    from_exception,
)
from src.brokers.events import EventRouter
from src.brokers.ib_loop import IbLoop, InflightRequests
from src.brokers.market_data import MarketDataService
from src.brokers.metrics import AdapterMetrics
from src.brokers.orders_service import OrderService
from src.brokers.retention import RetentionHook, RetentionPolicy
from src.brokers.settings_coerce import read as setting
from src.brokers.translate import snapshot
from src.models.option import Option, OptionSpread
from src.utils.clock import SYSTEM_CLOCK, Clock, wall_now
from src.utils.logger import log_debug, log_error, log_info, log_warning

__all__ = ["IB", "IBKRIBInsyncApi"]

T = TypeVar("T")

LIVE_PORTS = frozenset({7496, 4001})
LOCK_HELD = "called while holding the adapter's lock (would deadlock with the event handlers)"
PAPER_ACCOUNT_PREFIXES = ("DU", "DF")


class IBKRIBInsyncApi:
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

    Attributes: ``connected``, ``account_id``, ``orders``, ``positions`` and ``lock`` (an
    ``RLock`` guarding ``orders``/``positions``) per the contract; ``ib`` (the ``IB`` instance),
    ``metrics`` (:class:`~src.brokers.metrics.AdapterMetrics`), ``last_error`` (the last
    :class:`~src.brokers.errors.BrokerError` seen), ``reconnect_count``,
    ``last_connect_seconds``, ``data_health`` (farm → "ok"/"down", plus "ib" for 1100/1101/1102).

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
    ``trading_mode: live`` and ``allow_live: true``; contracts ≤
    ``risk.max_contracts_per_order``;
    ``order_ref`` makes placement idempotent (a known ref returns its order id, nothing sent).

    Events handled (ib_insync → handler): connectedEvent → ``_on_connected``,
    disconnectedEvent → ``_on_disconnected``, orderStatusEvent → ``_on_order_status``,
    execDetailsEvent → ``_on_execution``, commissionReportEvent → ``_on_commission_report``,
    positionEvent → ``_on_position``, updatePortfolioEvent → ``_on_portfolio``,
    accountValueEvent → ``_on_account_value``, errorEvent → ``_on_error``,
    client.apiError → ``_on_api_error``.

    Threading model: the constructor starts an :class:`~src.brokers.ib_loop.IbLoop` — a daemon
    thread with its own asyncio loop — and creates ``IB()`` on it. Every public method may be
    called from any thread: it validates on the caller's thread, then runs its ib_insync work on
    the loop thread with a timeout (nothing waits forever). Event handlers run on the loop thread;
    called from another thread (tests) they are marshalled there. ``orders``/``positions`` are
    written under ``lock``; the adapter never holds it while waiting on the loop thread. A
    caller that holds ``lock`` itself gets reads (``get_order_status``, ``get_positions``,
    ``get_account_summary``) from the handler-kept state on its own thread, and calls that need
    the gateway fail fast (``OrderInterrupted`` / error shapes) instead of deadlocking with the
    handlers. ``disconnect()`` or a connection loss ends every in-flight request at once
    (``ConnectionLost``). ib_insync pumps its socket on the loop itself, so
    ``handle_callbacks()`` has nothing to do.
    ``disconnect()`` keeps the loop (the adapter can reconnect); ``close()`` stops it.
    """

    def __init__(
        self,
        config: Any,
        *,
        raise_errors: bool = False,
        max_streams: int | None = None,
        reconnect_rng: random.Random | None = None,
        reconnect_sleep: Callable[[float], Awaitable[Any]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SYSTEM_CLOCK  # "what day is it" (New York), timestamps
        self.raise_errors = raise_errors
        self.host: str = setting(config, "IBKR_HOST", "127.0.0.1")
        self.port: int = setting(config, "IBKR_PORT", 7497)
        self.client_id: int = setting(config, "IBKR_CLIENT_ID", 1)
        self.configured_account: str = setting(config, "IBKR_ACCOUNT_ID", "")
        self.account_id: str = self.configured_account
        self.read_only: bool = setting(config, "IBKR_READ_ONLY", False)
        self.timeout: float = setting(config, "IBKR_TIMEOUT", 20.0)
        self.request_timeout: float = setting(config, "IBKR_REQUEST_TIMEOUT", 10.0)
        self.auto_reconnect: bool = setting(config, "IBKR_AUTO_RECONNECT", True)
        self.link_grace: float = setting(config, "IBKR_LINK_GRACE", 60.0)
        self.reconnect_base: float = setting(config, "IBKR_RECONNECT_BASE", 0.5)
        self.reconnect_cap: float = setting(config, "IBKR_RECONNECT_CAP", 30.0)
        self.reconnect_max_attempts: int = setting(config, "IBKR_RECONNECT_MAX_ATTEMPTS", 0)
        self.max_rate: int = setting(config, "IBKR_MAX_RATE", 45)
        self.market_data_type: int = setting(config, "IBKR_MARKET_DATA_TYPE", 1)
        self.chain_expirations: int = setting(config, "CHAIN_EXPIRATIONS", 4)
        self.chain_strikes: int = setting(config, "CHAIN_STRIKES", 6)
        self.max_contracts: int = setting(config, "MAX_CONTRACTS_PER_ORDER", 10)
        self.trading_mode: str = setting(config, "TRADING_MODE", "paper")
        self.allow_live: bool = setting(config, "ALLOW_LIVE", False)
        metrics_port: int | None = setting(config, "IBKR_METRICS_PORT", None)
        # ibkr.client_library against the loaded library: a clear ValueError, before any IB()
        self.client_library: str = compat.require(setting(config, "IBKR_CLIENT_LIBRARY", "auto"))

        self.connected = False
        self.orders: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.metrics = AdapterMetrics()
        self.last_error: BrokerError | None = None
        self.reconnect_count = 0
        self.last_connect_seconds: float | None = None
        self.data_health: dict[str, str] = {}
        self.closing = False
        self._next_order_id = 1
        self._id_lock = threading.Lock()  # never api.lock: the loop thread must not wait on it
        self._inflight = InflightRequests()

        self._loop = IbLoop(name=f"ib-loop-{self.client_id}",
                            default_timeout=max(self.request_timeout, 1.0) * 3)
        ib_class = IB  # looked up now: tests patch src.brokers.ibkr_ib_insync.IB
        self.ib: Any = self._loop.call(ib_class)
        self.account_service = AccountService(self)
        self.order_service = OrderService(self)
        self.market_service = MarketDataService(
            self, max_streams if max_streams is not None else setting(
                config, "IBKR_MAX_STREAMS", 50),
            chain_stream_lines=setting(config, "CHAIN_STREAM_LINES", 50),
            chain_stream_idle=setting(config, "CHAIN_STREAM_IDLE", 300.0))
        self.connection = ConnectionManager(self, rng=reconnect_rng, sleep=reconnect_sleep)
        self.retention = RetentionHook(self, RetentionPolicy(  # after each connect + periodic
            setting(config, "IBKR_ORDER_RETENTION_DAYS", 1),
            setting(config, "IBKR_TICKER_RETENTION", 3600.0),
            setting(config, "IBKR_RETENTION_SWEEP", 600.0)))
        self.events = EventRouter(self)
        self._loop.call(self.events.setup)
        if metrics_port is not None:
            try:
                self.metrics.serve(metrics_port)
            except OSError as exc:
                log_error(f"Cannot serve metrics on 127.0.0.1:{metrics_port}: {exc}")

    # --- events (seed handler names; they run on the loop thread, marshalled if called
    # from another thread; see src/brokers/events.py for the routing) ----------------------

    def _dispatch(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a handler on the loop thread (inline there); handlers never raise."""
        try:
            if self._loop.in_loop_thread() or self._loop.closed:
                fn(*args)
            else:
                self._loop.call(fn, *args, timeout=self.request_timeout)
        except Exception as exc:  # noqa: BLE001 - an event must not kill the loop
            log_error(f"Error handling IB event {getattr(fn, '__name__', fn)}: {exc}")

    def _on_connected(self) -> None:
        self._dispatch(self.events.connected)

    def _on_disconnected(self) -> None:
        self._dispatch(self.events.disconnected)

    def _on_api_error(self, message: str) -> None:
        self._dispatch(self.events.api_error, message)

    def _on_order_status(self, trade: Any) -> None:
        self._dispatch(self.order_service.on_order_status, trade)

    def _on_execution(self, trade: Any, fill: Any) -> None:
        self._dispatch(self.order_service.on_execution, trade, fill)

    def _on_commission_report(self, trade: Any, fill: Any, report: Any) -> None:
        self._dispatch(self.order_service.on_commission_report, trade, fill, report)

    def _on_position(self, position: Any) -> None:
        self._dispatch(self.account_service.on_position, position)

    def _on_portfolio(self, item: Any) -> None:
        self._dispatch(lambda: self.account_service.on_position(item, portfolio=True))

    def _on_account_value(self, value: Any) -> None:
        self._dispatch(self.account_service.on_account_value, value)

    def _on_error(self, reqId: int, errorCode: int, errorString: str,  # noqa: N803 - IB names
                  contract: Any = None) -> None:
        self._dispatch(self.events.error, reqId, errorCode, errorString)

    async def abortable(self, awaitable: Awaitable[T]) -> T:
        """Await a request that ``disconnect()`` / a connection loss ends at once (loop thread)."""
        return await self._inflight.run(awaitable)

    def abort_inflight(self) -> None:
        """End every in-flight ``abortable`` request with ``ConnectionLost`` (loop thread)."""
        self._inflight.abort()

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
        """Connect to TWS / IB Gateway. True when connected; False (logged) otherwise."""
        log_info(f"Connecting to IBKR at {self.host}:{self.port} with client ID {self.client_id}")
        try:
            if self._holds_lock():
                raise RequestTimeout(LOCK_HELD)
            self._loop.run(self.connection.user_connect, timeout=3 * self.timeout + 5)
        except Exception as exc:  # noqa: BLE001 - the contract: never raises
            error = from_exception(exc)
            self.last_error = error
            self.connected = False
            self.metrics.connection_status.set(0)
            log_error(f"Failed to connect to IBKR: {exc}")
            if self.raise_errors:
                raise error from exc
            return False
        log_info(f"Successfully connected to IBKR (account {self.account_id or '?'})")
        return True

    def disconnect(self) -> None:
        """Disconnect (stops any reconnect attempts). Never raises; the loop keeps running."""
        try:
            if not self._loop.closed:
                self._loop.call(self.connection.disconnect, timeout=self.request_timeout)
            log_info("Disconnected from IBKR")
        except Exception as exc:  # noqa: BLE001 - the contract: never raises
            log_error(f"Error disconnecting from IBKR: {exc}")
        finally:
            self.connected = False
            self.metrics.connection_status.set(0)

    def close(self) -> None:
        """Disconnect, stop the loop thread and the metrics server. Idempotent."""
        if self.closing and self._loop.closed:
            return
        self.closing = True
        if self.connected or self.connection.reconnecting or self._ib_connected():
            self.disconnect()
        try:
            if not self._loop.closed:
                self._loop.call(self.events.teardown, timeout=self.request_timeout)
                self._loop.call(self.retention.stop, timeout=self.request_timeout)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.metrics.close()
        self._loop.close()

    def _ib_connected(self) -> bool:
        try:
            return self._loop.call(lambda: self.ib.isConnected() is True, timeout=2.0)
        except Exception:  # noqa: BLE001
            return False

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
        """A fresh order id: from ib_insync's id sequence when connected, else a local counter."""
        def local() -> int:
            with self._id_lock:
                rid = self._next_order_id
                self._next_order_id += 1
                return rid

        def take() -> int:
            if self.connected and self.ib.isConnected() is True:
                try:
                    rid = self.ib.client.getReqId()
                except Exception:  # noqa: BLE001 - fall back to the local counter
                    rid = None
                if isinstance(rid, int) and not isinstance(rid, bool):
                    with self._id_lock:
                        self._next_order_id = max(self._next_order_id, rid + 1)
                    return rid
            return local()

        if self._holds_lock():
            return local()  # the loop may be waiting for the caller's lock
        try:
            return self._loop.call(take, timeout=self.request_timeout)
        except Exception:  # noqa: BLE001 - loop stopped: the local counter is still unique
            return local()

    def is_live_account(self) -> bool:
        """True for a live port (7496/4001) or an account id that is not a paper one."""
        account = self.account_id or ""
        return self.port in LIVE_PORTS or bool(account) and not account.startswith(
            PAPER_ACCOUNT_PREFIXES)

    def _check_live(self) -> None:
        if self.is_live_account() and not (self.trading_mode == "live" and self.allow_live):
            raise LiveTradingNotAllowed(
                "orders on a live account need trading_mode 'live' and allow_live true "
                f"(account {self.account_id or '?'}, port {self.port})")

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
            args = validation.order_args(symbol, direction, contracts, option_spread,
                                         price_type, limit_price, order_ref, self.max_contracts)
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
            error = from_exception(exc)
            reason = str(exc) or type(exc).__name__
            typed: OrderRejected | OrderInterrupted = (
                OrderInterrupted(reason, error.code) if error.retryable
                else OrderRejected(reason, error.code))
            self._order_failed(typed, reason)
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
        self.last_error = from_exception(exc)
        log_error(f"Error {what}: {exc}")
        if self.raise_errors:
            raise self.last_error from exc
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
            return self._loop.run(lambda: self.abortable(self.market_service.quote(symbol)),
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
                lambda: self.abortable(self.market_service.option_chain(symbol)),
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
