"""Typed, frozen results of :class:`~src.brokers.ib_client.IBKRClient` (and its mock).

Nothing the client returns is a live ib_insync object: the loop thread keeps mutating those
(tickers, trades, order statuses). These are immutable snapshots taken on the loop thread, safe to
hand to any thread. ``from_*`` helpers build them from ib_insync objects (loop thread only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from src.brokers.md_permissions import data_type


class ConnectionState(StrEnum):
    """The client's view of its gateway session."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    LOST = "lost"
    RECONNECTING = "reconnecting"


def _num(value: Any) -> float | None:
    """A finite float, else None (IB uses NaN and sentinels for "no value")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) >= 1.7e308:
        return None
    return number


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """What identifies a contract (a frozen descriptor of an ib_insync ``Contract``)."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    expiry: str = ""
    strike: float | None = None
    right: str = ""
    multiplier: str = ""
    trading_class: str = ""

    @classmethod
    def from_contract(cls, contract: Any) -> ContractInfo:
        return cls(
            con_id=_int(getattr(contract, "conId", 0)),
            symbol=_text(getattr(contract, "symbol", "")),
            sec_type=_text(getattr(contract, "secType", "")),
            exchange=_text(getattr(contract, "exchange", "")),
            currency=_text(getattr(contract, "currency", "")),
            local_symbol=_text(getattr(contract, "localSymbol", "")),
            expiry=_text(getattr(contract, "lastTradeDateOrContractMonth", "")),
            strike=_num(getattr(contract, "strike", None)) or None,
            right=_text(getattr(contract, "right", "")),
            multiplier=_text(getattr(contract, "multiplier", "")),
            trading_class=_text(getattr(contract, "tradingClass", "")))


@dataclass(frozen=True, slots=True)
class ContractDetailsInfo:
    """The parts of IB's ``ContractDetails`` the adapter uses."""

    contract: ContractInfo
    long_name: str = ""
    min_tick: float | None = None
    market_name: str = ""
    time_zone: str = ""

    @classmethod
    def from_details(cls, details: Any) -> ContractDetailsInfo:
        return cls(
            contract=ContractInfo.from_contract(getattr(details, "contract", None)),
            long_name=_text(getattr(details, "longName", "")),
            min_tick=_num(getattr(details, "minTick", None)),
            market_name=_text(getattr(details, "marketName", "")),
            time_zone=_text(getattr(details, "timeZoneId", "")))


@dataclass(frozen=True, slots=True)
class OrderResult:
    """An order as the gateway last reported it."""

    order_id: int
    status: str
    contract: ContractInfo
    action: str = ""
    quantity: float = 0.0
    order_type: str = ""
    limit_price: float | None = None
    filled: float = 0.0
    remaining: float = 0.0
    avg_fill_price: float | None = None
    perm_id: int = 0
    order_ref: str = ""
    error: str | None = None
    time: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    @classmethod
    def from_trade(cls, trade: Any, now: datetime, error: str | None = None) -> OrderResult:
        order = getattr(trade, "order", None)
        status = getattr(trade, "orderStatus", None)
        filled = _num(getattr(status, "filled", None)) or 0.0
        total = _num(getattr(order, "totalQuantity", None)) or 0.0
        remaining = _num(getattr(status, "remaining", None))
        avg = _num(getattr(status, "avgFillPrice", None))
        return cls(
            order_id=_int(getattr(order, "orderId", 0)),
            status=_text(getattr(status, "status", "")) or "PendingSubmit",
            contract=ContractInfo.from_contract(getattr(trade, "contract", None)),
            action=_text(getattr(order, "action", "")),
            quantity=total,
            order_type=_text(getattr(order, "orderType", "")),
            limit_price=_num(getattr(order, "lmtPrice", None)),
            filled=filled,
            remaining=remaining if remaining is not None else max(total - filled, 0.0),
            avg_fill_price=avg if avg else None,
            perm_id=_int(getattr(order, "permId", 0)),
            order_ref=_text(getattr(order, "orderRef", "")),
            error=error,
            time=now)


DONE_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass(frozen=True, slots=True)
class Quote:
    """A market-data snapshot of one contract."""

    contract: ContractInfo
    bid: float | None
    ask: float | None
    last: float | None
    time: datetime
    bid_size: float | None = None
    ask_size: float | None = None
    volume: float | None = None
    close: float | None = None
    data_type: str = "live"  # "live" | "frozen" | "delayed" | "delayed_frozen" (marketDataType)

    @classmethod
    def from_ticker(cls, ticker: Any, contract: Any, now: datetime) -> Quote:
        return cls(
            contract=ContractInfo.from_contract(contract),
            bid=_num(getattr(ticker, "bid", None)),
            ask=_num(getattr(ticker, "ask", None)),
            last=_num(getattr(ticker, "last", None)),
            time=now,
            bid_size=_num(getattr(ticker, "bidSize", None)),
            ask_size=_num(getattr(ticker, "askSize", None)),
            volume=_num(getattr(ticker, "volume", None)),
            close=_num(getattr(ticker, "close", None)),
            data_type=data_type(ticker))


