"""IBKRClient: the one object that owns a gateway session (seed 003, Milestone 4).

It owns the :class:`~src.brokers.ib_loop.IbLoop` thread, the ``IB`` instance made on it,
connect / disconnect / ``is_connected()``, the reconnect supervisor
(:mod:`~src.brokers.connection`), the event wiring (:mod:`~src.brokers.events`), the mapping of
IB codes onto the ``BrokerError`` tree (:mod:`~src.brokers.errors`), the metrics
(:mod:`~src.brokers.metrics`) and the session state: ``connected`` (one writer:
:meth:`IBKRClient.mark_connected`), ``last_error`` (one writer: :meth:`IBKRClient.record_error`),
``account_id``, ``data_health``, ``reconnect_count``.

Every public method is safe from any thread: it hands its work to the loop thread and waits with
a deadline. The order and market-data methods take ib_insync ``Contract`` / ``Order`` objects
(the caller's objects are copied before they reach the loop thread) and return frozen results
(:mod:`~src.brokers.client_types`), or raise a ``BrokerError``.

Who may touch ``client.ib``: only code running on the loop thread — the adapter's services
(orders_service, market_data, chain_lines, account) through ``client.run``/``client.call`` and
the handlers they subscribe. Nobody else: from any other thread use the typed methods.
"""

from __future__ import annotations

import asyncio
import copy
import math
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from src.brokers.client_types import (
    AccountValue,
    ConnectionState,
    ContractDetailsInfo,
    Execution,
    OrderResult,
    Position,
    Quote,
)
from src.brokers.connection import ConnectionManager
from src.brokers.errors import (
    ORDER_CANCELLED,
    BrokerError,
    ConnectionLost,
    ContractNotFound,
    InvalidOrder,
    LiveTradingNotAllowed,
    NotConnected,
    OrderRejected,
    PacingViolation,
    ReadOnlyViolation,
    error_from_ib,
    from_exception,
    is_warning,
)
from src.brokers.events import EventRouter
from src.brokers.ib_loop import IbLoop, InflightRequests, ib_request
from src.brokers.metrics import AdapterMetrics
from src.brokers.settings import BrokerSettings
from src.utils.clock import SYSTEM_CLOCK, Clock
from src.utils.logger import log_debug, log_error, log_info, log_warning

T = TypeVar("T")

LIVE_PORTS = frozenset({7496, 4001})
PAPER_ACCOUNT_PREFIXES = ("DU", "DF")
PENDING = frozenset({"PendingSubmit", "ApiPending", ""})
CANCELLED = frozenset({"Cancelled", "ApiCancelled"})


def default_ib_factory() -> Any:
    """ib_insync's ``IB()`` (imported on first use: a placeholder-only app never loads it)."""
    from ib_insync import IB

    return IB()


