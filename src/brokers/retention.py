"""Retention: what a long-running adapter releases so its memory stays flat over days.

A Trader stays connected for days (the gateway restarts daily, the process does not). Without
this module three tables grow for ever: the adapter's order records (``api.orders`` and the
order service's per-order tables), ib_insync's ``Trade``/``Fill`` tables (within a connection:
ib_insync resets them only when the socket closes) and ib_insync's ``tickers`` (one ``Ticker``
per contract ever quoted, snapshots included). The policy:

* **finished orders** of an earlier day keep their record (``get_order_status`` answers from
  it) but no longer hold ib_insync's ``Trade`` object (a ``Trade`` with its ``Order``, fills and
  log is ~20 KB; ib_insync itself dropped it at the reconnect);
* **finished orders** (Filled, Cancelled, ApiCancelled, Inactive) are released
  ``order_retention_days`` calendar days (New York) after the day a sweep first saw them
  finished — from the adapter's tables and from ib_insync's (``trades``, ``permId2Trade``,
  ``fills``). Open orders and orders finished today are never released: every id a user can
  still ask about keeps answering. Done ib_insync Trades no adapter order holds (other clients'
  orders) age the same way;
* **idle tickers** — ib_insync tickers no market-data line serves any more (no ``reqId``) —
  are released once they have been idle for ``ticker_retention`` seconds;
* **leg conIds** of expired options are forgotten (they never trade again); diagnostic lists
  (the reconnect supervisor's backoff delays) keep their last ``DIAGNOSTIC_KEEP`` entries.

Everything is pure functions over the tables, plus :class:`RetentionHook`, which the adapter
calls after every (re)connect and which sweeps every ``retention_sweep`` seconds on the loop
thread (an order is stamped "finished on day D" by the first sweep that sees it finished).
The day comes from ``api.clock`` (the injected :class:`~src.utils.clock.Clock`) when the
adapter has one, else the system clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from src.utils.clock import SYSTEM_CLOCK, Clock, trading_date
from src.utils.logger import log_info

if TYPE_CHECKING:
    from src.brokers.ib_client import IBKRClient
    from src.brokers.orders_service import OrderService
    from src.brokers.state import AdapterState

#: Order statuses after which nothing more happens (as ``translate.TERMINAL_STATUSES``).
FINISHED = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
#: ib_insync's ``OrderStatus.DoneStates``.
IB_DONE = frozenset({"Filled", "Cancelled", "ApiCancelled"})

DEFAULT_ORDER_DAYS = 1
DEFAULT_TICKER_SECONDS = 3600.0
DEFAULT_SWEEP_SECONDS = 600.0
#: Diagnostic lists (e.g. the reconnect supervisor's backoff delays) keep their last entries.
DIAGNOSTIC_KEEP = 100


@dataclass(frozen=True)
class RetentionPolicy:
    """How long finished orders (days) and idle tickers (seconds) are kept; how often to sweep."""

    order_days: int = DEFAULT_ORDER_DAYS
    ticker_seconds: float = DEFAULT_TICKER_SECONDS
    sweep_seconds: float = DEFAULT_SWEEP_SECONDS

    def __post_init__(self) -> None:
        if isinstance(self.order_days, bool) or not isinstance(self.order_days, int) \
                or self.order_days < 0:
            raise ValueError("order_retention_days (ibkr.order_retention_days) must be an int "
                             f">= 0, got {self.order_days!r}")
        if not self.ticker_seconds >= 0:
            raise ValueError("ticker_retention (ibkr.ticker_retention) must be >= 0 seconds, "
                             f"got {self.ticker_seconds!r}")
        if not self.sweep_seconds > 0:
            raise ValueError("retention_sweep (ibkr.retention_sweep) must be > 0 seconds, "
                             f"got {self.sweep_seconds!r}")


# ---------------------------------------------------------------- pure functions


def stamp_finished(statuses: Mapping[Any, str], stamps: MutableMapping[Any, date],
                   today: date) -> None:
    """Stamp every finished key not stamped yet with ``today``; forget keys that are gone or
    no longer finished (a modified order can reopen)."""
    for key in [k for k in stamps if statuses.get(k) not in FINISHED]:
        del stamps[key]
    for key, status in statuses.items():
        if status in FINISHED and key not in stamps:
            stamps[key] = today


def expired(stamps: Mapping[Any, date], today: date, days: int) -> list[Any]:
    """Keys stamped more than ``days`` days before ``today`` (today's never are)."""
    cutoff = today - timedelta(days=days)
    return [k for k, day in stamps.items() if day < cutoff]


def idle_tickers(tickers: Mapping[int, Any], live: Iterable[Any], idle_since: MutableMapping[int,
                 datetime], now: datetime, seconds: float) -> list[int]:
    """Keys of ``tickers`` idle (not in ``live``) for at least ``seconds``: ``idle_since``
    records when a sweep first saw each one idle (a ticker that went live again is forgotten)."""
    live_ids = {id(t) for t in live}
    for key in [k for k in idle_since
                if k not in tickers or id(tickers[k]) in live_ids]:
        del idle_since[key]
    out = []
    for key, ticker in tickers.items():
        if id(ticker) in live_ids:
            continue
        since = idle_since.setdefault(key, now)
        if (now - since).total_seconds() >= seconds:
            out.append(key)
    return out


def expired_legs(con_ids: Mapping[tuple[str, str, float, str], int],
                 today: date) -> list[tuple[str, str, float, str]]:
    """Leg cache keys ``(symbol, YYYYMMDD, strike, right)`` of options expired before today."""
    floor = today.strftime("%Y%m%d")
    return [k for k in con_ids if isinstance(k[1], str) and len(k[1]) >= 8 and k[1][:8] < floor]


def fill_keys_of(fills: Mapping[str, Any], perm_ids: set[int],
                 order_keys: set[tuple[Any, Any]]) -> list[str]:
    """execIds of ``fills`` that belong to the given orders (by permId, or clientId/orderId)."""
    out = []
    for exec_id, fill in fills.items():
        ex = getattr(fill, "execution", None)
        perm = getattr(ex, "permId", 0)
        key = (getattr(ex, "clientId", None), getattr(ex, "orderId", None))
        if (perm and perm in perm_ids) or key in order_keys:
            out.append(exec_id)
    return out


# ---------------------------------------------------------------- the hook


@dataclass
class Released:
    """What one sweep released (counts), for the log and the benchmark."""

    orders: int = 0
    unlinked: int = 0
    ib_trades: int = 0
    ib_fills: int = 0
    tickers: int = 0
    legs: int = 0

    def total(self) -> int:
        return (self.orders + self.unlinked + self.ib_trades + self.ib_fills + self.tickers
                + self.legs)


class RetentionView:
    """What the retention hook may touch: the client's session, the adapter's state and its
    order service (never the facade). Attribute names as the facade's, for ``table_sizes``."""

    def __init__(self, client: IBKRClient, state: AdapterState, order_service: OrderService
                 ) -> None:
        self.client, self.state, self.order_service = client, state, order_service

    clock = property(lambda self: self.client.clock)
    closing = property(lambda self: self.client.closing)
    ib = property(lambda self: self.client.ib)
    connection = property(lambda self: self.client.connection)
    lock = property(lambda self: self.state.lock)
    orders = property(lambda self: self.state.orders)


@dataclass
class RetentionHook:
    """Runs the policy for one adapter (every method on the loop thread)."""

    api: RetentionView
    policy: RetentionPolicy
    order_stamps: dict[str, date] = field(default_factory=dict)
    trade_stamps: dict[Any, date] = field(default_factory=dict)
    ticker_idle: dict[int, datetime] = field(default_factory=dict)
    _timer: asyncio.TimerHandle | None = None

    def clock(self) -> Clock:
        clock = getattr(self.api, "clock", None)
        return clock if isinstance(clock, Clock) else SYSTEM_CLOCK

    def after_connect(self) -> None:
        """Sweep now and keep sweeping every ``sweep_seconds`` (re-armed on each connect)."""
        self.sweep()
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.policy.sweep_seconds, self._tick)

    def _tick(self) -> None:
        self._timer = None
        try:
            self.sweep()
        finally:
            if not getattr(self.api, "closing", False):
                self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def sweep(self) -> Released:
        """Stamp what finished, release what is past the retention (adapter and ib_insync)."""
        api = self.api
        clock = self.clock()
        today = trading_date(clock)
        released = Released()
        released.orders, released.unlinked = self._release_orders(today)
        released.ib_trades, released.ib_fills = self._release_ib_trades(today)
        released.tickers = self._release_tickers(clock.now())
        service = getattr(api, "order_service", None)
        con_ids = getattr(service, "con_ids", None)
        if isinstance(con_ids, dict):
            for key in expired_legs(con_ids, today):
                del con_ids[key]
                released.legs += 1
        delays = getattr(getattr(api, "connection", None), "delays", None)
        if isinstance(delays, list) and len(delays) > DIAGNOSTIC_KEEP:
            del delays[:-DIAGNOSTIC_KEEP]
        if released.total():
            log_info(f"Retention released {released.orders} finished orders "
                     f"({released.unlinked} more kept without their ib_insync Trade), "
                     f"{released.ib_trades} ib_insync trades, {released.ib_fills} fills, "
                     f"{released.tickers} idle tickers, {released.legs} expired legs")
        return released

    def _release_orders(self, today: date) -> tuple[int, int]:
        """Release the expired finished orders; unlink the Trade of those finished on an
        earlier day. Returns (released, unlinked)."""
        api = self.api
        with api.lock:
            statuses = {k: str(r.get("status", "")) for k, r in api.orders.items()}
        stamp_finished(statuses, self.order_stamps, today)
        gone = expired(self.order_stamps, today, self.policy.order_days)
        service = getattr(api, "order_service", None)
        trades = getattr(service, "trades", {})
        by_trade = getattr(service, "_by_trade", {})
        refs = getattr(service, "refs", {})
        errors = getattr(service, "errors", {})
        earlier = [k for k, day in self.order_stamps.items() if day < today and k in trades]
        with api.lock:
            for order_id in earlier:
                trade = trades.pop(order_id)
                by_trade.pop(id(trade), None)
            for order_id in gone:
                record = api.orders.pop(order_id, None)
                trade = trades.pop(order_id, None)
                if trade is not None:
                    by_trade.pop(id(trade), None)
                errors.pop(order_id, None)
                ref = record.get("order_ref") if record else None
                if isinstance(ref, str) and refs.get(ref) == order_id:
                    del refs[ref]
                del self.order_stamps[order_id]
        unlinked = len([k for k in earlier if k not in gone])
        return len(gone), unlinked

    def _release_ib_trades(self, today: date) -> tuple[int, int]:
        wrapper = getattr(getattr(self.api, "ib", None), "wrapper", None)
        table = getattr(wrapper, "trades", None)
        if not isinstance(table, dict):
            return 0, 0
        statuses = {k: _ib_status(t) for k, t in table.items()}
        stamp_finished(statuses, self.trade_stamps, today)
        held = {id(t) for t in getattr(getattr(self.api, "order_service", None), "trades",
                                       {}).values()}
        gone = [k for k in expired(self.trade_stamps, today, self.policy.order_days)
                if id(table[k]) not in held]
        perm_ids: set[int] = set()
        order_keys: set[tuple[Any, Any]] = set()
        perm_table = getattr(wrapper, "permId2Trade", {})
        for key in gone:
            trade = table.pop(key)
            del self.trade_stamps[key]
            order = getattr(trade, "order", None)
            perm = getattr(order, "permId", 0)
            if perm:
                perm_ids.add(perm)
                if perm_table.get(perm) is trade:
                    del perm_table[perm]
            order_keys.add((getattr(order, "clientId", None), getattr(order, "orderId", None)))
        fills = getattr(wrapper, "fills", None)
        n_fills = 0
        if gone and isinstance(fills, dict):
            for exec_id in fill_keys_of(fills, perm_ids, order_keys):
                del fills[exec_id]
                n_fills += 1
        return len(gone), n_fills

    def _release_tickers(self, now: datetime) -> int:
        wrapper = getattr(getattr(self.api, "ib", None), "wrapper", None)
        tickers = getattr(wrapper, "tickers", None)
        live = getattr(wrapper, "reqId2Ticker", None)
        if not isinstance(tickers, dict) or not isinstance(live, dict):
            return 0
        gone = idle_tickers(tickers, live.values(), self.ticker_idle, now,
                            self.policy.ticker_seconds)
        pending: set[Any] = getattr(wrapper, "pendingTickers", set())
        for key in gone:
            ticker = tickers.pop(key)
            self.ticker_idle.pop(key, None)
            pending.discard(ticker)
        return len(gone)


