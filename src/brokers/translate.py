"""Pure translation between ib_insync objects and the contract's dicts / models.

No I/O, no state, no clocks (callers pass ``now``): every function is unit-tested alone
(tests/unit/test_translate.py); lookup tables are module constants.

IB conventions handled here:

* unset prices are ``nan`` (ib_insync) and sometimes ``-1`` (IB "no quote") or
  ``1.7976931348623157e308`` (UNSET_DOUBLE) → ``None`` in market data dicts, ``0.0`` in ``Option``;
* ``OptionComputation`` has no ``rho`` → ``Option.rho`` is ``0.0``; account values are strings,
  per currency → floats, USD (or currency-less) rows only; ``data_type`` from marketDataType.

ib_insync 0.9.86 and ib_async 2.x differ here (the rules live in
:mod:`src.brokers.compat`, tested in tests/unit/test_client_library.py):

* ``qualifyContracts`` drops what it cannot qualify (ib_insync) or keeps a ``None`` slot for it
  (ib_async; a list of candidates with ``returnAll``) → ``compat.qualified``;
* ib_async has the order statuses ``ValidationError`` (a warning on a live order) and
  ``ApiUpdate``: not IB order states, the order keeps its previous one →
  ``compat.MAP_ORDER_STATUS``;
* ``Inactive`` is done in ib_async's ``DoneStates`` but not in ib_insync's →
  :data:`TERMINAL_STATUSES` (the adapter never asks the library's ``isDone()``);
* execution times are UTC (ib_insync) or in ib_async's configurable ``IBDefaults.timezone`` →
  ``compat.utc_time`` (always UTC in the order's ``executions``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from src.brokers.base import FINAL_STATUSES, STATUS_KINDS
from src.brokers.compat import (
    ComboLeg,
    Contract,
    LimitOrder,
    MarketOrder,
    Order,
    PortfolioItem,
    contract_status,
    utc_time,
)
from src.brokers.compat import Option as IBOption
from src.brokers.md_permissions import data_type
from src.models.option import Option, OptionSpread

UNSET_DOUBLE: Final = 1.7976931348623157e308

# --- spreads -> combo legs -------------------------------------------------------------------

SPREAD_RIGHT: Final[Mapping[str, str]] = {"BULL_CALL": "C", "BEAR_PUT": "P"}
"""IB right of both legs for each spread type."""

LEG_ACTIONS: Final[Mapping[str, tuple[str, str]]] = {
    "LONG": ("BUY", "SELL"),   # (long_leg action, short_leg action)
    "SHORT": ("SELL", "BUY"),  # the position reversed: the legs flip …
}
BAG_ACTION: Final = "BUY"       # … the BAG order itself is always bought (never flip both)

PRICE_SIGN: Final[Mapping[str, float]] = {"LONG": 1.0, "SHORT": -1.0}
"""SHORT buys the reversed legs: a credit combo, which IB prices negative. A SHORT limit X
("receive at least X") is sent as BUY @ -X; fills are reported back in the caller's convention
(``filled_price`` = the credit received, positive), like ``limit_price``."""


def price_sign(direction: Any) -> float:
    """+1 for LONG (and unknown), -1 for SHORT: IB's BAG price ↔ the caller's price."""
    return PRICE_SIGN.get(direction, 1.0) if isinstance(direction, str) else 1.0

EXCHANGE: Final = "SMART"
CURRENCY: Final = "USD"


@dataclass(frozen=True)
class LegSpec:
    """One combo leg before qualification: what to look up and which way it trades."""

    symbol: str
    expiry: str  # YYYYMMDD
    strike: float
    right: str  # "C" / "P"
    action: str  # "BUY" / "SELL"
    ratio: int = 1

    def key(self) -> tuple[str, str, float, str]:
        """Cache key of the leg's contract (conIds never change for a listed option)."""
        return (self.symbol, self.expiry, float(self.strike), self.right)

    def contract(self) -> IBOption:
        return IBOption(self.symbol, self.expiry, float(self.strike), self.right,
                        exchange=EXCHANGE, currency=CURRENCY)

    def as_dict(self, con_id: int | None = None) -> dict[str, Any]:
        return {"strike": self.strike, "right": self.right, "expiry": self.expiry,
                "action": self.action, "ratio": self.ratio, "con_id": con_id}


