"""Event absorption: order events per second through the adapter's handlers vs raw ib_insync.

In-process, no sockets: the gateway's own encoders (src/simulator/order_codec.py) build, for N
spread orders, the messages a fill produces — openOrder, orderStatus Submitted, execDetails,
commissionReport, orderStatus Filled — as wire fields (strings), and ib_insync's
``Decoder(ib.wrapper, 176).interpret(fields)`` decodes and dispatches them, exactly as it does
for bytes off the socket. Side (a) is the adapter's own ``IB`` with the adapter's handlers
attached and its ``orders`` dict holding those order ids (so the handlers do their real work:
status updates, execution and commission rows); side (b) is a plain ``IB()`` with no handlers.
Each run starts from a fresh ``IB`` (and a fresh adapter holding exactly those N orders), the
adapter side is fed on the adapter's loop thread (where ib_insync delivers events in
production; fed from another thread its handlers would marshal every event across threads);
repetitions alternate which side goes first and use fresh order ids.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from benchmarks.report import Section, Target, median, ratio
from src.brokers.compat import IB, Decoder
from src.simulator import order_codec as codec
from src.simulator.types import ComboLegSpec, OrderRequest, SimContract, SimFill, SimOrder

SERVER_VERSION = 176
CLIENT_ID = 1
ACCOUNT = "DU1234567"
MESSAGES_PER_ORDER = 5
EVENTS_PER_ORDER = 3  # orderStatus ×2 + execDetails (openOrder/commission come on top)
TARGET_RATIO = 0.85


def _bag(i: int) -> SimContract:
    c = SimContract(con_id=28812380, symbol="AAPL", sec_type="BAG", exchange="SMART")
    c.combo_legs = [ComboLegSpec(con_id=610000000 + 2 * (i % 100), ratio=1, action="BUY"),
                    ComboLegSpec(con_id=610000001 + 2 * (i % 100), ratio=1, action="SELL")]
    c.combo_legs_descrip = ",".join(f"{leg.con_id}|{leg.ratio}" for leg in c.combo_legs)
    return c


def order_messages(first_id: int, n: int) -> list[list[str]]:
    """Wire fields (str) of the full life of ``n`` filled spread orders, ids from ``first_id``."""
    out: list[list[str]] = []
    for k in range(n):
        oid = first_id + k
        perm = 900_000_000 + oid
        req = OrderRequest(order_id=oid, contract=_bag(oid), action="BUY", total_quantity=1,
                           order_type="LMT", lmt_price=1.25, account=ACCOUNT,
                           order_ref=f"bench-{oid}", client_id=CLIENT_ID, perm_id=perm)
        order = SimOrder(request=req, perm_id=perm, client_id=CLIENT_ID, status="Submitted",
                         remaining=1)
        fill = SimFill(exec_id=f"0000e0d5.{oid:08x}.01.01", order_id=oid, perm_id=perm,
                       client_id=CLIENT_ID, contract=req.contract, side="BOT", shares=1,
                       price=1.2, time="20261120  15:30:00", account=ACCOUNT, cum_qty=1,
                       avg_price=1.2, order_ref=req.order_ref, commission=1.3,
                       realized_pnl=None)
        msgs = [codec.encode_open_order(order, SERVER_VERSION), codec.encode_order_status(order)]
        msgs.append(codec.encode_exec_details(-1, fill))
        msgs.append(codec.encode_commission_report(fill))
        order.status, order.filled, order.remaining = "Filled", 1, 0
        order.avg_fill_price = order.last_fill_price = 1.2
        msgs.append(codec.encode_order_status(order))
        out += [list(codec.iter_fields(m)) for m in msgs]
    return out


def _spread() -> Any:
    from datetime import date

    from src.models.option import Option, OptionSpread

    exp = date(2026, 12, 18)
    long_leg = Option(symbol="AAPL  261218C00230000", underlying="AAPL", option_type="call",
                      strike=230.0, expiration=exp)
    short_leg = Option(symbol="AAPL  261218C00235000", underlying="AAPL", option_type="call",
                       strike=235.0, expiration=exp)
    return OptionSpread(symbol="AAPL", spread_type="BULL_CALL", long_leg=long_leg,
                        short_leg=short_leg)


class Side:
    """One side of the comparison: a fresh IB (and adapter) per run, fed by the decoder."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rates: list[float] = []

    def _setup(self, first_id: int, n: int) -> tuple[IB, Callable[[Callable[[], float]], float]]:
        raise NotImplementedError

    def _check(self, ib: IB, first_id: int, n: int) -> bool:
        trades = ib.wrapper.trades
        return all(trades[(CLIENT_ID, first_id + k)].orderStatus.status == "Filled"
                   and len(trades[(CLIENT_ID, first_id + k)].fills) == 1 for k in range(n))

    def _teardown(self) -> None:
        pass

    def run(self, first_id: int, n: int) -> float:
        msgs = order_messages(first_id, n)
        ib, on_thread = self._setup(first_id, n)
        try:
            decoder = Decoder(ib.wrapper, SERVER_VERSION)

            def feed() -> float:
                interpret = decoder.interpret
                gc.collect()
                t0 = time.perf_counter()
                for fields in msgs:
                    interpret(fields)
                return time.perf_counter() - t0

            elapsed = on_thread(feed)
            if not self._check(ib, first_id, n):
                raise RuntimeError(f"events bench ({self.name}): events not all absorbed")
        finally:
            self._teardown()
        rate = n * MESSAGES_PER_ORDER / elapsed
        self.rates.append(rate)
        return rate


