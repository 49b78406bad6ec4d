"""The typed requests of :class:`~src.brokers.ib_client.IBKRClient` (a mixin, one job).

Seed 003's ``place_order(contract, order)``, ``request_market_data(contract)``,
``cancel_market_data(contract)`` and what the adapter needs on top (qualify, contract details,
cancel order, order state, executions, positions, account values). Each runs its ib_insync work
on the client's loop thread with a deadline and returns frozen results
(:mod:`~src.brokers.client_types`) or raises the ``BrokerError`` tree. Contracts and orders the
caller passes are copied first: ib_insync mutates what it sends (``orderId``, ``conId`` …) on
the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar

from src.brokers import md_permissions
from src.brokers.client_types import (
    AccountValue,
    ContractDetailsInfo,
    Execution,
    OrderResult,
    Position,
    Quote,
)
from src.brokers.compat import contract_status, qualified, require_con_id
from src.brokers.errors import (
    ORDER_CANCELLED,
    BrokerError,
    ContractNotFound,
    InvalidOrder,
    NotConnected,
    OrderRejected,
    ReadOnlyViolation,
    error_from_ib,
    from_exception,
    is_warning,
)
from src.brokers.ib_loop import ib_request
from src.brokers.metrics import AdapterMetrics
from src.brokers.settings import BrokerSettings
from src.utils.clock import Clock
from src.utils.logger import log_debug, log_error, log_info, log_warning

T = TypeVar("T")

PENDING = frozenset({"PendingSubmit", "ApiPending", ""})
CANCELLED = frozenset({"Cancelled", "ApiCancelled"})


class ClientRequests:
    """Typed requests; mixed into ``IBKRClient``, which provides the attributes below."""

    settings: BrokerSettings
    clock: Clock
    metrics: AdapterMetrics
    account_id: str
    ib: Any
    _connected: bool

    def _init_requests(self) -> None:
        # the typed API's own orders and market-data lines (loop thread only)
        self._trades: dict[int, Any] = {}
        self._order_errors: dict[int, list[tuple[int, str]]] = {}
        self._order_waiters: dict[int, asyncio.Future[None]] = {}
        self._lines: dict[int, tuple[Any, Any]] = {}  # conId -> (contract, ticker)
        self._line_errors: dict[int, BrokerError] = {}
        self._line_waiters: dict[int, asyncio.Future[None]] = {}
        self._last_status: dict[int, str] = {}

    def _result(self, trade: Any) -> OrderResult:
        """A frozen snapshot of ``trade``; a library-only status (ib_async's ValidationError /
        ApiUpdate) reads as the order's previous IB status (:func:`compat.contract_status`)."""
        result = OrderResult.from_trade(trade, self.clock.now())
        status = contract_status(result.status,
                                 self._last_status.get(result.order_id, "PendingSubmit"))
        self._last_status[result.order_id] = status
        return result if status == result.status else replace(result, status=status)

    # provided by IBKRClient
    def run(self, coro_fn: Callable[[], Coroutine[Any, Any, T]],
            timeout: float | None = None) -> T:
        raise NotImplementedError

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        raise NotImplementedError

    async def abortable(self, awaitable: Awaitable[T]) -> T:
        raise NotImplementedError

    def record_error(self, error: BrokerError) -> None:
        raise NotImplementedError

    def check_live(self) -> None:
        raise NotImplementedError

    def publish_lines(self) -> None:
        raise NotImplementedError

    def end_request_waits(self) -> None:
        """The session is gone: no answer will come for the typed requests in flight."""
        for waiter in [*self._order_waiters.values(), *self._line_waiters.values()]:
            if not waiter.done():
                waiter.set_result(None)

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
            return [copy.deepcopy(c) for c in qualified(result)]

        found = self.run(work, timeout=self._timeout())
        if len(found) != len(mine) or any(not getattr(c, "conId", 0) for c in found):
            names = ", ".join(str(getattr(c, "symbol", c)) for c in contracts)
            raise ContractNotFound(f"No security definition found for {names}", 200)
        return found

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
        return self._result(trade)

    async def _await_order(self, order_id: int, trade: Any,
                           done: Callable[[Any], bool]) -> None:
        if done(trade) or self._fatal(order_id):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._order_waiters:  # the first to wait: listen (every orderStatus costs a slot)
            self.ib.orderStatusEvent += self._on_own_order_status
        self._order_waiters[order_id] = waiter
        try:
            await asyncio.wait_for(waiter, self.settings.request_timeout)
        except TimeoutError:
            log_warning(f"Order #{order_id}: no answer within "
                        f"{self.settings.request_timeout:g}s; still tracked")
        finally:
            self._order_waiters.pop(order_id, None)
            if not self._order_waiters:  # the last: stop listening
                with contextlib.suppress(Exception):  # a closed client, a test double
                    self.ib.orderStatusEvent -= self._on_own_order_status

    def _fatal(self, order_id: int) -> list[tuple[int, str]]:
        return [(c, m) for c, m in self._order_errors.get(order_id, [])
                if not is_warning(c) and c not in ORDER_CANCELLED]

    def _on_own_order_status(self, trade: Any) -> None:
        """Connected to ``orderStatusEvent`` only while a placement waits for its answer."""
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
                self._line_errors[con_id] = md_permissions.refusal(
                    code, message, md_permissions.label(ticker),
                    self.settings.market_data_type) or error_from_ib(code, message)
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
            return self._result(trade)

        result = self.run(work, timeout=self._timeout(2))
        log_info(f"Order #{order_id} after cancel: {result.status}")
        return result

    def order_state(self, order_id: int) -> OrderResult:
        """The last reported state of an order this client placed."""
        def read() -> OrderResult:
            trade = self._trades.get(order_id)
            if trade is None:
                raise InvalidOrder(f"order_id {order_id} is not an order of this client")
            return self._result(trade)

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
                require_con_id(mine)
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
        except TimeoutError:
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