def expiry_str(d: date) -> str:
    """``date`` → IB's ``YYYYMMDD``."""
    return d.strftime("%Y%m%d")


def parse_expiry(text: str) -> date:
    """IB's ``YYYYMMDD`` (optionally followed by a time / zone) → ``date``."""
    return datetime.strptime(text.split()[0][:8], "%Y%m%d").date()


def leg_specs(spread: OptionSpread, direction: str) -> tuple[LegSpec, LegSpec]:
    """(long_leg, short_leg) specs for ``direction`` ("LONG"/"SHORT").

    LONG BULL_CALL = BUY the lower call, SELL the higher call; LONG BEAR_PUT = BUY the higher put,
    SELL the lower put; SHORT reverses the leg actions (the BAG order stays ``BAG_ACTION``).
    """
    right = SPREAD_RIGHT[spread.spread_type]
    long_action, short_action = LEG_ACTIONS[direction]
    expiry = expiry_str(spread.long_leg.expiration)
    return (
        LegSpec(spread.symbol, expiry, float(spread.long_leg.strike), right, long_action),
        LegSpec(spread.symbol, expiry, float(spread.short_leg.strike), right, short_action),
    )


def build_bag(symbol: str, legs: Iterable[tuple[LegSpec, int]]) -> Contract:
    """The BAG contract for qualified legs ``(spec, conId)``."""
    bag = Contract(symbol=symbol, secType="BAG", currency=CURRENCY, exchange=EXCHANGE)
    bag.comboLegs = [
        ComboLeg(conId=con_id, ratio=spec.ratio, action=spec.action, exchange=EXCHANGE)
        for spec, con_id in legs
    ]
    return bag


def build_order(price_type: str, contracts: int, limit_price: float | None,
                order_ref: str, account: str, direction: str = "LONG") -> Order:
    """LimitOrder/MarketOrder, action ``BAG_ACTION``, with ``orderRef`` and ``account``.

    The limit is signed by ``PRICE_SIGN[direction]`` (a SHORT's credit is a negative price).
    """
    order: Order
    if price_type == "LIMIT":
        assert limit_price is not None
        order = LimitOrder(BAG_ACTION, contracts, price_sign(direction) * float(limit_price))
    else:
        order = MarketOrder(BAG_ACTION, contracts)
    order.orderRef = order_ref
    order.account = account
    order.transmit = True
    return order


# --- numbers -------------------------------------------------------------------------------


def finite(value: Any) -> float | None:
    """A finite IB number as float, ``None`` for nan / None / UNSET_DOUBLE / non-numbers."""
    if value.__class__ is float:  # the common case, once per field per event: nan fails too
        return value if -UNSET_DOUBLE < value < UNSET_DOUBLE else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and abs(v) < UNSET_DOUBLE else None


def clean(value: Any) -> float | None:
    """A usable IB *price*: ``finite`` and not IB's ``-1`` "no quote" marker."""
    v = finite(value)
    return None if v == -1.0 else v


def clean_or_zero(value: Any, *, non_negative: bool = False) -> float:
    """``clean`` with 0.0 for missing (and for negatives when ``non_negative``)."""
    v = clean(value)
    if v is None or (non_negative and v < 0):
        return 0.0
    return v


def to_float(text: Any) -> float | None:
    """An account value string → float, ``None`` when it is not a finite number."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# --- market data ---------------------------------------------------------------------------

MARKET_FIELDS: Final = ("last", "bid", "ask", "volume", "high", "low", "close")


def has_quote(ticker: Any) -> bool:
    """True once the ticker has bid, ask and last (the first-call wait condition)."""
    return all(clean(getattr(ticker, f, None)) is not None for f in ("bid", "ask", "last"))


def market_data(symbol: str, ticker: Any, now: datetime) -> dict[str, Any]:
    """A ticker → the contract's market-data dict (``None`` where IB has no value)."""
    data: dict[str, Any] = {"symbol": symbol, "timestamp": now.isoformat()}
    for name in MARKET_FIELDS:
        data[name] = clean(getattr(ticker, name, None))
    data["data_type"] = data_type(ticker)  # an addition to the contract's keys
    return data


