"""Turns a signal into a spread order on the live option chain, and follows it to the end.

``TradeExecutor.execute(signal)`` picks the spread from ``broker.get_option_chain`` (the nearest
expiration that has both legs: LONG → BULL_CALL, long the call nearest the money and short the
next higher strike; SHORT → BEAR_PUT, long the put nearest the money and short the next lower),
prices a LIMIT at the spread's mid debit rounded to 0.05 unless the signal names one, and
buys the spread (a debit spread is always bought: the signal's direction picks the spread,
the order's direction is "LONG"). Trades that cannot be sent because the broker is not
connected are queued and retried by :meth:`process_queued_trades`, which also follows placed
orders until they reach a final status. Given the :class:`RiskManager`, it asks its
``check_margin`` (IB's what-if) for the chosen spread and price before sending anything. A
placed order that filled in part and still works is kept working
(``trader.partial_fill_policy: keep``) or has its rest cancelled once
``trader.partial_fill_timeout_seconds`` passed since it was first seen partly filled
(``cancel_rest``); the time comes from the injected clock.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from src.app.config import ConfigError, setting
from src.app.risk import RiskManager
from src.app.signals import Signal
from src.brokers.base import FINAL_STATUSES, BrokerApi
from src.models.option import Option, OptionSpread, SpreadType
from src.utils.clock import SYSTEM_CLOCK, Clock
from src.utils.logger import log_error, log_info, log_warning

TICK = 0.05  # limit prices are rounded to this increment
MAX_ATTEMPTS = 5  # queued placement retries before a trade is given up
PARTIAL_FILL_POLICIES = ("keep", "cancel_rest")


@dataclass
class TradeRecord:
    """One signal's trade: the spread chosen, the order sent, and where it stands."""

    signal: Signal
    status: str = "NEW"  # NEW, QUEUED, PLACED, FAILED, or the order's final broker status
    spread: OptionSpread | None = None
    order_id: str | None = None
    limit_price: float | None = None
    attempts: int = 0
    error: str | None = None
    order: dict[str, Any] = field(default_factory=dict)  # the broker's last order status
    partial_since: datetime | None = None  # first seen partly filled and still working
    rest_cancelled: bool = False  # cancel_rest: the cancel of the rest was sent


def round_to_tick(price: float, tick: float = TICK) -> float:
    """``price`` rounded to the nearest ``tick`` (never below one tick)."""
    return max(tick, round(round(price / tick) * tick, 2))


def select_spread(chain: list[Option], symbol: str, direction: str,
                  spot: float | None = None) -> OptionSpread:
    """The spread for ``direction`` from ``chain``; ``ValueError`` if the chain has none.

    ``spot`` is the underlying price; without it, "at the money" is the strike whose delta is
    nearest ±0.5.
    """
    right = "call" if direction == "LONG" else "put"
    spread_type: SpreadType = "BULL_CALL" if direction == "LONG" else "BEAR_PUT"
    by_expiry: dict[date, list[Option]] = {}
    for option in chain:
        if option.underlying == symbol and option.option_type == right:
            by_expiry.setdefault(option.expiration, []).append(option)
    for expiration in sorted(by_expiry):
        legs = sorted(by_expiry[expiration], key=lambda o: o.strike)
        if len(legs) < 2:
            continue

        def distance(o: Option) -> float:
            if spot is not None:
                return abs(o.strike - spot)
            return abs(abs(o.delta) - 0.5)

        i = min(range(len(legs)), key=lambda k: (distance(legs[k]), legs[k].strike))
        j = i + 1 if direction == "LONG" else i - 1
        if not 0 <= j < len(legs):
            continue
        return OptionSpread(symbol=symbol, spread_type=spread_type, long_leg=legs[i],
                            short_leg=legs[j])
    raise ValueError(f"option chain for {symbol} has no {spread_type} spread "
                     f"({len(chain)} options)")


