"""How IB answers a cancel it cannot honour, and the notices it sends on live orders.

The order engine (``orders.py``) asks this module three things:

* **refusals**: a cancel of an unknown order id → 10147; of a filled order → 10148
  ("…cannot be cancelled, state: Filled."); of an order in any other state that cannot be
  cancelled (already cancelled, Inactive, PendingCancel) → 161. Texts as IB sends them (ib_insync
  issues #656 and #690 quote 10147/10148 from real gateways; 161 is on IB's message-codes page).
* **reports in flight** (``ReportHold``): while held, what the engine sends about an order is
  queued instead of written, as if still on the wire. A cancel for that order then delivers the
  queue with IB's refusal placed *after the executions and before the order status* — the order
  real gateways use when the fill wins the race (the executions are out, the status lags), and
  the order that makes ib_insync 0.9.86 / ib_async 2.1.0 mark a filled trade Cancelled.
* **the race** (``fill_on_cancel``): a cancel that reaches a live order while its fill is in
  flight: the fill wins (at the order's limit, a market order at the market), and the gateway
  answers 10148 after the executions.
* **order notices** (399, 404, 2109, 10349): informational codes on a live order; the order
  stays as it was (IB's message-codes page; ib_async issues #191/#217 for 10349).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from src.simulator.orders import OrderEngine
    from src.simulator.server import Session
    from src.simulator.types import SimOrder

CANCEL_NOT_FOUND: Final = 10147
CANCEL_FILLED: Final = 10148
NOT_CANCELLABLE: Final = 161
ORDER_STATUS_MSG: Final = 3

ORDER_NOTICES: Final[dict[int, str]] = {
    399: "Order Message:\nWarning: your order will not be placed at the exchange until "
         "2026-12-02 09:30:00 US/Eastern",
    404: "Order held while securities are located.",
    2109: "Order Event Warning:Attribute 'Outside Regular Trading Hours' is ignored based on "
          "the order type and destination. PlaceOrder is now being processed.",
    10349: "Order TIF was set to DAY based on order preset.",
}
"""Informational codes IB sends on a live order (the order is not changed)."""

Send = Callable[["Session"], None]


def not_found(order_id: int) -> tuple[int, str]:
    return CANCEL_NOT_FOUND, f"OrderId {order_id} that needs to be cancelled is not found."


def refusal(order: SimOrder) -> tuple[int, str]:
    """IB's answer to a cancel of ``order``, which is in a state that cannot be cancelled."""
    if order.status == "Filled":
        return CANCEL_FILLED, (f"OrderId {order.request.order_id} that needs to be cancelled "
                               "cannot be cancelled, state: Filled.")
    return NOT_CANCELLABLE, ("Cancel attempted when order is not in a cancellable state.  "
                             f"Order permId ={order.perm_id}")


def notice_text(code: int) -> str:
    try:
        return ORDER_NOTICES[code]
    except KeyError:
        raise ValueError(f"code: no order notice {code} (known: {sorted(ORDER_NOTICES)})") \
            from None


class ReportHold:
    """Per-order queues of reports "still on the wire" (see the module doc). A cancel of the
    order delivers its queue; what the gateway sends about it after that is not held."""

    def __init__(self) -> None:
        self.all_orders = False  # hold every order's reports (harness switch)
        self.fill_on_cancel = False  # the race: a cancel of a live order loses to its fill
        self.race_every = 1  # ... every Nth cancel of a live order (1: every one)
        self.live_cancels = 0  # cancels of live orders seen while racing
        self.raced = 0  # cancels that lost to a fill (figures)
        self.place_notices: tuple[int, ...] = ()  # codes sent on every accepted order
        self._queues: dict[int, list[tuple[int, Send]]] = {}  # permId -> (msg id, send)
        self._open: set[int] = set()  # orders held for one cancel (the race)
        self._answered: set[int] = set()  # orders cancelled since: their reports flow again

    def races_now(self) -> bool:
        """Whether this cancel of a live order loses to its fill (deterministic)."""
        if not self.fill_on_cancel:
            return False
        self.live_cancels += 1
        return self.live_cancels % self.race_every == 0

    def holds(self, perm_id: int) -> bool:
        return (self.all_orders and perm_id not in self._answered) or perm_id in self._open

    def hold(self, perm_id: int) -> None:
        self._open.add(perm_id)

    def queue(self, perm_id: int, msg_id: int, send: Send) -> None:
        self._queues.setdefault(perm_id, []).append((msg_id, send))

    def has_queued(self, perm_id: int) -> bool:
        return bool(self._queues.get(perm_id))

    def take(self, perm_id: int, error: Send | None = None) -> list[Send]:
        """The order's queued sends, ``error`` placed before the first order status."""
        self._open.discard(perm_id)
        self._answered.add(perm_id)
        entries = self._queues.pop(perm_id, [])
        out = [send for _, send in entries]
        if error is not None:
            at = next((i for i, (m, _) in enumerate(entries) if m == ORDER_STATUS_MSG),
                      len(entries))
            out.insert(at, error)
        return out

    def release(self) -> Iterable[tuple[int, list[Send]]]:
        """Stop holding: every queue, to be delivered in order."""
        self.all_orders = False
        self._open.clear()
        self._answered.clear()
        queues, self._queues = self._queues, {}
        return [(perm, [s for _, s in entries]) for perm, entries in queues.items()]


# --- the engine's side (called by OrderEngine, on the gateway's loop) ---------------------------

_DONE: Final = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive", "PendingCancel"})
"""States a cancel cannot act on (PendingCancel: a cancel is already under way)."""


def on_cancel(engine: OrderEngine, session: Session, order_id: int) -> None:
    """A client's cancel: cancel the order, or answer IB's refusal after what was in flight."""
    perm = engine._by_key.get((session.client_id, order_id))
    if perm is None:
        session.send_error(order_id, *not_found(order_id))
        return
    order = engine.orders[perm]
    races = engine.races
    if order.status not in _DONE and races.races_now():
        _fill_first(engine, order)
        races.raced += order.status in _DONE
    if order.status not in _DONE:
        _deliver(engine, order, races.take(perm))  # held reports go out before the answer
        engine._cancel(order)
        return
    code, text = refusal(order)
    _deliver(engine, order, races.take(perm, lambda s: s.send_error(order_id, code, text)))


def _fill_first(engine: OrderEngine, order: SimOrder) -> None:
    """The race: the fill is in flight when the cancel arrives and wins (at the limit; a
    market order at the market); its reports are held for the cancel's answer."""
    req = order.request
    try:
        price = req.lmt_price if req.order_type == "LMT" else engine._fill_price(req)
    except (KeyError, ValueError, LookupError):
        price = None
    if price is None:
        return
    engine.races.hold(order.perm_id)
    engine._fill(order, price)


def _deliver(engine: OrderEngine, order: SimOrder, sends: list[Send]) -> None:
    if not sends:
        return
    for session in engine._owner_sessions(order):
        for send in sends:
            send(session)


def release(engine: OrderEngine) -> None:
    """Stop holding reports; deliver every held one, in order."""
    for perm, sends in engine.races.release():
        order = engine.orders.get(perm)
        if order is not None:
            _deliver(engine, order, sends)


def send_notice(engine: OrderEngine, client_id: int, order_id: int, code: int) -> None:
    """Informational ``code`` on the live order ``order_id`` of ``client_id`` (unchanged)."""
    perm = engine._by_key.get((client_id, order_id))
    if perm is None:
        raise ValueError(f"order_id: no order {order_id} of client {client_id}")
    engine.send_notice(engine.orders[perm], code)