class RawSide(Side):
    """A plain ``IB()``, no handlers, fed on the calling thread."""

    def _setup(self, first_id: int, n: int) -> tuple[IB, Callable[[Callable[[], float]], float]]:
        ib = IB()
        ib.wrapper.clientId = CLIENT_ID
        return ib, lambda feed: feed()


class AdapterSide(Side):
    """The adapter's own ``IB`` with its handlers attached, fed on the adapter's loop thread
    (where ib_insync delivers events in production), its ``orders`` holding those ids."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.api: Any = None

    def _setup(self, first_id: int, n: int) -> tuple[IB, Callable[[Callable[[], float]], float]]:
        from datetime import datetime

        from src.app.config import Config
        from src.brokers import translate
        from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

        api = IBKRIBInsyncApi(Config().replace(IBKR_CLIENT_ID=CLIENT_ID,
                                               IBKR_AUTO_RECONNECT=False))
        self.api = api
        spread, now = _spread(), datetime.now()
        with api.lock:
            for k in range(n):
                oid = str(first_id + k)
                api.orders[oid] = translate.order_record(
                    order_id=oid, symbol="AAPL", direction="LONG", contracts=1, spread=spread,
                    price_type="LIMIT", limit_price=1.25, order_ref=f"bench-{oid}", legs=[],
                    now=now)
        ib = api.ib
        ib.wrapper.clientId = CLIENT_ID
        loop = api._loop
        return ib, lambda feed: float(loop.call(feed, timeout=300.0))

    def _check(self, ib: IB, first_id: int, n: int) -> bool:
        if not super()._check(ib, first_id, n):
            return False
        api = self.api
        with api.lock:
            rows = [api.orders.get(str(first_id + k), {}) for k in range(n)]
        return all(r.get("status") == "Filled" and len(r.get("executions") or ()) == 1
                   and len(r.get("commissions") or ()) == 1 for r in rows)

    def _teardown(self) -> None:
        if self.api is not None:
            self.api.close()
            self.api = None


def run(orders: int, repetitions: int) -> tuple[list[Section], list[Target]]:
    raw = RawSide("raw ib_insync")
    adapter = AdapterSide("adapter handlers")
    next_id = 1
    for side in (adapter, raw):  # warm-up (not recorded): both paths once
        side.run(next_id, max(50, orders // 10))
        next_id += orders
    adapter.rates.clear()
    raw.rates.clear()
    paired: list[float] = []
    for rep in range(repetitions):
        for side in ((adapter, raw) if rep % 2 == 0 else (raw, adapter)):
            side.run(next_id, orders)
            next_id += orders
        paired.append(ratio(adapter.rates[-1], raw.rates[-1]))
    a, r = median(adapter.rates), median(raw.rates)
    rel = median(paired)
    rows = [
        ["raw ib_insync (no handlers)", orders, r, r / MESSAGES_PER_ORDER,
         r * EVENTS_PER_ORDER / MESSAGES_PER_ORDER, 1.0],
        ["adapter handlers attached", orders, a, a / MESSAGES_PER_ORDER,
         a * EVENTS_PER_ORDER / MESSAGES_PER_ORDER, rel],
    ]
    section = Section(
        name="events: order-event absorption (in-process decoder, no sockets)",
        headers=["side", "orders/rep", "messages/s", "orders/s",
                 "orderStatus+execDetails ev/s", "x raw"],
        rows=rows,
        notes=[f"{repetitions} interleaved repetitions (A/B order alternates), after one "
               "warm-up each; rates: medians per side; x raw: the median of the per-repetition "
               "ratios (each pair run back to back, so machine drift cancels); "
               f"{MESSAGES_PER_ORDER} messages per order "
               "(openOrder, orderStatus Submitted, execDetails, commissionReport, "
               "orderStatus Filled), server version 176",
               "every repetition is verified: all orders Filled with 1 fill "
               "(adapter side: its orders rows carry status Filled, 1 execution, 1 commission)",
               "each run: a fresh IB (adapter side: a fresh adapter tracking exactly those "
               "orders), fed on the thread that owns it (the adapter's loop thread)"],
        data={"orders": orders, "repetitions": repetitions, "adapter_rates": adapter.rates,
              "raw_rates": raw.rates, "paired_ratios": paired, "adapter_median": a,
              "raw_median": r, "ratio": rel},
    )
    target = Target("events: adapter / raw ib_insync throughput", rel, ">=", TARGET_RATIO,
                    f"median of paired ratios; {a:,.0f} vs {r:,.0f} messages/s, "
                    f"ratios {min(paired):.2f}..{max(paired):.2f}")
    return [section], [target]