class TradeExecutor:
    """Places spread orders for signals and follows them (see the module docstring)."""

    def __init__(self, config: object, broker: BrokerApi, risk: RiskManager | None = None,
                 *, clock: Clock | None = None) -> None:
        self.config = config
        self.broker = broker
        self.risk = risk  # its check_margin runs before each placement
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.max_attempts: int = setting(config, "EXECUTOR_MAX_ATTEMPTS", MAX_ATTEMPTS)
        self.partial_policy: str = setting(config, "PARTIAL_FILL_POLICY", "keep")
        if self.partial_policy not in PARTIAL_FILL_POLICIES:
            raise ConfigError(f"trader.partial_fill_policy must be one of "
                              f"{list(PARTIAL_FILL_POLICIES)}, got {self.partial_policy!r}")
        self.partial_timeout: float = setting(config, "PARTIAL_FILL_TIMEOUT", 60.0)
        if not 0 <= self.partial_timeout < float("inf"):
            raise ConfigError("trader.partial_fill_timeout_seconds must be a finite number "
                              f">= 0, got {self.partial_timeout!r}")
        self.trades: dict[str, TradeRecord] = {}  # by signal id
        self._queue: deque[TradeRecord] = deque()
        self._lock = threading.RLock()
        try:
            params = inspect.signature(broker.place_order).parameters
            self._supports_ref = "order_ref" in params
        except (TypeError, ValueError):
            self._supports_ref = False

    # -- selection -------------------------------------------------------------------------

    def select_spread(self, symbol: str, direction: str) -> OptionSpread:
        """The spread for a signal, from the broker's live chain and quote."""
        chain = self.broker.get_option_chain(symbol)
        if not chain:
            raise ValueError(f"no option chain for {symbol}")
        quote = self.broker.get_market_data(symbol)
        spot = _spot(quote)
        return select_spread(chain, symbol, direction, spot)

    # -- execution -------------------------------------------------------------------------

    def execute(self, signal: Signal) -> TradeRecord:
        """Pick the spread and send the order now; queue it if the broker is not connected."""
        with self._lock:
            record = self.trades.get(signal.id)
            if record is not None and record.status != "QUEUED":
                return record  # already handled: never send a signal twice
            record = record or TradeRecord(signal=signal)
            self.trades[signal.id] = record
        self._attempt(record)
        return record

    def queue_trade(self, signal: Signal) -> TradeRecord:
        """Queue ``signal`` for :meth:`process_queued_trades`."""
        with self._lock:
            record = self.trades.setdefault(signal.id, TradeRecord(signal=signal))
            if record.status == "NEW":
                record.status = "QUEUED"
                self._queue.append(record)
            return record

    def _attempt(self, record: TradeRecord) -> None:
        with self._lock:
            if record.status not in ("NEW", "QUEUED"):
                return  # placed or finished: never send twice
            record.attempts += 1
        signal = record.signal
        if not self.broker.connected:
            self._requeue(record, "broker not connected")
            return
        try:
            spread = self.select_spread(signal.symbol, signal.direction)
            limit = None
            if signal.price_type == "LIMIT":
                limit = signal.limit_price or round_to_tick(spread.net_debit)
            if self.risk is not None:
                ok, why = self.risk.check_margin(signal.symbol, "LONG", signal.contracts, spread,
                                                 signal.price_type, limit)
                if not ok:
                    with self._lock:
                        record.spread, record.limit_price = spread, limit
                    self._fail(record, f"refused by risk: {why}")
                    return
            kwargs: dict[str, Any] = {"order_ref": signal.id} if self._supports_ref else {}
            order_id = self.broker.place_order(signal.symbol, "LONG", signal.contracts, spread,
                                               signal.price_type, limit, **kwargs)
        except ValueError as e:
            if not self.broker.connected:
                self._requeue(record, str(e))
                return
            self._fail(record, str(e))
            return
        except Exception as e:  # RuntimeError: the broker refused; anything else: a bug
            self._fail(record, str(e))
            return
        with self._lock:
            record.spread, record.limit_price, record.order_id = spread, limit, order_id
            record.status, record.error = "PLACED", None
            record.order = self.broker.get_order_status(order_id)
        log_info(f"Signal {signal.id}: placed order #{order_id} {spread.spread_type} "
                 f"{spread.long_leg.strike:g}/{spread.short_leg.strike:g} "
                 f"{spread.expiration} x{signal.contracts} {signal.price_type}"
                 + (f" @ {limit:.2f}" if limit is not None else ""))

    def _requeue(self, record: TradeRecord, why: str) -> None:
        with self._lock:
            if record.attempts >= self.max_attempts:
                self._fail(record, f"gave up after {record.attempts} attempts: {why}")
                return
            record.status, record.error = "QUEUED", why
            if record not in self._queue:
                self._queue.append(record)
        log_warning(f"Signal {record.signal.id} queued ({why})")

    def _fail(self, record: TradeRecord, why: str) -> None:
        with self._lock:
            record.status, record.error = "FAILED", why
        log_error(f"Signal {record.signal.id} failed: {why}")

    # -- follow-up -------------------------------------------------------------------------

    def process_queued_trades(self) -> int:
        """Retry queued trades (once each) and refresh placed orders; how many changed."""
        changed = 0
        with self._lock:
            pending = list(self._queue)
            self._queue.clear()
        for record in pending:
            self._attempt(record)
            changed += record.status != "QUEUED"
        with self._lock:
            placed = [r for r in self.trades.values() if r.status == "PLACED" and r.order_id]
        for record in placed:
            status = self.broker.get_order_status(record.order_id or "")
            if not status:
                continue
            with self._lock:
                record.order = status
                if status.get("status") in FINAL_STATUSES:
                    record.status = str(status["status"])
                    changed += 1
                    log_info(f"Order #{record.order_id} {record.status}"
                             + (f" at {status['filled_price']}"
                                if status.get("filled_price") is not None else ""))
                    continue
                due = self._rest_due(record, status)
            if due:
                self._cancel_rest(record, status)
        return changed

    def _rest_due(self, record: TradeRecord, status: dict[str, Any]) -> bool:
        """``cancel_rest``: the working order filled in part long enough ago (lock held)."""
        filled, remaining = status.get("filled") or 0.0, status.get("remaining") or 0.0
        if self.partial_policy != "cancel_rest" or record.rest_cancelled \
                or not (filled > 0 and remaining > 0):
            return False
        now = self.clock.now()
        if record.partial_since is None:
            record.partial_since = now
        return (now - record.partial_since).total_seconds() >= self.partial_timeout

    def _cancel_rest(self, record: TradeRecord, status: dict[str, Any]) -> None:
        if not self.broker.connected:
            return  # tried again on the next call
        with self._lock:
            record.rest_cancelled = True
        sent = self.broker.cancel_order(record.order_id or "")
        log_info(f"Order #{record.order_id}: {status.get('filled')} of "
                 f"{status.get('contracts')} filled after {self.partial_timeout:g}s; "
                 + ("the rest is cancelled (trader.partial_fill_policy: cancel_rest)" if sent
                    else "the cancel of the rest was refused; following the order"))

    @property
    def queued(self) -> int:
        with self._lock:
            return len(self._queue)


def _spot(quote: dict[str, Any]) -> float | None:
    if not isinstance(quote, dict) or "error" in quote:
        return None
    bid, ask, last = quote.get("bid"), quote.get("ask"), quote.get("last")
    if isinstance(bid, (int, float)) and isinstance(ask, (int, float)) and 0 < bid <= ask:
        return (bid + ask) / 2
    if isinstance(last, (int, float)) and last > 0:
        return float(last)
    return None