def underlying_price(ticker: Any) -> float | None:
    """Best price for choosing strikes: last, else bid/ask mid, else close."""
    last = clean(getattr(ticker, "last", None))
    if last is not None and last > 0:
        return last
    bid, ask = clean(getattr(ticker, "bid", None)), clean(getattr(ticker, "ask", None))
    if bid is not None and ask is not None and bid > 0 and ask > 0:
        return (bid + ask) / 2
    close = clean(getattr(ticker, "close", None))
    return close if close is not None and close > 0 else None


GREEKS: Final = ("delta", "gamma", "theta", "vega")
"""Greeks read from ``OptionComputation`` (it has no ``rho``: ``Option.rho`` stays 0.0)."""


def option_from_ticker(ticker: Any, contract: Any, underlying: str) -> Option:
    """A ticker of an option + its qualified contract → ``Option`` with quote and model greeks."""
    right = str(getattr(contract, "right", "")).upper()[:1]
    option_type: Literal["call", "put"] = "call" if right == "C" else "put"
    local = getattr(contract, "localSymbol", "")
    strike = float(contract.strike)
    expiration = parse_expiry(str(contract.lastTradeDateOrContractMonth))
    symbol = local.strip() if isinstance(local, str) and local.strip() else (
        f"{underlying} {expiration:%y%m%d}{right}{strike:g}")
    greeks = getattr(ticker, "modelGreeks", None)
    values = {g: (finite(getattr(greeks, g, None)) or 0.0) if greeks is not None else 0.0
              for g in GREEKS}  # greeks may legitimately be -1 (deep ITM put delta)
    iv = clean(getattr(greeks, "impliedVol", None)) if greeks is not None else None
    if iv is None:
        iv = clean(getattr(ticker, "impliedVolatility", None))
    volume = clean(getattr(ticker, "volume", None))
    oi_field = "callOpenInterest" if option_type == "call" else "putOpenInterest"
    oi = clean(getattr(ticker, oi_field, None))
    return Option(
        symbol=symbol,
        underlying=underlying,
        option_type=option_type,
        strike=strike,
        expiration=expiration,
        bid=clean_or_zero(getattr(ticker, "bid", None), non_negative=True),
        ask=clean_or_zero(getattr(ticker, "ask", None), non_negative=True),
        last=clean_or_zero(getattr(ticker, "last", None), non_negative=True),
        volume=int(volume) if volume is not None and volume > 0 else 0,
        open_interest=int(oi) if oi is not None and oi > 0 else 0,
        implied_volatility=iv if iv is not None else 0.0,
        rho=0.0, data_type=data_type(ticker), **values)


def nearest_strikes(strikes: Iterable[float], price: float, count: int) -> list[float]:
    """The ``count`` strikes closest to ``price``, ascending (ties: the lower strike first)."""
    unique = sorted({float(s) for s in strikes if clean(s) is not None and float(s) > 0})
    chosen = sorted(unique, key=lambda s: (abs(s - price), s))[:count]
    return sorted(chosen)


def nearest_expirations(expirations: Iterable[str], today: date, count: int) -> list[str]:
    """The ``count`` nearest expirations on or after ``today`` (YYYYMMDD strings, ascending).

    ``today`` is the first expiration date still trading: the New York date before the 16:00
    close, the next day after it (``market_calendar.first_live_expiry(clock)``)."""
    future = []
    for e in set(expirations):
        try:
            if parse_expiry(e) >= today:
                future.append(e)
        except ValueError:
            continue
    return sorted(future)[:count]


# --- account ------------------------------------------------------------------------------

ACCOUNT_TAGS: Final[Mapping[str, str]] = {
    "CashBalance": "cash_balance",
    "NetLiquidation": "net_liquidation",
    "EquityWithLoanValue": "equity_with_loan",
    "InitMarginReq": "initial_margin_req",
    "MaintMarginReq": "maintenance_margin_req",
    "AvailableFunds": "available_funds",
    "ExcessLiquidity": "excess_liquidity",
    "BuyingPower": "buying_power",
    "DayTradesRemaining": "day_trades_remaining",
    "GrossPositionValue": "gross_position_value",
    "TotalCashValue": "total_cash_value",
}
"""IB account tag → the contract's summary key."""

SUMMARY_CURRENCIES: Final = ("USD", "")
"""Rows used: USD amounts, and currency-less tags (DayTradesRemaining)."""


