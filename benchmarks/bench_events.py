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
#: issue 12's goal: the adapter absorbs order events at >= 0.95x raw ib_insync's rate.
TARGET_RATIO = 0.95


def _bag(i: int) -> SimContract:
    c = SimContract(con_id=28812380, symbol="AAPL", sec_type="BAG", exchange="SMART")
    c.combo_legs = [ComboLegSpec(con_id=610000000 + 2 * (i % 100), ratio=1, action="BUY"),
                    ComboLegSpec(con_id=610000001 + 2 * (i % 100), ratio=1, action="SELL")]
    c.combo_legs_descrip = ",".join(f"{leg.con_id}|{leg.ratio}" for leg in c.combo_legs)
    return c


def order_messages(first_id: int, n: int, fills: int = 1) -> list[list[str]]:
    """Wire fields (str) of the full life of ``n`` spread orders of ``fills`` contracts, each
    filled one contract at a time (``fills`` partial fills: execDetails, commissionReport and
    orderStatus per fill, the last one Filled), ids from ``first_id``."""
    out: list[list[str]] = []
    for k in range(n):
        oid = first_id + k
        perm = 900_000_000 + oid
        req = OrderRequest(order_id=oid, contract=_bag(oid), action="BUY",
                           total_quantity=fills, order_type="LMT", lmt_price=1.25,
                           account=ACCOUNT, order_ref=f"bench-{oid}", client_id=CLIENT_ID,
                           perm_id=perm)
        order = SimOrder(request=req, perm_id=perm, client_id=CLIENT_ID, status="Submitted",
                         remaining=fills)
        msgs = [codec.encode_open_order(order, SERVER_VERSION), codec.encode_order_status(order)]
        for j in range(1, fills + 1):
            fill = SimFill(exec_id=f"0000e0d5.{oid:08x}.{j:02d}.01", order_id=oid,
                           perm_id=perm, client_id=CLIENT_ID, contract=req.contract,
                           side="BOT", shares=1, price=1.2, time="20261120  15:30:00",
                           account=ACCOUNT, cum_qty=j, avg_price=1.2, order_ref=req.order_ref,
                           commission=1.3, realized_pnl=None)
            msgs.append(codec.encode_exec_details(-1, fill))
            msgs.append(codec.encode_commission_report(fill))
            order.status = "Filled" if j == fills else "Submitted"
            order.filled, order.remaining = j, fills - j
            order.avg_fill_price = order.last_fill_price = 1.2
            msgs.append(codec.encode_order_status(order))
        out += [list(codec.iter_fields(m)) for m in msgs]
    return out


def messages_per_order(fills: int) -> int:
    return 2 + 3 * fills


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

    def __init__(self, name: str, fills: int = 1) -> None:
        self.name = name
        self.fills = fills
        self.rates: list[float] = []

    def _setup(self, first_id: int, n: int) -> tuple[IB, Callable[[Callable[[], float]], float]]:
        raise NotImplementedError

    def _check(self, ib: IB, first_id: int, n: int) -> bool:
        trades = ib.wrapper.trades
        return all(trades[(CLIENT_ID, first_id + k)].orderStatus.status == "Filled"
                   and len(trades[(CLIENT_ID, first_id + k)].fills) == self.fills
                   for k in range(n))

    def _teardown(self) -> None:
        pass

    def run(self, first_id: int, n: int) -> float:
        msgs = order_messages(first_id, n, self.fills)
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
        rate = len(msgs) / elapsed
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

    def __init__(self, name: str, fills: int = 1) -> None:
        super().__init__(name, fills)
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
                    order_id=oid, symbol="AAPL", direction="LONG", contracts=self.fills,
                    spread=spread,
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
        return all(r.get("status") == "Filled" and len(r.get("executions") or ()) == self.fills
                   and len(r.get("commissions") or ()) == self.fills for r in rows)

    def _teardown(self) -> None:
        if self.api is not None:
            self.api.close()
            self.api = None


def run(orders: int, repetitions: int, fills: int = 1,
        target: float = TARGET_RATIO) -> tuple[list[Section], list[Target]]:
    """``repetitions`` interleaved rounds of one burst per side: ``orders`` orders of
    ``fills`` partial fills each (``orders × (2 + 3 × fills)`` messages a burst)."""
    raw = RawSide("raw ib_insync", fills)
    adapter = AdapterSide("adapter handlers", fills)
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
    per_order = messages_per_order(fills)
    burst = orders * per_order
    events = 1 + 2 * fills  # orderStatus events + execDetails events per order
    rows = [
        ["raw ib_insync (no handlers)", orders, burst, r, r / per_order,
         r * events / per_order, 1.0, f"{min(raw.rates):,.0f}..{max(raw.rates):,.0f}"],
        ["adapter handlers attached", orders, burst, a, a / per_order,
         a * events / per_order, rel, f"{min(paired):.3f}..{max(paired):.3f}"],
    ]
    section = Section(
        name="events: order-event absorption (in-process decoder, no sockets)",
        headers=["side", "orders/burst", "messages/burst", "messages/s", "orders/s",
                 "orderStatus+execDetails ev/s", "x raw", "spread"],
        rows=rows,
        notes=[f"{repetitions} interleaved rounds (A/B order alternates), after one warm-up "
               "each; a round = one burst per side; rates: medians per side; x raw: the "
               "median of the per-round ratios (each pair run back to back, so machine drift "
               "cancels); spread: min..max of the raw rates / of the paired ratios",
               f"a burst: {orders} spread orders x {fills} partial fills = {burst:,} messages "
               f"({per_order} per order: openOrder, orderStatus Submitted, then per fill "
               "execDetails, commissionReport, orderStatus), server version 176",
               f"every burst is verified: all orders Filled with {fills} fill(s) (adapter side: "
               f"its orders rows carry status Filled, {fills} executions, {fills} commissions)",
               "each run: a fresh IB (adapter side: a fresh adapter tracking exactly those "
               "orders), fed on the thread that owns it (the adapter's loop thread)"],
        data={"orders": orders, "fills": fills, "burst_messages": burst,
              "repetitions": repetitions, "adapter_rates": adapter.rates,
              "raw_rates": raw.rates, "paired_ratios": paired, "adapter_median": a,
              "raw_median": r, "ratio": rel},
    )
    verdict = Target("events: adapter / raw ib_insync throughput", rel, ">=", target,
                     f"median of {repetitions} paired ratios, bursts of {burst:,} messages; "
                     f"{a:,.0f} vs {r:,.0f} messages/s, ratios "
                     f"{min(paired):.2f}..{max(paired):.2f}")
    return [section], [verdict]