@dataclass(frozen=True, slots=True)
class Position:
    """One position of an account."""

    account: str
    contract: ContractInfo
    quantity: float
    avg_cost: float | None

    @classmethod
    def from_ib(cls, item: Any) -> Position:
        return cls(account=_text(getattr(item, "account", "")),
                   contract=ContractInfo.from_contract(getattr(item, "contract", None)),
                   quantity=_num(getattr(item, "position", None)) or 0.0,
                   avg_cost=_num(getattr(item, "avgCost", None)))


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One account value (IB's tag / value / currency)."""

    account: str
    tag: str
    value: str
    currency: str

    @classmethod
    def from_ib(cls, item: Any) -> AccountValue:
        return cls(account=_text(getattr(item, "account", "")), tag=_text(getattr(item, "tag", "")),
                   value=str(getattr(item, "value", "")),
                   currency=_text(getattr(item, "currency", "")))


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution (fill) and its commission when reported."""

    exec_id: str
    order_id: int
    contract: ContractInfo
    side: str
    shares: float
    price: float
    time: datetime | None
    perm_id: int = 0
    order_ref: str = ""
    commission: float | None = None

    @classmethod
    def from_fill(cls, fill: Any) -> Execution:
        ex = getattr(fill, "execution", None)
        report = getattr(fill, "commissionReport", None)
        if report is not None and not _text(getattr(report, "execId", "")):
            report = None  # the library's empty placeholder: IB's report has not arrived yet
        when = getattr(ex, "time", None) or getattr(fill, "time", None)
        return cls(exec_id=_text(getattr(ex, "execId", "")),
                   order_id=_int(getattr(ex, "orderId", 0)),
                   contract=ContractInfo.from_contract(getattr(fill, "contract", None)),
                   side=_text(getattr(ex, "side", "")),
                   shares=_num(getattr(ex, "shares", None)) or 0.0,
                   price=_num(getattr(ex, "price", None)) or 0.0,
                   time=when if isinstance(when, datetime) else None,
                   perm_id=_int(getattr(ex, "permId", 0)),
                   order_ref=_text(getattr(ex, "orderRef", "")),
                   commission=_num(getattr(report, "commission", None)) if report else None)


def _amount(value: Any) -> float | None:
    """A what-if figure: IB sends the margins as strings, unset ones as ``""`` or DBL_MAX."""
    if isinstance(value, str):
        try:
            value = float(value) if value.strip() else None
        except ValueError:
            return None
    return _num(value)


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    """IB's answer to a what-if order (``OrderState``): the margin impact and the commission
    estimate of an order that was not placed. Figures are in the account's currency; None
    where IB sent no value."""

    init_margin_before: float | None
    init_margin_change: float | None
    init_margin_after: float | None
    maint_margin_before: float | None
    maint_margin_change: float | None
    maint_margin_after: float | None
    equity_with_loan_before: float | None
    equity_with_loan_change: float | None
    equity_with_loan_after: float | None
    commission: float | None
    min_commission: float | None
    max_commission: float | None
    commission_currency: str = ""
    warning: str = ""

    @classmethod
    def from_order_state(cls, state: Any) -> WhatIfResult:
        def get(name: str) -> float | None:
            return _amount(getattr(state, name, None))

        return cls(
            init_margin_before=get("initMarginBefore"), init_margin_change=get("initMarginChange"),
            init_margin_after=get("initMarginAfter"),
            maint_margin_before=get("maintMarginBefore"),
            maint_margin_change=get("maintMarginChange"),
            maint_margin_after=get("maintMarginAfter"),
            equity_with_loan_before=get("equityWithLoanBefore"),
            equity_with_loan_change=get("equityWithLoanChange"),
            equity_with_loan_after=get("equityWithLoanAfter"),
            commission=get("commission"), min_commission=get("minCommission"),
            max_commission=get("maxCommission"),
            commission_currency=_text(getattr(state, "commissionCurrency", "")),
            warning=_text(getattr(state, "warningText", "")))

    def as_dict(self) -> dict[str, Any]:
        """The figures as a plain dict (the brokers' ``what_if_order`` shape)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
