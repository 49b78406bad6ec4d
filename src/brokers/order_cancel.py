"""A cancel IB refused, an informational code: never a Cancelled IB did not report.

What the client libraries do (read from their ``Wrapper.error``): ib_insync 0.9.86 and
ib_async 2.1.0 treat every error code outside their short warning list, for an order id whose
Trade is not done, as the end of the order: ``trade.orderStatus.status = Cancelled``, a
``TradeLogEntry(status='Cancelled', errorCode=code)`` appended to ``trade.log``, and
orderStatusEvent / statusEvent / cancelledEvent emitted. That includes the codes IB uses to
*refuse* a cancel — 161 (not in a cancellable state), 10147 (order id not found), 10148
("cannot be cancelled, state: Filled": the order filled, its executions are out and the Filled
status follows) — and informational codes on a live order: 10349 ("Order TIF was set to DAY
based on order preset", ib_async issues #191/#217) in both libraries. ib_insync's own
``cancelOrder`` has set PendingCancel locally before, so the Trade is never done when the
refusal arrives.

The choice here: **keep the status IB last reported and let IB's next report decide**. The
order-status handler calls :meth:`CancelGuard.undo` only when the Trade says Cancelled (one
frozenset lookup on every other status event). When the newest log entry carries one of
:data:`NOT_AN_END`, that Cancelled came from the library, not from IB: the Trade's status is put
back — to the status the record had before the cancel was sent for a refusal, else to the
record's — before the record copies it. The record therefore never shows the synthetic Cancelled,
the library keeps the order among its open trades, ``cancel_order`` returns False (the error
handler ends the cancel unconfirmed), and the gateway's next orderStatus (Filled after a lost
race, Cancelled when IB did cancel it, nothing for a working order) updates Trade and record as
usual. Re-requesting the state (reqOpenOrders / reqCompletedOrders) was rejected: it costs a
round trip per refusal and returns the same last report IB already sent.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from src.brokers import translate
from src.brokers.errors import CANCEL_REFUSED, ORDER_INFO
from src.utils.logger import log_info, log_warning

NOT_AN_END: Final = CANCEL_REFUSED | ORDER_INFO
"""Codes after which a library-made Cancelled is undone (the order did not end)."""
CANCELLED: Final = frozenset({"Cancelled", "ApiCancelled"})


def synthetic_code(trade: Any) -> int | None:
    """The code when ``trade``'s Cancelled was set by the library's error handler for a code
    that does not end an order; ``None`` for a Cancelled IB reported (or no Cancelled)."""
    if getattr(getattr(trade, "orderStatus", None), "status", None) not in CANCELLED:
        return None
    log = getattr(trade, "log", None)
    if not log:
        return None
    code = getattr(log[-1], "errorCode", 0)
    return code if isinstance(code, int) and code in NOT_AN_END else None


def after_end(before: str, record: dict[str, Any]) -> str:
    """The status of a finished record (``before``) after copying the library's: a rejected
    order (``Inactive`` with the adapter's ``error``, after 110 / 201) stays Inactive although
    the library says PendingSubmit (ib_insync leaves it there on 110) or Cancelled (ib_async);
    no finished order goes back to pending. Anything else IB reported is taken."""
    status = str(record["status"])
    if status in translate.PENDING_STATUSES:
        return before
    if before == "Inactive" and record.get("error") and status in CANCELLED:
        return before
    return status


def _logged_before(trade: Any) -> str | None:
    """The status the library logged before its synthetic Cancelled (skipping its own local
    PendingCancel): what IB last reported, even when the record has not copied it yet (the
    live event path merges once per socket read)."""
    for entry in reversed(trade.log[:-1]):
        status = getattr(entry, "status", None)
        if isinstance(status, str) and status \
                and status not in CANCELLED | {"PendingCancel", "ValidationError"}:
            return status
    return None


def restore_logged_status(trade: Any) -> str | None:
    """ib_async's ``ValidationError`` (set on a warning such as 399 for a live order) is not a
    status IB reported: put back the one the library logged before it, so a record merged once
    per socket read copies IB's status (the Submitted of the same read), not a stale one."""
    previous = _logged_before(trade)
    if previous is not None and previous != "ValidationError":
        trade.orderStatus.status = previous
    return previous


class CancelGuard:
    """Remembers each order's status before its cancel; undoes library-made Cancelled."""

    def __init__(self) -> None:
        self.before_cancel: dict[str, str] = {}  # order id -> record status when cancel sent

    def cancel_sent(self, order_id: str, status: str) -> None:
        self.before_cancel.setdefault(order_id, status)

    def forget(self, order_id: str) -> None:
        self.before_cancel.pop(order_id, None)

    def undo(self, order_id: str, trade: Any, record_status: str | None) -> int | None:
        """Put ``trade``'s status back when its Cancelled is the library's (see the module
        doc); the code it came from, or ``None`` (nothing changed)."""
        code = synthetic_code(trade)
        if code is None:
            return None
        previous = self.before_cancel.get(order_id) if code in CANCEL_REFUSED else None
        previous = previous or _logged_before(trade) or record_status or "PendingSubmit"
        if previous in CANCELLED:  # the record is already cancelled: nothing to restore
            return None
        trade.orderStatus.status = previous
        what = "refused the cancel" if code in CANCEL_REFUSED else "sent a notice"
        log_warning(f"Order {order_id}: IB {what} (code {code}); not cancelled, status stays "
                    f"{previous} until IB reports otherwise")
        return code


async def cancel(service: Any, order_id: str, timeout: float) -> bool:
    """Send one cancel for ``order_id`` (concurrent callers for the same order share it) and
    wait, bounded. True when IB confirmed it (or it is still unconfirmed at the timeout: sent);
    False for an unknown or finished order and for a cancel IB refused (161 / 10147 / 10148:
    the error handler ends the wait unconfirmed and the status stays IB's last report).
    ``service`` is the :class:`~src.brokers.orders_service.OrderService` (not imported: that
    module imports this one)."""
    record_status = service.status(order_id).get("status")
    trade = service.trades.get(order_id)
    if record_status is None or trade is None:
        log_warning(f"Order {order_id} not found when attempting to cancel")
        return False
    if record_status in translate.TERMINAL_STATUSES:
        log_warning(f"Cannot cancel order {order_id} with status {record_status}")
        return False
    if record_status == "PendingCancel" and not service._cancel.get(order_id):
        log_info(f"Order {order_id}: cancel already pending at the gateway; not resent")
        return True
    waiters = service._cancel.setdefault(order_id, [])
    first = not waiters
    waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    waiters.append(waiter)
    try:
        seen = len(service.errors.get(order_id, ()))
        if first:
            service.guard.cancel_sent(order_id, record_status)
            service.client.ib.cancelOrder(trade.order)
            log_info(f"Cancellation request sent for order {order_id}")
            service.refresh(order_id)
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
        service.refresh(order_id)
        final = service.status(order_id).get("status")
        refusal = [c for c, _ in service.errors.get(order_id, [])[seen:] if c in CANCEL_REFUSED]
        if refusal and not confirmed:
            log_warning(f"Order {order_id} not cancelled: IB refused ({refusal[-1]}); "
                        f"status {final}")
            return False
        if confirmed or final in CANCELLED:
            log_info(f"Order {order_id} cancelled")
            return True
        log_warning(f"Order {order_id} could not be cancelled (status {final})")
        return False
    finally:
        waiters.remove(waiter)
        if not waiters:
            service._cancel.pop(order_id, None)