def account_summary(values: Iterable[Any], account_id: str, now: datetime) -> dict[str, Any]:
    """AccountValue rows → the contract's summary dict (floats; ``None`` where absent).

    A USD row wins over a currency-less row of the same tag.
    """
    summary: dict[str, Any] = {"timestamp": now.isoformat(), "account_id": account_id}
    rank: dict[str, int] = {}
    for name in ACCOUNT_TAGS.values():
        summary[name] = None
    for v in values:
        tag = getattr(v, "tag", None)
        key = ACCOUNT_TAGS.get(tag) if isinstance(tag, str) else None
        currency = getattr(v, "currency", None)
        if key is None or currency not in SUMMARY_CURRENCIES:
            continue
        r = SUMMARY_CURRENCIES.index(currency)
        number = to_float(getattr(v, "value", None))
        if number is None or rank.get(key, 99) < r:
            continue
        summary[key] = number
        rank[key] = r
    return summary


# --- positions ------------------------------------------------------------------------------


def position_key(contract: Any) -> str:
    """Positions are keyed by symbol; options (and other derivatives) by their localSymbol."""
    symbol = str(getattr(contract, "symbol", "") or "")
    if getattr(contract, "secType", "STK") == "STK":
        return symbol
    local = getattr(contract, "localSymbol", "")
    return local.strip() if isinstance(local, str) and local.strip() else symbol


def _number(value: Any) -> float:
    v = finite(value)
    return v if v is not None else 0.0


def position_row(item: Any, previous: Mapping[str, Any] | None = None, *,
                 portfolio: bool | None = None) -> dict[str, Any]:
    """A ``Position`` (``portfolio=False``) or ``PortfolioItem`` → the contract's position row.

    Market fields come from ``PortfolioItem`` (kept from ``previous`` when a ``Position`` arrives);
    ``trades`` is kept from ``previous``. ``portfolio=None``: decided by the item's type.
    """
    prev = dict(previous or {})
    key = position_key(item.contract)
    quantity = item.position
    is_portfolio = isinstance(item, PortfolioItem) if portfolio is None else portfolio
    avg = item.averageCost if is_portfolio else item.avgCost
    row: dict[str, Any] = {
        "symbol": key,
        "quantity": quantity,
        "avg_price": avg,
        "market_price": prev.get("market_price", 0.0),
        "market_value": prev.get("market_value", 0.0),
        "unrealized_pnl": prev.get("unrealized_pnl", 0.0),
        "realized_pnl": prev.get("realized_pnl", 0.0),
        "account": getattr(item, "account", prev.get("account", "")),
        "trades": list(prev.get("trades", [])),
    }
    if is_portfolio:
        row["market_price"] = _number(item.marketPrice)
        row["market_value"] = _number(item.marketValue)
        row["unrealized_pnl"] = _number(item.unrealizedPNL)
        row["realized_pnl"] = _number(item.realizedPNL)
    return row


def positions_table(positions: Iterable[Any], portfolio: Iterable[Any],
                    previous: Mapping[str, Mapping[str, Any]] | None = None
                    ) -> dict[str, dict[str, Any]]:
    """Positions then portfolio items (which add market fields) → rows by key, zeros dropped."""
    prev = previous or {}
    table: dict[str, dict[str, Any]] = {}
    items = [(p, False) for p in positions] + [(p, True) for p in portfolio]
    for item, is_portfolio in items:
        key = position_key(item.contract)
        table[key] = position_row(item, table.get(key) or prev.get(key), portfolio=is_portfolio)
    return {k: r for k, r in table.items() if finite(r["quantity"]) not in (None, 0.0)}


# --- orders --------------------------------------------------------------------------------

TERMINAL_STATUSES: Final = FINAL_STATUSES  # one set of statuses for both brokers (base.py)
PENDING_STATUSES: Final = frozenset({k for k, v in STATUS_KINDS.items() if v == "pending"} | {""})
WORKING_STATUSES: Final = frozenset(k for k, v in STATUS_KINDS.items() if v == "working")



