"""A trading week in minutes: memory and table sizes over five sessions with daily restarts.

One adapter (``IBKRIBInsyncApi``, auto-reconnect on) lives through five trading days,
Wednesday to Tuesday across a weekend. Each day is a **new simulated gateway process**
(``benchmarks/sim_process.py``: its own memory is not counted; the API order-id sequence
carries over as a real gateway's does) on the same port, with that day's date — the option
chain's weekly expirations roll (on Monday the Friday expiration is gone). Between days the
gateway process is terminated and the next one started: the adapter reconnects by itself.
Per day:

* ``streams`` stock quotes stream (``get_market_data``) and the AAPL chain's 48 option lines
  stream between chain calls: the gateway steps its market every ``step`` seconds, every line
  ticks (bid/ask/last, and greeks for options); ticks are counted as they are decoded;
* ``orders / 5`` spread orders (``place_order``, BULL_CALL from the latest chain): half
  marketable limits that fill at once, a quarter far from the market then cancelled
  (``cancel_order``), a quarter at the spread's mid that rest and fill if the market comes to
  them — what is still open at the end of the day is cancelled. The simulator fills whole
  orders only, so there are no partial fills;
* ``chains / 5`` ``get_option_chain("AAPL")`` calls, concurrently with the orders.

After each day (before the restart): ``gc.collect()``, the process's RSS (VmRSS) and the size
of every table that could grow, the adapter's and ib_insync's (``retention.table_sizes``).
Retention (``src/brokers/retention.py``) runs as configured, with ``retention_sweep`` 1 s so
that it sweeps within the compressed day. The adapter reads the trading day from the
injected clock (``clock=``, a ``FixedClock`` moved one day per session); an adapter without
``clock=`` (before the clock landed) gets ``api.clock`` and a substituted ``market_data.date``
instead (said in the notes).
"""

from __future__ import annotations

import gc
import inspect
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import next_client_id, rss_mb, stock_symbols, wide_universe
from benchmarks.report import Section, Target
from benchmarks.sim_process import GatewayProcess
from src.brokers.retention import DIAGNOSTIC_KEEP
from src.utils.clock import FixedClock, trading_date

#: Five sessions from a Wednesday: Wed Thu Fri, the weekend, Mon Tue. The Friday expiration
#: still trades on Friday (until the close) and is gone on Monday: the chain rolls there.
FIRST_DAY = date(2026, 12, 9)
SYMBOL = "AAPL"
TICK_MESSAGES = (1, 2, 21, 45, 46)  # tickPrice, tickSize, tickOptionComputation, generic, string
RSS_GROWTH_MB = 20.0
RECONNECT_TIMEOUT = 30.0
TICK_WAIT_TIMEOUT = 120.0
#: a table "grows without bound" when after the last day it is above its size after days 2-3
#: (retention reached its steady state) by more than 10 % + 10 entries.
GROWTH_SLACK = (1.10, 10)
#: tables bounded by construction (a cap the adapter enforces): not "growing" below the cap
CAPPED = {"connection.delays": DIAGNOSTIC_KEEP}


@dataclass
class Day:
    day: date
    orders: int = 0
    filled: int = 0
    cancelled: int = 0
    rested_filled: int = 0
    order_errors: int = 0
    chains: int = 0
    chain_options: int = 0
    expirations: set[str] = field(default_factory=set)
    ticks: int = 0
    seconds: float = 0.0
    reconnect_s: float | None = None
    rss_mb: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "orders": self.orders, "filled": self.filled,
                "cancelled": self.cancelled, "rested_filled": self.rested_filled,
                "order_errors": self.order_errors, "chains": self.chains,
                "chain_options": self.chain_options, "expirations": sorted(self.expirations),
                "ticks": self.ticks, "seconds": self.seconds, "reconnect_s": self.reconnect_s,
                "rss_mb": self.rss_mb, "tables": self.tables}


class TickCounter:
    """Counts the tick messages the adapter's client decodes (wraps the decoder's handlers)."""

    def __init__(self, api: Any) -> None:
        self.count = 0

        def install() -> None:
            handlers = api.ib.client.decoder.handlers
            for msg_id in TICK_MESSAGES:
                handler = handlers.get(msg_id)
                if handler is not None:
                    handlers[msg_id] = self._counted(handler)

        api._loop.call(install)

    def _counted(self, handler: Any) -> Any:
        def counted(fields: Any) -> None:
            self.count += 1
            handler(fields)
        return counted