class IBKRClient:
    """One gateway session (see the module doc). ``close()`` stops its loop thread."""

    def __init__(self, settings: BrokerSettings | object, *,
                 ib_factory: Callable[[], Any] | None = None, clock: Clock = SYSTEM_CLOCK,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[Any]] | None = None,
                 metrics: AdapterMetrics | None = None) -> None:
        self.settings = settings if isinstance(settings, BrokerSettings) \
            else BrokerSettings.from_config(settings)
        self.clock = clock
        self.metrics = metrics if metrics is not None else AdapterMetrics()
        self.account_id: str = self.settings.account_id
        self.last_error: BrokerError | None = None
        self.reconnect_count = 0
        self.last_connect_seconds: float | None = None
        self.data_health: dict[str, str] = {}
        self.closing = False
        self._connected = False
        self._rest_state = ConnectionState.DISCONNECTED
        self._loss_cause: BrokerError | None = None  # what ended the session (e.g. error 100)
        self._session_hooks: list[Callable[[], Any]] = []
        self._lost_hooks: list[Callable[[], Any]] = []
        self._data_lost_hooks: list[Callable[[], Any]] = []
        self._error_handlers: list[Callable[[int, int, str], bool]] = []
        self._line_counters: list[Callable[[], int]] = []
        # the typed API's own orders and market-data lines (loop thread only)
        self._trades: dict[int, Any] = {}
        self._order_errors: dict[int, list[tuple[int, str]]] = {}
        self._order_waiters: dict[int, asyncio.Future[None]] = {}
        self._lines: dict[int, tuple[Any, Any]] = {}  # conId -> (contract, ticker)
        self._line_errors: dict[int, BrokerError] = {}
        self._line_waiters: dict[int, asyncio.Future[None]] = {}
        self.inflight = InflightRequests()
        self.loop = IbLoop(name=f"ib-loop-{self.settings.client_id}",
                           default_timeout=max(self.settings.request_timeout, 1.0) * 3)
        self.ib: Any = self.loop.call(ib_factory or default_ib_factory)
        self.connection = ConnectionManager(self, rng=rng, sleep=sleep)
        self.events = EventRouter(self)
        self.loop.call(self.events.setup)
        self.subscribe("orderStatusEvent", self._on_own_order_status)
        if self.settings.metrics_port is not None:
            try:
                self.metrics.serve(self.settings.metrics_port)
            except OSError as exc:
                log_error(f"Cannot serve metrics on 127.0.0.1:{self.settings.metrics_port}: "
                          f"{exc}")

    # --- state (the one writer of each) ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def is_connected(self) -> bool:
        """True when the session is up and its post-connect work is done."""
        return self._connected

    def mark_connected(self, value: bool) -> None:
        """The one writer of ``connected`` (and of the ``ib_connection_status`` gauge)."""
        if value != self._connected:
            log_info(f"IBKR connection status: {'connected' if value else 'not connected'}")
        self._connected = bool(value)
        self.metrics.connection_status.set(1 if value else 0)

    def record_error(self, error: BrokerError) -> None:
        """The one writer of ``last_error``. A pacing violation (100) that ended the session is
        kept: the ``ConnectionLost`` errors that follow it do not overwrite the cause."""
        if isinstance(error, PacingViolation) and error.code == 100:
            self._loss_cause = error
        if isinstance(error, ConnectionLost) and self._loss_cause is not None:
            self.last_error = self._loss_cause
            return
        self.last_error = error

    def mark_lost(self) -> None:
        """The session ended (or a connect failed) without the user asking."""
        self._rest_state = ConnectionState.LOST

    def mark_stopped(self) -> None:
        """The user disconnected."""
        self._rest_state = ConnectionState.DISCONNECTED

    @property
    def state(self) -> ConnectionState:
        if self._connected:
            return ConnectionState.CONNECTED
        if self.connection.reconnecting:
            return ConnectionState.RECONNECTING
        if self.connection.connecting:
            return ConnectionState.CONNECTING
        return self._rest_state

    def is_live_account(self) -> bool:
        """True for a live port (7496/4001) or an account id that is not a paper one."""
        account = self.account_id or ""
        return self.settings.port in LIVE_PORTS or bool(account) and not account.startswith(
            PAPER_ACCOUNT_PREFIXES)

    def check_live(self) -> None:
        """Raise ``LiveTradingNotAllowed`` for a live account unless the config allows it."""
        s = self.settings
        if self.is_live_account() and not (s.trading_mode == "live" and s.allow_live):
            raise LiveTradingNotAllowed(
                "orders on a live account need trading_mode 'live' and allow_live true "
                f"(account {'?' if not self.account_id else self.account_id[:2] + '…'}, "
                f"port {s.port})")

    # --- hooks for the layers above (the adapter's services) ---------------------------------

    def subscribe(self, event: str, handler: Callable[..., Any]) -> None:
        """Wire ``handler`` (runs on the loop thread) to the IB event ``event``."""
        self.loop.call(self.events.subscribe, event, handler)

    def on_session(self, hook: Callable[[], Any]) -> None:
        """``hook()`` (sync or async, loop thread) runs after every (re)connect, before
        ``connected`` turns true (rebuild positions, reconcile orders, re-request streams)."""
        self._session_hooks.append(hook)

    def on_lost(self, hook: Callable[[], Any]) -> None:
        """``hook()`` (loop thread) runs when the session is lost (end waits)."""
        self._lost_hooks.append(hook)

    def on_data_lost(self, hook: Callable[[], Any]) -> None:
        """``hook()`` (loop thread) runs on IB's 1101 (connectivity back, data lost)."""
        self._data_lost_hooks.append(hook)

    def on_request_error(self, handler: Callable[[int, int, str], bool]) -> None:
        """``handler(req_id, code, message) -> handled`` for IB errors of requests."""
        self._error_handlers.append(handler)

    def count_lines(self, counter: Callable[[], int]) -> None:
        """Market-data lines held by another layer, counted in the subscriptions gauge."""
        self._line_counters.append(counter)

    def publish_lines(self) -> None:
        lines = len(self._lines) + sum(c() for c in self._line_counters)
        self.metrics.market_data_subscriptions.set(lines)

    # called by the connection manager / event router (loop thread) -----------------------------

    async def run_session_hooks(self) -> None:
        for hook in self._session_hooks:
            result = hook()
            if asyncio.iscoroutine(result):
                await result
        self._resubscribe_own_lines()

    def session_started(self) -> None:
        self._loss_cause = None

    def session_lost(self) -> None:
        if not self.connection.user_stopped and not self.closing:
            self.mark_lost()
        for hook in self._lost_hooks:
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - one hook must not stop the others
                log_error(f"Error in a connection-lost hook: {exc}")
        for waiter in self._order_waiters.values():
            if not waiter.done():
                waiter.set_result(None)
        self.abort_inflight()

    def data_lost(self) -> None:
        for hook in self._data_lost_hooks:
            hook()
        self._resubscribe_own_lines()

    def reconnected(self) -> None:
        self.reconnect_count += 1
        self.metrics.reconnects_total.inc()
        log_info(f"Reconnected to IBKR (reconnect #{self.reconnect_count})")

    def request_error(self, req_id: int, code: int, message: str) -> bool:
        handled = self._own_request_error(req_id, code, message)
        for handler in self._error_handlers:
            handled = handler(req_id, code, message) or handled
        return handled

    # --- loop access ---------------------------------------------------------------------------

    def run(self, coro_fn: Callable[[], Coroutine[Any, Any, T]], timeout: float | None = None
            ) -> T:
        """Run ``coro_fn()`` on the loop thread, wait at most ``timeout`` (any thread)."""
        return self.loop.run(coro_fn, timeout=timeout)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` on the loop thread (inline there), wait at most ``timeout``."""
        return self.loop.call(fn, *args, timeout=timeout)

    def dispatch(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run an event handler on the loop thread (inline there); never raises."""
        try:
            if self.loop.in_loop_thread() or self.loop.closed:
                fn(*args)
            else:
                self.loop.call(fn, *args, timeout=self.settings.request_timeout)
        except Exception as exc:  # noqa: BLE001 - an event must not kill the loop
            log_error(f"Error handling IB event {getattr(fn, '__name__', fn)}: {exc}")

    async def abortable(self, awaitable: Awaitable[T]) -> T:
        """Await a request that ``disconnect()`` / a connection loss ends at once (loop thread)."""
        return await self.inflight.run(awaitable)

    def abort_inflight(self) -> None:
        """End every in-flight ``abortable`` request with ``ConnectionLost`` (loop thread)."""
        self.inflight.abort()

    # --- lifecycle -----------------------------------------------------------------------------

    def connect(self) -> bool:
        """Connect (retrying in the background with ``auto_reconnect`` if the gateway is not up
        yet). True when connected; False (logged, ``last_error`` set) otherwise. Never raises."""
        s = self.settings
        log_info(f"Connecting to IBKR at {s.host}:{s.port} with client ID {s.client_id}")
        try:
            # a failure is recorded (last_error) on the loop thread, where the supervisor runs
            self.loop.run(self.connection.user_connect, timeout=3 * s.timeout + 5)
        except Exception as exc:  # noqa: BLE001 - the contract: never raises
            if self.loop.closed or not isinstance(exc, BrokerError):
                self.record_error(from_exception(exc))  # the loop never ran the attempt
            log_error(f"Failed to connect to IBKR: {exc}")
            return False
        return True

    def disconnect(self) -> None:
        """Disconnect (stops any reconnect attempts). Never raises; the loop keeps running."""
        try:
            if not self.loop.closed:
                self.loop.call(self.connection.disconnect, timeout=self.settings.request_timeout)
            log_info("Disconnected from IBKR")
        except Exception as exc:  # noqa: BLE001 - the contract: never raises
            log_error(f"Error disconnecting from IBKR: {exc}")
        finally:
            self.mark_connected(False)

    def socket_connected(self) -> bool:
        try:
            return bool(self.loop.call(lambda: self.ib.isConnected() is True, timeout=2.0))
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        """Disconnect, stop the loop thread and the metrics server. Idempotent."""
        if self.closing and self.loop.closed:
            return
        self.closing = True
        if self._connected or self.connection.reconnecting or self.socket_connected():
            self.disconnect()
        try:
            if not self.loop.closed:
                self.loop.call(self.events.teardown, timeout=self.settings.request_timeout)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.metrics.close()
        self.loop.close()

    def __enter__(self) -> IBKRClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- typed API: contracts ------------------------------------------------------------------

    def _require_connection(self) -> None:
        if not self._connected:
            raise NotConnected("Not connected to IBKR")

    def _timeout(self, factor: float = 1.0) -> float:
        return factor * self.settings.request_timeout + 2.0

    def qualify(self, *contracts: Any) -> list[Any]:
        """Qualified copies of ``contracts`` (conId filled in); ``ContractNotFound`` for any the
        gateway does not know. The caller's objects are not modified."""
        self._require_connection()
        mine = [copy.deepcopy(c) for c in contracts]

        async def work() -> list[Any]:
            result = await asyncio.wait_for(self.abortable(
                ib_request(self.ib, "qualifyContracts", *mine)), self.settings.request_timeout)
            return [copy.deepcopy(c) for c in (result or []) if c is not None]

        qualified = self.run(work, timeout=self._timeout())
        if len(qualified) != len(mine) or any(not getattr(c, "conId", 0) for c in qualified):
            names = ", ".join(str(getattr(c, "symbol", c)) for c in contracts)
            raise ContractNotFound(f"No security definition found for {names}", 200)
        return qualified

    def contract_details(self, contract: Any) -> list[ContractDetailsInfo]:
        """The gateway's contract details for ``contract`` (may be a wildcard query)."""
        self._require_connection()
        query = copy.deepcopy(contract)

        async def work() -> list[ContractDetailsInfo]:
            details = await asyncio.wait_for(self.abortable(
                ib_request(self.ib, "reqContractDetails", query)), self.settings.request_timeout)
            return [ContractDetailsInfo.from_details(d) for d in details or []]

        found = self.run(work, timeout=self._timeout())
        if not found:
            raise ContractNotFound(
                f"No security definition found for {getattr(contract, 'symbol', contract)}", 200)
        return found

    # --- typed API: orders ---------------------------------------------------------------------

    def place_order(self, contract: Any, order: Any) -> OrderResult:
        """Send ``order`` for ``contract``; wait (bounded) for the gateway's answer.

        Raises ``NotConnected`` / ``ReadOnlyViolation`` / ``LiveTradingNotAllowed`` before
        sending, ``OrderRejected`` when the gateway refuses it. A copy of ``order`` is sent
        (ib_insync sets ``orderId`` etc. on the object it sends)."""
        try:
            if self.settings.read_only:
                raise ReadOnlyViolation("client is read-only (ibkr.read_only): order refused")
            self._require_connection()
            self.check_live()
        except BrokerError as exc:
            self.record_error(exc)
            log_warning(f"Order refused before sending: {exc}")
            raise
        mine, sent = copy.deepcopy(contract), copy.copy(order)
        log_info(f"Submitting order: {getattr(sent, 'action', '?')} "
                 f"{getattr(sent, 'totalQuantity', '?')} {getattr(mine, 'symbol', '?')} "
                 f"{getattr(mine, 'secType', '')} {getattr(sent, 'orderType', '')}"
                 f" @ {getattr(sent, 'lmtPrice', '')}")
        try:
            result = self.run(lambda: self._place(mine, sent), timeout=self._timeout(2))
        except Exception as exc:  # noqa: BLE001 - mapped onto the tree
            error = from_exception(exc)
            if not error.retryable and not isinstance(error, OrderRejected):
                error = OrderRejected(str(error), error.code)
            self._order_failed(error)
            if error is exc:
                raise
            raise error from exc
        self.metrics.orders_total.inc()
        log_info(f"Order #{result.order_id} answered: {result.status}")
        return result

    def _order_failed(self, error: BrokerError) -> None:
        self.record_error(error)
        self.metrics.order_errors_total.inc()
        log_error(f"Order failed: {error}")

    async def _place(self, contract: Any, order: Any) -> OrderResult:
        if not getattr(order, "account", "") and self.account_id:
            order.account = self.account_id
        trade = self.ib.placeOrder(contract, order)
        order_id = int(trade.order.orderId)
        self._trades[order_id] = trade
        await self._await_order(order_id, trade, lambda t: t.orderStatus.status not in PENDING)
        fatal = self._fatal(order_id)
        status = getattr(trade.orderStatus, "status", "")
        if status == "Inactive" or fatal and status in PENDING | CANCELLED | {"Inactive"}:
            code, message = fatal[-1] if fatal else (None, f"order {order_id} is {status}")
            raise OrderRejected(f"{message} (IB error {code})" if code else message, code)
        return OrderResult.from_trade(trade, self.clock.now())

    async def _await_order(self, order_id: int, trade: Any,
                           done: Callable[[Any], bool]) -> None:
        if done(trade) or self._fatal(order_id):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._order_waiters[order_id] = waiter
        try:
            await asyncio.wait_for(waiter, self.settings.request_timeout)
        except asyncio.TimeoutError:
            log_warning(f"Order #{order_id}: no answer within "
                        f"{self.settings.request_timeout:g}s; still tracked")
        finally:
            self._order_waiters.pop(order_id, None)

    def _fatal(self, order_id: int) -> list[tuple[int, str]]:
        return [(c, m) for c, m in self._order_errors.get(order_id, [])
                if not is_warning(c) and c not in ORDER_CANCELLED]

    def _on_own_order_status(self, trade: Any) -> None:
        order_id = getattr(getattr(trade, "order", None), "orderId", None)
        waiter = self._order_waiters.get(order_id) if isinstance(order_id, int) else None
        if waiter is not None and not waiter.done() \
                and getattr(trade.orderStatus, "status", "") not in PENDING:
            waiter.set_result(None)

    def _own_request_error(self, req_id: int, code: int, message: str) -> bool:
        if req_id in self._trades:
            self._order_errors.setdefault(req_id, []).append((code, message))
            waiter = self._order_waiters.get(req_id)
            if waiter is not None and not waiter.done() and not is_warning(code):
                waiter.set_result(None)
            if code not in ORDER_CANCELLED and not is_warning(code):
                self.record_error(error_from_ib(code, message))
            return True
        table = getattr(getattr(self.ib, "wrapper", None), "reqId2Ticker", None)
        ticker = table.get(req_id) if isinstance(table, dict) else None
        for con_id, (_, line) in list(self._lines.items()):
            if ticker is not None and line is ticker and not is_warning(code):
                self._line_errors[con_id] = error_from_ib(code, message)
                waiter = self._line_waiters.get(con_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                return True
        return False

    def cancel_order(self, order_id: int) -> OrderResult:
        """Cancel an order this client placed; wait (bounded) for the confirmation."""
        if self.settings.read_only:
            raise ReadOnlyViolation("client is read-only (ibkr.read_only): cancel refused")
        self._require_connection()

        async def work() -> OrderResult:
            trade = self._trades.get(order_id)
            if trade is None:
                raise InvalidOrder(f"order_id {order_id} is not an order of this client")
            known = len(self._order_errors.get(order_id, []))
            self.ib.cancelOrder(trade.order)
            log_info(f"Cancellation request sent for order #{order_id}")
            await self._await_order(order_id, trade, lambda t: t.orderStatus.status in CANCELLED
                                    or t.orderStatus.status in ("Filled", "Inactive"))
            new = [(c, m) for c, m in self._order_errors.get(order_id, [])[known:]
                   if not is_warning(c) and c not in ORDER_CANCELLED]
            if new and trade.orderStatus.status not in CANCELLED:
                code, message = new[-1]
                raise OrderRejected(f"cancel of order {order_id} refused: {message}", code)
            return OrderResult.from_trade(trade, self.clock.now())

        result = self.run(work, timeout=self._timeout(2))
        log_info(f"Order #{order_id} after cancel: {result.status}")
        return result

    def order_state(self, order_id: int) -> OrderResult:
        """The last reported state of an order this client placed."""
        def read() -> OrderResult:
            trade = self._trades.get(order_id)
            if trade is None:
                raise InvalidOrder(f"order_id {order_id} is not an order of this client")
            return OrderResult.from_trade(trade, self.clock.now())

        return self.call(read, timeout=self._timeout())

    # --- typed API: market data ----------------------------------------------------------------

    def request_market_data(self, contract: Any) -> Quote:
        """Stream ``contract`` (kept until ``cancel_market_data``) and return its first full
        quote (bid/ask/last), or what it has at the request timeout."""
        self._require_connection()
        mine = contract if getattr(contract, "conId", 0) else self.qualify(contract)[0]
        mine = copy.deepcopy(mine)

        async def work() -> Quote:
            con_id = int(mine.conId)
            line = self._lines.get(con_id)
            if line is None:
                ticker = self.ib.reqMktData(mine, "", False, False)
                self._lines[con_id] = (mine, ticker)
                self.publish_lines()
                log_info(f"Market data subscribed: {mine.symbol} ({len(self._lines)} lines)")
            _, ticker = self._lines[con_id]
            await self._await_quote(con_id, ticker)
            error = self._line_errors.pop(con_id, None)
            if error is not None:
                self._drop_line(con_id)
                raise error
            return Quote.from_ticker(ticker, mine, self.clock.now())

        return self.run(work, timeout=self._timeout(2))

    async def _await_quote(self, con_id: int, ticker: Any) -> None:
        """Until the ticker has bid, ask and last, an error ends the line, or the timeout."""
        def full(t: Any) -> bool:
            return all(_finite(getattr(t, f, None)) for f in ("bid", "ask", "last"))

        if full(ticker) or con_id in self._line_errors:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line_waiters[con_id] = waiter
        event = getattr(ticker, "updateEvent", None)

        def on_update(t: Any) -> None:
            if full(t) and not waiter.done():
                waiter.set_result(None)

        if event is not None:
            event += on_update
        try:
            await asyncio.wait_for(waiter, self.settings.request_timeout)
        except asyncio.TimeoutError:
            log_debug(f"No full quote for conId {con_id} within the timeout; partial data")
        finally:
            self._line_waiters.pop(con_id, None)
            if event is not None:
                event -= on_update

    def cancel_market_data(self, contract: Any) -> bool:
        """Stop the stream of ``contract``; False when there was none."""
        con_id = int(getattr(contract, "conId", 0) or 0)

        def work() -> bool:
            key = con_id or next((k for k, (c, _) in self._lines.items()
                                  if c.symbol == getattr(contract, "symbol", None)), 0)
            if key not in self._lines:
                return False
            self._drop_line(key)
            return True

        return bool(self.call(work, timeout=self._timeout()))

    def _drop_line(self, con_id: int) -> None:
        contract, _ = self._lines.pop(con_id)
        self._line_errors.pop(con_id, None)
        try:
            if self.ib.isConnected() is True:
                self.ib.cancelMktData(contract)
        except Exception as exc:  # noqa: BLE001 - the line is gone either way
            log_debug(f"cancelMktData failed: {exc}")
        self.publish_lines()
        log_info(f"Market data cancelled: {contract.symbol} ({len(self._lines)} lines)")

    def _resubscribe_own_lines(self) -> None:
        for con_id, (contract, _) in list(self._lines.items()):
            self._lines[con_id] = (contract, self.ib.reqMktData(contract, "", False, False))
        if self._lines:
            log_info(f"Market data re-subscribed: {len(self._lines)} lines of the client")

    # --- typed API: account --------------------------------------------------------------------

    def executions(self) -> list[Execution]:
        """Today's executions of the session (kept by the gateway's events)."""
        self._require_connection()
        return self.call(lambda: [Execution.from_fill(f) for f in _as_list(self.ib.fills())],
                         timeout=self._timeout())

    def positions(self) -> list[Position]:
        """The account's positions (kept by the gateway's events)."""
        self._require_connection()
        return self.call(lambda: [Position.from_ib(p) for p in
                                  _as_list(self.ib.positions(self.account_id))],
                         timeout=self._timeout())

    def account_values(self) -> list[AccountValue]:
        """The account's values (tag / value / currency), kept by the gateway's events."""
        self._require_connection()
        return self.call(lambda: [AccountValue.from_ib(v) for v in
                                  _as_list(self.ib.accountValues(self.account_id))],
                         timeout=self._timeout())


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value != -1.0


def _as_list(value: Any) -> list[Any]:
    try:
        return list(value)
    except TypeError:
        return []
