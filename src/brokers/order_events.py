"""The live order-event path: events of one socket read merged once per order (loop thread).

ib_insync / ib_async decode a socket read message by message and emit ``orderStatusEvent``,
``execDetailsEvent`` and ``commissionReportEvent`` for each, then ``updateEvent`` once the read
is processed (``Wrapper.tcpDataProcessed``). A burst of fills is a few reads of hundreds of
messages, many of them about the same order (openOrder, Submitted, then per partial fill
execDetails, commissionReport, orderStatus). Applying each event to the order record on its own
costs a lookup, a lock round trip and a status copy per event; :class:`OrderEventBatch` only
notes what changed (a dict / list append per event) and :meth:`OrderEventBatch.flush` merges
it into the records once per order:

* at ``updateEvent`` — the end of the socket read that carried the events (so a record is
  never behind the read that is being processed once control returns to the loop);
* from a ``call_soon`` scheduled by the first event of a batch (events not followed by an
  ``updateEvent``, e.g. emitted by a test double): at most one loop iteration later;
* before every read through the loop (``OrderService.status``, hence ``get_order_status``,
  ``cancel``) and before ``reconcile`` / a connection loss, so a caller who saw an event sees
  its effect in the status it asks for.

The seeds' direct calls (``IBKRIBInsyncApi._on_order_status(trade)`` …) do not come here: they
run the service's synchronous handlers and update the record at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Protocol

from src.brokers import translate
from src.brokers.order_cancel import restore_logged_status
from src.utils.logger import get_logger, log_debug, log_error, log_info

if TYPE_CHECKING:
    from src.brokers.ib_client import IBKRClient
    from src.brokers.order_cancel import CancelGuard
    from src.brokers.order_fills import FillBook
    from src.brokers.state import AdapterState

_logger = get_logger()
CANCELLED = frozenset({"Cancelled", "ApiCancelled"})


class OrderService(Protocol):
    """What this module uses of :class:`~src.brokers.orders_service.OrderService`."""

    client: IBKRClient
    state: AdapterState
    fills: FillBook
    guard: CancelGuard
    _ack: dict[str, asyncio.Future[None]]

    def link(self, trade: Any) -> str | None: ...
    def _apply_status(self, record: dict[str, Any], trade: Any) -> None: ...
    def _acknowledged(self, order_id: str, trade: Any) -> bool: ...
    def _end_cancels(self, order_id: str, confirmed: bool) -> None: ...


class OrderEventBatch:
    """Pending order events of the current socket read; ``flush`` applies them (loop thread)."""

    def __init__(self, service: OrderService) -> None:
        self.service = service
        self._status: dict[int, Any] = {}  # id(Trade) -> Trade with an orderStatus pending
        self._fills: list[tuple[Any, Any]] = []  # (Trade, Fill) of execDetails events
        self._reports: list[tuple[Any, Any, Any]] = []  # (Trade, Fill, CommissionReport)
        self._scheduled = False

    def __len__(self) -> int:
        return len(self._status) + len(self._fills) + len(self._reports)

    # --- per event: note it (the client library calls these for every message) -------------

    def on_order_status(self, trade: Any) -> None:
        if not self._scheduled:
            self._schedule()
        self._status[id(trade)] = trade
        status = trade.orderStatus.status
        if status in CANCELLED:  # rare: checked now, not at the flush
            self._undo_synthetic(trade)
        elif status == "ValidationError":  # ib_async on a warning (399 …): not IB's status
            restore_logged_status(trade)

    def _undo_synthetic(self, trade: Any) -> None:
        """A Cancelled the library made up on a refused cancel / a notice is undone at once:
        IB's own report (Cancelled too, after a 161) may follow in the same read, and the library
        emits no event for a status it already shows — undone at the flush, IB's Cancelled would
        be lost (order_cancel's module doc)."""
        service = self.service
        try:
            order_id = service.link(trade)
            if order_id is None:
                return
            with service.state.lock:
                record = service.state.orders.get(order_id)
                status = record.get("status") if record is not None else None
            service.guard.undo(order_id, trade, status)
        except Exception as exc:  # noqa: BLE001 - never break the library's event loop
            log_error(f"Error handling IB order event: {exc}")

    def on_execution(self, trade: Any, fill: Any) -> None:
        if not self._scheduled:
            self._schedule()
        self._fills.append((trade, fill))

    def on_commission_report(self, trade: Any, fill: Any, report: Any) -> None:
        if not self._scheduled:
            self._schedule()
        self._reports.append((trade, fill, report))

    def _schedule(self) -> None:
        """Once per batch: a flush on the loop's next iteration (events off a socket read)."""
        self._scheduled = True
        loop = self.service.client.loop
        try:
            if loop.in_loop_thread():
                loop.loop.call_soon(self._flush_soon)
            else:  # an event emitted on another thread (a test double): wake the loop
                loop.loop.call_soon_threadsafe(self._flush_soon)
        except RuntimeError:  # the loop is closed: reads merge what is pending (status())
            self._scheduled = False

    def _flush_soon(self) -> None:
        self._scheduled = False
        self.flush()

    # --- once per read ------------------------------------------------------------------------

    def flush(self, *_: Any) -> None:
        """Merge every pending event into the order records (loop thread; never raises):
        per order one status copy and one merge of its new fills, then its commissions."""
        status, fills, reports = self._status, self._fills, self._reports
        if not (status or fills or reports):
            return
        self._status, self._fills, self._reports = {}, [], []
        service = self.service
        ids: dict[int, str | None] = {}
        merged: set[int] = set()  # id(Fill) merged now (with its commission, if it has one)
        by_trade: dict[int, tuple[Any, list[Any]]] = {}
        for trade, fill in fills:
            entry = by_trade.get(id(trade))
            if entry is None:
                by_trade[id(trade)] = (trade, [fill])
            else:
                entry[1].append(fill)
        for key, trade in status.items():
            try:
                ids[key] = order_id = service.link(trade)
                if order_id is not None:
                    pending = by_trade.pop(key, None)
                    merged.update(map(id, apply_events(service, order_id, trade,
                                                       pending[1] if pending else ())))
            except Exception as exc:  # noqa: BLE001 - one bad event must not drop the others
                log_error(f"Error handling IB order event: {exc}")
        for key, (trade, new) in by_trade.items():  # fills without a status event
            try:
                ids[key] = order_id = service.link(trade)
                if order_id is not None:
                    merged.update(map(id, merge_fills(service, order_id, trade, new)))
            except Exception as exc:  # noqa: BLE001
                log_error(f"Error handling IB execution: {exc}")
        if fills and _logger.isEnabledFor(logging.INFO):
            for trade, fill in fills:
                order_id = ids.get(id(trade))
                if order_id is not None:
                    ex = fill.execution
                    log_info(f"Order {order_id} fill: {ex.shares} @ {ex.price} "
                             f"(exec {ex.execId})")
        if not reports:
            return
        state, commission = service.state, service.fills.commission
        with state.lock:  # once for all of them (most were recorded with their fill already)
            for trade, fill, report in reports:
                if report is getattr(fill, "commissionReport", None) and id(fill) in merged:
                    continue  # the fill was merged after its report arrived: recorded with it
                try:
                    key = id(trade)
                    order_id = ids[key] if key in ids else service.link(trade)
                    record = state.orders.get(order_id) if order_id is not None else None
                    if order_id is not None and record is not None:
                        commission(order_id, record, report)
                except Exception as exc:  # noqa: BLE001
                    log_error(f"Error handling IB commission report: {exc}")


def _merge(service: OrderService, record: dict[str, Any], order_id: str, trade: Any,
           fills: Any, after_status: bool) -> list[Any]:
    """The Trade's fills not merged yet, plus ``fills`` missing from ``trade.fills``, into the
    record (lock held; FillBook dedups by execId, applies corrections; after a status copy its
    ``update`` also settles waiting commissions and sweeps); returns the fills merged."""
    new: list[Any] = service.fills.unmerged(order_id, trade)
    if fills:  # the read's execDetails fills: as a rule the tail of trade.fills, in order
        n = len(fills)
        if n > len(new) or any(a is not b for a, b in zip(new[len(new) - n:], fills, strict=True)):
            have = {id(f) for f in new}  # not all of them: add the missing ones
            new += [f for f in fills if id(f) not in have]
    if after_status:
        service.fills.update(order_id, record, new)
    elif new:
        service.fills.merge(record, new, order_id)
    return new


def merge_fills(service: OrderService, order_id: str, trade: Any,
                fills: Any = ()) -> list[Any]:
    """Executions into the order's record, without re-reading its status (an orderStatus event
    follows every fill); returns the fills merged."""
    state = service.state
    with state.lock:
        record = state.orders.get(order_id)
        return _merge(service, record, order_id, trade, fills, False) \
            if record is not None else []


def apply_events(service: OrderService, order_id: str, trade: Any,
                 fills: Any = ()) -> list[Any]:
    """The Trade's status and new fills into the order's record; then end the waits its status
    ends. Returns the fills merged."""
    state = service.state
    new: list[Any] = []
    with state.lock:
        record = state.orders.get(order_id)
        if record is not None:
            if trade.orderStatus.status in CANCELLED:  # the library's, on 10148/161/10349 …?
                service.guard.undo(order_id, trade, record.get("status"))
            service._apply_status(record, trade)
            new = _merge(service, record, order_id, trade, fills, True)
    status = trade.orderStatus.status
    if _logger.isEnabledFor(logging.DEBUG):
        log_debug(f"Order {order_id} status: {status}")
    waiter = service._ack.get(order_id)
    if waiter is not None and not waiter.done() and service._acknowledged(order_id, trade):
        waiter.set_result(None)
    if status in translate.TERMINAL_STATUSES:
        service._end_cancels(order_id, status in CANCELLED)
        service.guard.forget(order_id)
    return new


def apply_commission(service: OrderService, order_id: str, report: Any) -> None:
    """One commission report into the order's record (once per execId)."""
    state = service.state
    with state.lock:
        record = state.orders.get(order_id)
        if record is not None:
            service.fills.commission(order_id, record, report)