def takes_clock() -> bool:
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

    return "clock" in inspect.signature(IBKRIBInsyncApi.__init__).parameters


@contextmanager
def adapter_days(api: Any, clock: FixedClock) -> Iterator[str]:
    """Make the adapter see ``clock``'s trading day; yields how (for the notes)."""
    if takes_clock():
        yield "the adapter's injected clock (clock=FixedClock, moved a day per session)"
        return
    api.clock = clock  # retention reads api.clock
    from src.brokers import market_data

    class ClockDate(date):
        @classmethod
        def today(cls) -> date:
            return trading_date(clock)

    old = market_data.date
    market_data.date = ClockDate  # type: ignore[misc]
    try:
        yield ("api.clock (retention) + market_data.date substituted by the bench "
               "(the adapter takes no clock= yet)")
    finally:
        market_data.date = old  # type: ignore[misc]


def _spreads(options: list[Any]) -> list[Any]:
    from src.models.option import OptionSpread

    calls = sorted((o for o in options if o.option_type == "call"),
                   key=lambda o: (o.expiration, o.strike))
    out = []
    for a, b in zip(calls, calls[1:], strict=False):
        if a.expiration == b.expiration and a.strike < b.strike:
            out.append(OptionSpread(symbol=SYMBOL, spread_type="BULL_CALL", long_leg=a,
                                    short_leg=b))
    return out


def _mid(spread: Any) -> float:
    long_mid = (spread.long_leg.bid + spread.long_leg.ask) / 2
    short_mid = (spread.short_leg.bid + spread.short_leg.ask) / 2
    return round(max(0.05, long_mid - short_mid), 2)


class Workload:
    """One day's orders and chain calls against ``api`` (threads; public API only)."""

    def __init__(self, api: Any, day: Day, orders: int, chains: int, seed: int) -> None:
        self.api = api
        self.day = day
        self.n_orders = orders
        self.n_chains = chains
        self.rng = random.Random(seed)
        self.spreads: list[Any] = []
        self.resting: list[str] = []
        self.lock = threading.Lock()

    def chain(self) -> None:
        options = self.api.get_option_chain(SYMBOL)
        with self.lock:
            self.day.chains += 1
            self.day.chain_options += len(options)
            self.day.expirations.update(o.expiration.isoformat() for o in options)
            spreads = _spreads(options)
            if spreads:
                self.spreads = spreads

    def chains_loop(self, interval: float) -> None:
        for _ in range(self.n_chains - 1):
            self.chain()
            time.sleep(interval)

    def orders_loop(self) -> None:
        api = self.api
        for i in range(self.n_orders):
            with self.lock:
                spread = self.rng.choice(self.spreads)
            kind = ("fill", "cancel", "fill", "rest")[i % 4]
            price = {"fill": 25.0, "cancel": 0.05, "rest": _mid(spread)}[kind]
            try:
                order_id = api.place_order(SYMBOL, "LONG", 1, spread, "LIMIT", price)
            except (RuntimeError, ValueError):
                self.day.order_errors += 1
                continue
            self.day.orders += 1
            if kind == "cancel":
                api.cancel_order(order_id)
            elif kind == "rest":
                self.resting.append(order_id)

    def close_day(self) -> None:
        """Cancel what still rests; count the day's outcomes from the adapter's records."""
        api = self.api
        for order_id in self.resting:
            if api.get_order_status(order_id).get("status") == "Filled":
                self.day.rested_filled += 1
            else:
                api.cancel_order(order_id)


def session_days(first: date, n: int) -> list[date]:
    """``n`` weekdays from ``first`` (the simulated week has no holiday)."""
    out, day = [], first
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def _wait(cond: Any, timeout: float, what: str) -> float:
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"week bench: {what} within {timeout:.0f} s")
        time.sleep(0.02)
    return time.perf_counter() - t0


def _count_outcomes(api: Any, day: Day, first_id: int) -> None:
    with api.lock:
        mine = [r for k, r in api.orders.items() if k.isdigit() and int(k) >= first_id]
    day.filled = sum(r.get("status") == "Filled" for r in mine)
    day.cancelled = sum(r.get("status") in ("Cancelled", "ApiCancelled") for r in mine)


