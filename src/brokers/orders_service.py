"""Orders on the loop thread: place (combo BAG), acknowledge, track, cancel, reconcile.

Tracking: ``state.orders[order_id]`` is the contract's dict (written under ``state.lock``);
``self.trades[order_id]`` is the live ib_insync ``Trade`` it follows. After a reconnect
ib_insync re-creates its Trades (open orders, completed orders, executions) and ``reconcile()``
re-links every tracked order by permId / orderRef / orderId and merges fills (deduped by execId).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from typing import TYPE_CHECKING, Any

from src.brokers import translate
from src.brokers.compat import contract_status, qualified
from src.brokers.errors import (
    ORDER_CANCELLED,
    ContractNotFound,
    OrderInterrupted,
    OrderRejected,
    error_from_ib,
    is_warning,
)
from src.brokers.ib_loop import ib_request
from src.brokers.order_fills import FillBook
from src.brokers.order_match import fill_matches, match_trade
from src.models.option import OptionSpread
from src.utils.clock import wall_now
from src.utils.logger import log_debug, log_info, log_warning

if TYPE_CHECKING:
    from src.brokers.ib_client import IBKRClient
    from src.brokers.state import AdapterState

CANCELLED = frozenset({"Cancelled", "ApiCancelled"})
_ref_counter = itertools.count(1)


def new_order_ref(spread_type: str) -> str:
    """A unique orderRef: spread type, wall-clock ms, pid, process-wide counter."""
    return f"{spread_type}-{int(time.time() * 1000)}-{os.getpid()}-{next(_ref_counter)}"


class OrderService:
    """Places and tracks combo orders through ``client`` (every method runs on the loop thread);
    writes ``state.orders`` under ``state.lock``."""

    def __init__(self, client: IBKRClient, state: AdapterState) -> None:
        self.client = client
        self.state = state
        self.trades: dict[str, Any] = {}  # order id -> live Trade (use _track to set)
        self._by_trade: dict[int, str] = {}  # id(Trade) -> order id (O(1) event lookup)
        self.refs: dict[str, str] = {}  # orderRef -> order id ("" while placing)
        self.con_ids: dict[tuple[str, str, float, str], int] = {}  # leg -> conId (session cache)
        self.errors: dict[str, list[tuple[int, str]]] = {}  # order id -> gateway errors
        self._ack: dict[str, asyncio.Future[None]] = {}
        self._cancel: dict[str, list[asyncio.Future[bool]]] = {}  # concurrent cancels share one
        self._placing: dict[str, asyncio.Future[str]] = {}  # orderRef -> first call's outcome
        self.fills = FillBook(client)  # executions and commissions merged into the records

    # --- lookup ---------------------------------------------------------------------------------

    def order_id_for(self, trade: Any) -> str | None:
        """Our order id for a Trade: same object, else orderId, permId or orderRef."""
        oid_known = self._by_trade.get(id(trade))
        if oid_known is not None and self.trades.get(oid_known) is trade:
            return oid_known
        order = getattr(trade, "order", None)
        oid = str(getattr(order, "orderId", ""))
        orders = self.state.orders
        if oid in orders and self._same_client(order):
            return oid
        perm = getattr(order, "permId", 0)
        ref = getattr(order, "orderRef", "")
        for key, record in orders.items():
            if perm and record.get("perm_id") == perm:
                return key
            if isinstance(ref, str) and ref and record.get("order_ref") == ref:
                return key
        return None

    def _same_client(self, order: Any) -> bool:
        client = getattr(order, "clientId", None)
        return not isinstance(client, int) or client in (0, self.client.settings.client_id)

    def _track(self, order_id: str, trade: Any) -> None:
        old = self.trades.get(order_id)
        if old is not None:
            self._by_trade.pop(id(old), None)
        self.trades[order_id] = trade
        self._by_trade[id(trade)] = order_id

    def unlink(self, order_id: str) -> None:
        """Drop an order's live Trade, its record stays (retention, once finished)."""
        trade = self.trades.pop(order_id, None)
        if trade is not None:
            self._by_trade.pop(id(trade), None)
        self.fills.unlink(order_id)

    def forget(self, order_id: str, order_ref: object = None) -> None:
        """Drop everything this service keeps for an order whose record was released."""
        self.unlink(order_id)
        self.errors.pop(order_id, None)
        self.fills.forget(order_id)
        if isinstance(order_ref, str) and self.refs.get(order_ref) == order_id:
            del self.refs[order_ref]

    # --- place --------------------------------------------------------------------------------

    async def _qualify_legs(self, legs: tuple[translate.LegSpec, ...]) -> list[int]:
        client = self.client
        missing = [leg for leg in legs if leg.key() not in self.con_ids]

        async def qualify(leg: translate.LegSpec) -> None:
            result = qualified(await ib_request(client.ib, "qualifyContracts", leg.contract()))
            con_id = getattr(result[0], "conId", 0) if result else 0
            if not isinstance(con_id, int) or con_id <= 0:
                raise ContractNotFound(
                    f"option leg not found: {leg.symbol} {leg.expiry} {leg.strike} {leg.right}",
                    200)
            self.con_ids[leg.key()] = con_id

        if missing:
            await asyncio.wait_for(
                client.abortable(asyncio.gather(*(qualify(leg) for leg in missing))),
                client.settings.request_timeout)
        return [self.con_ids[leg.key()] for leg in legs]

    async def place(self, symbol: str, direction: str, contracts: int, spread: OptionSpread,
                    price_type: str, limit_price: float | None, order_ref: str | None) -> str:
        """Place the spread as one BAG order; wait (bounded) for the gateway's answer.

        Calls with the same ``order_ref`` share one placement: a known ref returns its order id
        (nothing sent), and a call arriving while that ref is still being placed waits for the
        first call's outcome (its order id, or its error) instead of being told it failed.
        """
        if order_ref is None or self.refs.get(order_ref):
            return await self._place(symbol, direction, contracts, spread, price_type,
                                     limit_price, order_ref)
        pending = self._placing.get(order_ref)
        if pending is not None:
            log_info(f"Order ref {order_ref} is being placed by another call; waiting for it")
            return await asyncio.shield(pending)
        outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        outcome.add_done_callback(_retrieved)
        self._placing[order_ref] = outcome
        try:
            order_id = await self._place(symbol, direction, contracts, spread, price_type,
                                         limit_price, order_ref)
        except BaseException as exc:
            outcome.set_exception(exc if isinstance(exc, Exception) else OrderInterrupted(
                f"placement of order_ref {order_ref} was interrupted; retry with the same ref"))
            raise
        else:
            outcome.set_result(order_id)
            return order_id
        finally:
            self._placing.pop(order_ref, None)

    async def _place(self, symbol: str, direction: str, contracts: int, spread: OptionSpread,
                     price_type: str, limit_price: float | None, order_ref: str | None) -> str:
        client, state = self.client, self.state
        if order_ref is not None and order_ref in self.refs:
            existing = self.refs[order_ref]
            if existing:
                log_info(f"Order ref {order_ref} already placed as #{existing}; not resent")
                return existing
            raise OrderRejected(f"order_ref {order_ref} is being placed by another call")
        ref = order_ref or new_order_ref(spread.spread_type)
        self.refs[ref] = ""
        try:
            legs = translate.leg_specs(spread, direction)
            try:
                con_ids = await self._qualify_legs(legs)
            except ContractNotFound as exc:
                raise OrderRejected(str(exc), 200) from exc
            bag = translate.build_bag(symbol, zip(legs, con_ids, strict=True))
            order = translate.build_order(price_type, contracts, limit_price, ref,
                                          client.account_id, direction)
            trade = client.ib.placeOrder(bag, order)
            order_id = str(trade.order.orderId)
            now = wall_now(client.clock)
            record = translate.order_record(
                order_id=order_id, symbol=symbol, direction=direction, contracts=contracts,
                spread=spread, price_type=price_type, limit_price=limit_price, order_ref=ref,
                legs=[leg.as_dict(c) for leg, c in zip(legs, con_ids, strict=True)], now=now)
            translate.apply_order_status(record, trade.orderStatus, now)
            with state.lock:
                state.orders[order_id] = record
            self._track(order_id, trade)
            self.refs[ref] = order_id
        except BaseException:
            if self.refs.get(ref) == "":
                del self.refs[ref]
            raise
        client.metrics.orders_total.inc()
        log_info(
            f"Placed order #{order_id}: {symbol} {direction} {contracts} x "
            f"{spread.spread_type} {price_type}"
            f"{f' @ {limit_price}' if limit_price is not None else ''} (ref {ref})")
        await self._await_ack(order_id, trade)
        rejection = self._rejection(order_id, trade)
        if rejection is not None:
            self.refs.pop(ref, None)
            raise rejection
        return order_id

    async def _await_ack(self, order_id: str, trade: Any) -> None:
        self.refresh(order_id)
        if self._acknowledged(order_id, trade):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ack[order_id] = waiter
        try:
            await asyncio.wait_for(waiter, self.client.settings.request_timeout)
        except TimeoutError:
            log_warning(f"Order #{order_id}: no acknowledgement within "
                        f"{self.client.settings.request_timeout:.0f}s; still tracked")
        finally:
            self._ack.pop(order_id, None)

    def _acknowledged(self, order_id: str, trade: Any) -> bool:
        status = getattr(getattr(trade, "orderStatus", None), "status", "")
        if not isinstance(status, str):
            return True  # a test double without a status: nothing to wait for
        return status not in translate.PENDING_STATUSES or bool(self._fatal(order_id))

    def _fatal(self, order_id: str) -> list[tuple[int, str]]:
        return [(c, m) for c, m in self.errors.get(order_id, [])
                if not is_warning(c) and c not in ORDER_CANCELLED]

    def _rejection(self, order_id: str, trade: Any) -> OrderRejected | None:
        status = getattr(getattr(trade, "orderStatus", None), "status", "")
        if isinstance(status, str):  # ib_async's ValidationError: the status it had before
            with self.state.lock:
                previous = (self.state.orders.get(order_id) or {}).get("status") \
                    or "PendingSubmit"
            status = contract_status(status, previous)
        fatal = self._fatal(order_id)
        if status == "Inactive" or (fatal and status in CANCELLED | {"Inactive", "PendingSubmit"}):
            code, message = fatal[-1] if fatal else (None, f"order {order_id} is {status}")
            with self.state.lock:
                record = self.state.orders.get(order_id)
                if record is not None:
                    record["status"] = "Inactive" if status == "PendingSubmit" else status
                    record["error"] = message
            return OrderRejected(
                f"{message} (IB error {code})" if code is not None else message, code)
        return None

    # --- status / events ----------------------------------------------------------------------

    def refresh(self, order_id: str, fills: list[Any] | None = None) -> None:
        """The live Trade's status and ``fills`` (default: those not merged yet) into the record
        (see order_fills: dedup by execId, corrections, settling, fills the Trade lacks)."""
        trade = self.trades.get(order_id)
        if trade is None:
            return
        with self.state.lock:
            record = self.state.orders.get(order_id)
            if record is None:
                return
            self._apply_status(record, trade)
            if fills is None:
                fills = self.fills.unmerged(order_id, trade)
            self.fills.update(order_id, record, fills)

    def _apply_status(self, record: dict[str, Any], trade: Any) -> None:
        """The Trade's OrderStatus into ``record`` (lock held); the clock is read only when
        the order turns Filled (not on every event)."""
        translate.apply_order_status(record, trade.orderStatus, None)
        if record["status"] == "Filled":
            if record.get("fill_time") is None:
                record["fill_time"] = wall_now(self.client.clock)
            total = translate.finite(getattr(trade.order, "totalQuantity", None))
            if total:
                record["filled"] = max(record["filled"] or 0.0, total)
            record["remaining"] = 0.0

    def status(self, order_id: str) -> dict[str, Any]:
        self.refresh(order_id)
        with self.state.lock:
            record = self.state.orders.get(order_id)
            return translate.snapshot(record) if record is not None else {}

    def link(self, trade: Any) -> str | None:
        """Find (and remember) the order a Trade belongs to."""
        order_id = self.order_id_for(trade)
        if order_id is not None and self.trades.get(order_id) is not trade:
            self._track(order_id, trade)
        return order_id

    def on_order_status(self, trade: Any) -> None:
        order_id = self.link(trade)
        if order_id is None:
            return
        self.refresh(order_id)
        status = trade.orderStatus.status
        log_debug(f"Order {order_id} status: {status}")
        waiter = self._ack.get(order_id)
        if waiter is not None and not waiter.done() and self._acknowledged(order_id, trade):
            waiter.set_result(None)
        if status in translate.TERMINAL_STATUSES:
            self._end_cancels(order_id, status in CANCELLED)

    def on_execution(self, trade: Any, fill: Any) -> None:
        order_id = self.link(trade)
        if order_id is None:
            return
        with self.state.lock:
            record = self.state.orders.get(order_id)
            if record is not None:
                # ``fill`` is in trade.fills already: merging from there spares the status event
                new = self.fills.unmerged(order_id, trade)
                if not any(f is fill for f in new):
                    new.append(fill)
                self.fills.merge(record, new, order_id)
        ex = fill.execution
        log_info(f"Order {order_id} fill: {ex.shares} @ {ex.price} (exec {ex.execId})")

    def on_commission_report(self, trade: Any, fill: Any, report: Any) -> None:
        order_id = self.link(trade)
        if order_id is None:
            return
        with self.state.lock:
            record = self.state.orders.get(order_id)
            if record is None:
                return
            self.fills.commission(order_id, record, report)

    def on_error(self, req_id: int, code: int, message: str) -> bool:
        """Gateway error for one of our order ids: record it, end waits. True if handled."""
        order_id = str(req_id)
        if order_id not in self.trades:
            return False
        self.errors.setdefault(order_id, []).append((code, message))
        if is_warning(code) and code not in ORDER_CANCELLED:
            return True
        ack = self._ack.get(order_id)
        if ack is not None and not ack.done():
            ack.set_result(None)
        self._end_cancels(order_id, code in ORDER_CANCELLED)
        if code not in ORDER_CANCELLED:
            self.client.record_error(error_from_ib(code, message))
        return True

    # --- cancel -----------------------------------------------------------------------------

    def _end_cancels(self, order_id: str, confirmed: bool) -> None:
        for waiter in self._cancel.get(order_id, []):
            if not waiter.done():
                waiter.set_result(confirmed)

    async def cancel(self, order_id: str, timeout: float) -> bool:
        """Send one cancel (concurrent callers for the same order share it); wait, bounded."""
        record_status = self.status(order_id).get("status")
        trade = self.trades.get(order_id)
        if record_status is None or trade is None:
            log_warning(f"Order {order_id} not found when attempting to cancel")
            return False
        if record_status in translate.TERMINAL_STATUSES:
            log_warning(f"Cannot cancel order {order_id} with status {record_status}")
            return False
        if record_status == "PendingCancel" and not self._cancel.get(order_id):
            log_info(f"Order {order_id}: cancel already pending at the gateway; not resent")
            return True
        waiters = self._cancel.setdefault(order_id, [])
        first = not waiters
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            if first:
                self.client.ib.cancelOrder(trade.order)
                log_info(f"Cancellation request sent for order {order_id}")
                self.refresh(order_id)
                if getattr(trade.orderStatus, "status", "") in CANCELLED:
                    log_info(f"Order {order_id} cancelled")
                    return True
            if waiter.done():
                confirmed = waiter.result()
            else:
                try:
                    confirmed = await asyncio.wait_for(asyncio.shield(waiter), timeout)
                except TimeoutError:
                    log_warning(f"Order {order_id} cancel sent, not yet confirmed")
                    return True
            self.refresh(order_id)
            final = self.status(order_id).get("status")
            if confirmed or final in CANCELLED:
                log_info(f"Order {order_id} cancelled")
                return True
            log_warning(f"Order {order_id} could not be cancelled (status {final})")
            return False
        finally:
            waiters.remove(waiter)
            if not waiters:
                self._cancel.pop(order_id, None)

    # --- reconnect ----------------------------------------------------------------------------

    def connection_lost(self) -> None:
        """The socket is gone: no answer will come, end every wait now (callers see the state)."""
        for waiter in list(self._ack.values()):
            if not waiter.done():
                waiter.set_result(None)
        for order_id in list(self._cancel):
            self._end_cancels(order_id, False)

    def _orphan(self, order_id: str, record: dict[str, Any]) -> None:
        """A never-acknowledged order the gateway does not know after a reconnect: it was not
        received. Mark it Inactive and free its order_ref so a retry sends it again."""
        old = self.trades.pop(order_id, None)
        if old is not None:
            self._by_trade.pop(id(old), None)
        ref = record.get("order_ref")
        if isinstance(ref, str) and self.refs.get(ref) == order_id:
            del self.refs[ref]
        with self.state.lock:
            live = self.state.orders.get(order_id)
            if live is not None:
                live["status"] = "Inactive"
                live["error"] = "order not received by the gateway (connection lost)"
        log_warning(f"Order #{order_id} was not received by the gateway; marked Inactive")

    def reconcile(self) -> int:
        """Re-link every tracked order to ib_insync's (re-created) Trades; merge fills.

        Returns how many orders were re-linked.
        """
        ib = self.client.ib
        trades = _as_list(ib.trades())
        fills = _as_list(ib.fills())
        linked = 0
        for order_id in list(self.state.orders):
            with self.state.lock:
                record = dict(self.state.orders[order_id])
            trade = match_trade(trades, record, order_id, self.client.settings.client_id)
            if trade is not None:
                if self.trades.get(order_id) is not trade:
                    linked += 1
                self._track(order_id, trade)
            elif record.get("status") in translate.PENDING_STATUSES:
                self._orphan(order_id, record)
                continue
            client_id = self.client.settings.client_id
            mine = [f for f in fills if fill_matches(f, record, order_id, client_id)]
            with self.state.lock:
                live = self.state.orders.get(order_id)
                if live is not None and mine:
                    self.fills.merge(live, mine, order_id)
            self.refresh(order_id)
        if linked:
            log_info(f"Reconciled {linked} tracked orders after connect")
        self.adopt_open_orders()
        return linked

    def adopt_open_orders(self) -> int:
        """Track the gateway's open orders of our client id that this adapter does not know.

        They were placed by an earlier process with the same client id (a restart). Tracking them
        keeps ``order_ref`` idempotent across the restart — a caller retrying the same ref gets
        the live order's id, not a second order — and keeps their status readable.
        """
        client, state = self.client, self.state
        adopted = 0
        for trade in _as_list(client.ib.openTrades()):
            order = getattr(trade, "order", None)
            order_id = str(getattr(order, "orderId", "") or "")
            if order is None or order_id in ("", "0") \
                    or getattr(order, "clientId", None) != client.settings.client_id \
                    or order_id in state.orders or self.order_id_for(trade) is not None:
                continue
            record = translate.adopted_record(trade, order_id, wall_now(client.clock))
            with state.lock:
                state.orders[order_id] = record
            self._track(order_id, trade)
            if record["order_ref"]:
                self.refs.setdefault(record["order_ref"], order_id)
            adopted += 1
        if adopted:
            log_info(f"Tracking {adopted} open orders of client id {client.settings.client_id} "
                     "placed before this session")
        return adopted


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a shared outcome's exception as retrieved (nobody may be waiting for it)."""
    if not future.cancelled():
        future.exception()


def _as_list(value: Any) -> list[Any]:
    try:
        return list(value)
    except TypeError:
        return []