def _ib_status(trade: Any) -> str:
    status = str(getattr(getattr(trade, "orderStatus", None), "status", "") or "")
    return status if status in IB_DONE or status == "Inactive" else "open"


def table_sizes(api: Any) -> dict[str, int]:
    """Sizes of every table that could grow, the adapter's and ib_insync's (diagnostics)."""
    out: dict[str, int] = {}

    def put(name: str, value: Any) -> None:
        if value is not None:
            with contextlib.suppress(TypeError):
                out[name] = len(value)

    put("adapter.orders", getattr(api, "orders", None))
    put("adapter.positions", getattr(api, "positions", None))
    service = getattr(api, "order_service", None)
    for name in ("trades", "_by_trade", "refs", "con_ids", "errors", "_ack", "_cancel",
                 "_placing"):
        put(f"orders_service.{name}", getattr(service, name, None))
    market = getattr(api, "market_service", None)
    for name in ("streams", "stocks", "secdefs", "expiry_contracts"):
        put(f"market.{name}", getattr(market, name, None))
    lines = getattr(market, "chain_lines", None)
    if lines is not None:
        count = getattr(lines, "count", None)
        if callable(count):
            out["market.chain_lines"] = int(count())
        for name in ("lines", "_timers", "_waiting", "_in_use"):
            put(f"chain_lines.{name}", getattr(lines, name, None))
    inflight = getattr(api, "_inflight", None)
    for name in ("_tasks", "_aborted"):
        put(f"inflight.{name}", getattr(inflight, name, None))
    put("adapter.data_health", getattr(api, "data_health", None))
    delays = getattr(getattr(api, "connection", None), "delays", None)
    put("connection.delays", delays)
    hook = getattr(api, "retention", None)
    for name in ("order_stamps", "trade_stamps", "ticker_idle"):
        put(f"retention.{name}", getattr(hook, name, None))
    wrapper = getattr(getattr(api, "ib", None), "wrapper", None)
    for name in ("trades", "permId2Trade", "fills", "tickers", "pendingTickers",
                 "reqId2Ticker", "_futures", "_results", "_reqId2Contract", "accountValues",
                 "acctSummary", "newsTicks", "msgId2NewsBulletin", "reqId2Subscriber",
                 "reqId2PnL", "reqId2PnlSingle"):
        put(f"ib.{name}", getattr(wrapper, name, None))
    if wrapper is not None:
        out["ib.ticker2ReqId"] = sum(len(v) for v in getattr(wrapper, "ticker2ReqId",
                                                             {}).values())
        out["ib.portfolio"] = sum(len(v) for v in getattr(wrapper, "portfolio", {}).values())
        out["ib.positions"] = sum(len(v) for v in getattr(wrapper, "positions", {}).values())
        trades = getattr(wrapper, "trades", {})
        out["ib.trade_log_entries"] = sum(len(getattr(t, "log", ())) for t in trades.values())
    return out