def order_record(*, order_id: str, symbol: str, direction: str, contracts: int,
                 spread: OptionSpread, price_type: str, limit_price: float | None,
                 order_ref: str, legs: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The contract's order dict for a freshly placed order."""
    return {
        "id": order_id,
        "symbol": symbol,
        "direction": direction,
        "contracts": contracts,
        "spread_type": spread.spread_type,
        "price_type": price_type,
        "limit_price": limit_price,
        "status": "PendingSubmit",
        "filled": 0.0,
        "remaining": float(contracts),
        "filled_price": None,
        "submit_time": now,
        "fill_time": None,
        "order_ref": order_ref,
        "perm_id": None,
        "legs": legs,
        "executions": [],
        "commissions": [],
    }


def adopted_record(trade: Any, order_id: str, now: datetime) -> dict[str, Any]:
    """The contract's order dict for an open order this adapter did not place (an earlier
    process with the same client id did). What the gateway does not carry is ``None``
    (``spread_type``; ``direction`` of a market order); ``adopted`` is True."""
    order, contract = trade.order, getattr(trade, "contract", None)
    quantity = finite(getattr(order, "totalQuantity", None)) or 0.0
    is_limit = getattr(order, "orderType", "") == "LMT"
    limit = finite(getattr(order, "lmtPrice", None)) if is_limit else None
    ref = getattr(order, "orderRef", "")
    record: dict[str, Any] = {
        "id": order_id,
        "symbol": str(getattr(contract, "symbol", "") or ""),
        "direction": None if limit is None else ("SHORT" if limit < 0 else "LONG"),
        "contracts": int(quantity),
        "spread_type": None,
        "price_type": "LIMIT" if is_limit else "MARKET",
        "limit_price": None if limit is None else abs(limit),
        "status": "PendingSubmit",
        "filled": 0.0,
        "remaining": quantity,
        "filled_price": None,
        "submit_time": now,
        "fill_time": None,
        "order_ref": ref if isinstance(ref, str) else "",
        "perm_id": getattr(order, "permId", 0) or None,
        "legs": [],
        "executions": [],
        "commissions": [],
        "adopted": True,
    }
    apply_order_status(record, trade.orderStatus, now)
    return record


def apply_order_status(record: dict[str, Any], status_obj: Any, now: datetime | None) -> None:
    """Copy an ``OrderStatus`` into ``record`` (status, filled, remaining, fill price/time;
    with ``now`` None the fill time is left to the caller)."""
    status = getattr(status_obj, "status", None)
    if isinstance(status, str) and status:
        record["status"] = contract_status(status, record.get("status") or "PendingSubmit")
    filled = finite(getattr(status_obj, "filled", None))
    remaining = finite(getattr(status_obj, "remaining", None))
    # ib_insync's own PendingSubmit status has 0/0: quantities only once the gateway reported
    if filled is not None and remaining is not None and filled + remaining > 0:
        record["filled"] = max(filled, record.get("filled") or 0.0)
        record["remaining"] = remaining
    elif filled is not None and filled > 0:
        record["filled"] = max(filled, record.get("filled") or 0.0)
    avg = finite(getattr(status_obj, "avgFillPrice", None))
    if avg is not None and avg != 0.0:
        record["filled_price"] = price_sign(record.get("direction")) * avg
    perm = getattr(status_obj, "permId", None)
    if isinstance(perm, int) and not isinstance(perm, bool) and perm > 0:
        record["perm_id"] = perm
    if now is not None and record["status"] == "Filled" and record.get("fill_time") is None:
        record["fill_time"] = now


def execution_row(fill: Any) -> dict[str, Any]:
    """A ``Fill`` → one entry of the order's ``executions`` list."""
    ex, contract = fill.execution, getattr(fill, "contract", None)
    return {"execution_id": ex.execId, "time": utc_time(ex.time), "shares": ex.shares,
            "price": ex.price, "side": getattr(ex, "side", ""),
            "con_id": getattr(contract, "conId", None),
            "sec_type": getattr(contract, "secType", "")}


def commission_row(report: Any) -> dict[str, Any]:
    """A ``CommissionReport`` → one entry of the order's ``commissions`` list."""
    return {"execution_id": report.execId, "commission": report.commission,
            "currency": report.currency, "realized_pnl": finite(report.realizedPNL)}


def snapshot(record: Mapping[str, Any]) -> dict[str, Any]:
    """A caller-owned copy of an order record (lists copied, no live objects)."""
    out = dict(record)
    for key in ("executions", "commissions", "legs"):
        if key in out and isinstance(out[key], list):
            out[key] = [dict(x) for x in out[key]]
    return out