def run(sessions: int = 5, orders: int = 2000, chains: int = 500, ticks: int = 1_000_000,
        streams: int = 20, step: float = 0.02, retention_days: int = 1
        ) -> tuple[list[Section], list[Target]]:
    import logging

    from src.app.config import Config
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi
    from src.brokers.retention import table_sizes

    # ib_insync logs an ERROR per refused reconnect attempt and per stream the adapter
    # re-requests after a reconnect
    # ("cancelMktData: No reqId found"): noise here, reported in docs/performance.md
    for name in ("ib_insync.ib", "ib_insync.client", "ib_async.ib", "ib_async.client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    universe = wide_universe(streams)
    symbols = [s for s in stock_symbols(universe)][:streams]
    per_orders, per_chains = -(-orders // sessions), -(-chains // sessions)
    per_ticks = -(-ticks // sessions)
    calendar = session_days(FIRST_DAY, sessions)
    clock = FixedClock.new_york(calendar[0])
    days: list[Day] = []
    client_id = next_client_id()
    with tempfile.TemporaryDirectory() as tmp:
        uni_path = Path(tmp) / "universe.yaml"
        uni_path.write_text(yaml.safe_dump(universe), encoding="utf-8")
        gw = GatewayProcess(step_seconds=step, universe=uni_path)
        port = gw.start(calendar[0])
        config = Config().replace(
            IBKR_HOST="127.0.0.1", IBKR_PORT=port, IBKR_CLIENT_ID=client_id,
            IBKR_AUTO_RECONNECT=True, IBKR_RECONNECT_BASE=0.05, IBKR_RECONNECT_CAP=0.5,
            IBKR_REQUEST_TIMEOUT=5.0, IBKR_MAX_STREAMS=max(streams, 1),
            IBKR_ORDER_RETENTION_DAYS=retention_days, IBKR_RETENTION_SWEEP=1.0)
        api = (IBKRIBInsyncApi(config, clock=clock) if takes_clock()  # type: ignore[call-arg]
               else IBKRIBInsyncApi(config))
        try:
            with adapter_days(api, clock) as how_days:
                if not api.connect():
                    raise RuntimeError("week bench: adapter failed to connect")
                counter = TickCounter(api)
                for k, today in enumerate(calendar):
                    day = Day(today)
                    if k:
                        next_id = int(api._loop.call(lambda: api.ib.client._reqIdSeq))
                        gw.stop()
                        clock.set(FixedClock.new_york(today).now())
                        t0 = time.perf_counter()
                        gw.start(today, {client_id: next_id})
                        _wait(lambda: api.connected and not api.connection.reconnecting,
                              RECONNECT_TIMEOUT, "no reconnect after the daily restart")
                        day.reconnect_s = time.perf_counter() - t0
                    first_id = int(api._loop.call(lambda: api.ib.client._reqIdSeq))
                    ticks0 = counter.count
                    t_day = time.perf_counter()
                    for sym in symbols:
                        api.get_market_data(sym)
                    work = Workload(api, day, per_orders, per_chains, seed=k)
                    work.chain()
                    if not work.spreads:
                        raise RuntimeError("week bench: the chain returned no spread")
                    threads = [threading.Thread(target=work.orders_loop, daemon=True),
                               threading.Thread(target=work.chains_loop, args=(0.02,),
                                                daemon=True)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    work.close_day()
                    _wait(lambda t0=ticks0: counter.count - t0 >= per_ticks, TICK_WAIT_TIMEOUT,
                          f"fewer than {per_ticks} ticks")
                    day.ticks = counter.count - ticks0
                    day.seconds = time.perf_counter() - t_day
                    _count_outcomes(api, day, first_id)
                    gc.collect()
                    day.rss_mb = rss_mb()
                    day.tables = api._loop.call(lambda: table_sizes(api))
                    days.append(day)
        finally:
            api.close()
            gw.stop()
    return _report(days, orders, chains, ticks, streams, step, retention_days, how_days)


def growing_tables(days: list[Day]) -> list[str]:
    """Tables above their steady-state size (max after days 2-3) after the last day."""
    if len(days) < 4:
        return []
    last = days[-1].tables
    out = []
    factor, extra = GROWTH_SLACK
    for name, size in last.items():
        steady = max(d.tables.get(name, 0) for d in days[1:3])
        if size > steady * factor + extra and size > CAPPED.get(name, -1):
            out.append(f"{name} {steady}->{size}")
    return out


def _report(days: list[Day], orders: int, chains: int, ticks: int, streams: int, step: float,
            retention_days: int, how_days: str) -> tuple[list[Section], list[Target]]:
    names = sorted({n for d in days for n in d.tables})
    headers = ["table / figure"] + [f"{d.day:%a %m-%d}" for d in days]
    rows: list[list[Any]] = [
        ["RSS MB", *[d.rss_mb for d in days]],
        ["orders placed", *[d.orders for d in days]],
        ["  filled", *[d.filled for d in days]],
        ["  of them resting, then filled", *[d.rested_filled for d in days]],
        ["  cancelled", *[d.cancelled for d in days]],
        ["  refused/errors", *[d.order_errors for d in days]],
        ["chain calls", *[d.chains for d in days]],
        ["chain expirations seen", *[",".join(e[5:] for e in sorted(d.expirations))
                                     for d in days]],
        ["ticks decoded", *[d.ticks for d in days]],
        ["day seconds", *[d.seconds for d in days]],
        ["reconnect s", *[d.reconnect_s if d.reconnect_s is not None else "" for d in days]],
    ]
    rows += [[n, *[d.tables.get(n, "") for d in days]] for n in names
             if any(d.tables.get(n) for d in days)]
    total_orders = sum(d.orders for d in days)
    total_chains = sum(d.chains for d in days)
    total_ticks = sum(d.ticks for d in days)
    growth = days[-1].rss_mb - days[0].rss_mb if days else float("nan")
    growing = growing_tables(days)
    expirations = set().union(*(d.expirations for d in days)) if days else set()
    first = days[0].expirations if days else set()
    section = Section(
        name="week: five trading days, daily gateway restart (memory and tables after each day)",
        headers=headers, rows=rows,
        notes=[f"{len(days)} days x ({-(-orders // max(1, len(days)))} orders, "
               f"{-(-chains // max(1, len(days)))} chain calls, >= "
               f"{-(-ticks // max(1, len(days)))} ticks); {streams} stock streams + the AAPL "
               f"chain's 48 streaming option lines; market step {step:g} s; each day a new "
               "gateway process (its memory not counted) on the same port",
               "orders: 1/2 marketable limits (fill at once), 1/4 far limits cancelled, "
               "1/4 at the mid (rest; filled if the market comes, else cancelled at the end "
               "of the day); the simulator fills whole orders only: no partial fills",
               f"retention: order_retention_days {retention_days}, ticker_retention 3600 s, "
               "retention_sweep 1 s (compressed days); trading day from " + how_days,
               "tables measured after each day, before the restart (ib_insync's tables are "
               "reset by ib_insync itself when the socket closes); RSS after gc.collect(), "
               "VmRSS of this process",
               "growing: a table whose size after the last day exceeds its size after days "
               "2-3 by more than 10 % + 10 entries (connection.delays, the backoff delays, is "
               f"capped at its last {DIAGNOSTIC_KEEP} by the retention: growing only above)"],
        data={"days": [d.as_dict() for d in days], "rss_growth_mb": growth,
              "growing": growing, "expirations": sorted(expirations),
              "retention_days": retention_days},
    )
    n = max(1, len(days))
    targets = [
        Target("week: orders placed", total_orders, ">=", orders,
               f"{sum(d.filled for d in days)} filled, "
               f"{sum(d.cancelled for d in days)} cancelled, "
               f"{sum(d.order_errors for d in days)} errors"),
        Target("week: chain calls", total_chains, ">=", chains,
               f"{len(expirations)} expirations over the week (first day {len(first)}): "
               "expirations roll"),
        Target("week: chain expirations rolled", len(expirations - first), ">=", 1,
               "expirations seen after day 1 that day 1 did not list"),
        Target("week: ticks decoded", total_ticks, ">=", ticks, f"{total_ticks / n:,.0f} a day"),
        Target("week: RSS growth after day 1 (MB)", growth, "<=", RSS_GROWTH_MB,
               " -> ".join(f"{d.rss_mb:.1f}" for d in days)),
        Target("week: tables growing without bound", len(growing), "==", 0,
               "; ".join(growing) or "none"),
    ]
    return [section], targets
