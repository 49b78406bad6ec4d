"""Pydantic models of every request and response body (the OpenAPI schema comes from these)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,20}$"
ORDER_REF_PATTERN = r"^[\w.:\-]{1,64}$"
ORDER_ID_PATTERN = r"^[0-9]{1,18}$"
SIGNAL_ID_PATTERN = ORDER_REF_PATTERN

Direction = Literal["LONG", "SHORT"]
PriceType = Literal["LIMIT", "MARKET"]
SpreadTypeName = Literal["BULL_CALL", "BEAR_PUT"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- errors -------------------------------------------------------------------------------


class FieldError(_Out):
    field: str = Field(description="dotted path of the bad input, e.g. `legs.long_strike`")
    location: str = Field(description="body, path, query or header")
    message: str


class ErrorOut(_Out):
    """Every error response."""

    error: str = Field(description="error class, e.g. NotConnected, OrderRejected")
    detail: str
    field: str | None = Field(default=None, description="the bad input (422)")
    ib_code: int | None = Field(default=None, description="IB's error code when IB refused")
    retry_after: int | None = Field(default=None, description="seconds; also in Retry-After")
    errors: list[FieldError] | None = None


# --- operations ---------------------------------------------------------------------------


class HealthOut(_Out):
    status: Literal["ok"] = "ok"
    version: str
    uptime_seconds: float
    time: datetime


class ReadyOut(_Out):
    ready: bool
    connected: bool
    reason: str | None = None
    broker: str = Field(description="the backend: adapter, placeholder or mock")
    gateway: str = Field(description="host:port of the gateway")
    reconnecting: bool = False
    reconnects: int = 0
    last_error_code: int | None = None
    data_health: dict[str, str] = Field(default_factory=dict)


# --- market data --------------------------------------------------------------------------


class QuoteOut(_Out):
    symbol: str
    timestamp: str | None = None
    last: float | None = None
    bid: float | None = None
    ask: float | None = None
    volume: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    data_type: str = Field(default="live", description="live, frozen, delayed or delayed_frozen")


class OptionOut(_Out):
    symbol: str
    underlying: str
    option_type: Literal["call", "put"]
    strike: float
    expiration: date
    bid: float = 0.0
    ask: float = 0.0
    last: float = 0.0
    volume: int = 0
    open_interest: int = 0
    implied_volatility: float = 0.0
    delta: float = 0.0
    gamma: float = 0.0
    theta: float = 0.0
    vega: float = 0.0
    rho: float = 0.0
    data_type: str = Field(default="live", description="live, frozen, delayed or delayed_frozen")


class ChainOut(_Out):
    symbol: str
    count: int
    expirations: list[date]
    options: list[OptionOut]


# --- account ------------------------------------------------------------------------------


class PositionOut(_Out):
    symbol: str
    quantity: float
    avg_price: float | None = None
    market_price: float | None = None
    market_value: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    account: str | None = Field(default=None, description="masked: DU****567")
    trades: list[str] = Field(default_factory=list)


class PositionsOut(_Out):
    count: int
    positions: list[PositionOut]


class AccountOut(_Out):
    timestamp: str | None = None
    account_id: str | None = Field(default=None, description="masked: DU****567")
    cash_balance: float | None = None
    net_liquidation: float | None = None
    equity_with_loan: float | None = None
    initial_margin_req: float | None = None
    maintenance_margin_req: float | None = None
    available_funds: float | None = None
    excess_liquidity: float | None = None
    buying_power: float | None = None
    day_trades_remaining: float | None = None
    gross_position_value: float | None = None
    total_cash_value: float | None = None


# --- orders -------------------------------------------------------------------------------


class LegsIn(_In):
    """The spread's legs; omitted: the service picks them from the live chain (nearest
    expiration, long leg nearest the money, short leg the next strike out)."""

    expiration: date
    long_strike: float = Field(gt=0, allow_inf_nan=False)
    short_strike: float = Field(gt=0, allow_inf_nan=False)


class OrderIn(_In):
    """A vertical debit spread order (one BAG order)."""

    symbol: str = Field(pattern=SYMBOL_PATTERN, examples=["AAPL"])
    direction: Direction = "LONG"
    contracts: int = Field(default=1, ge=1, le=10_000)
    spread_type: SpreadTypeName | None = Field(
        default=None, description="default: BULL_CALL for LONG, BEAR_PUT for SHORT")
    legs: LegsIn | None = None
    price_type: PriceType = "LIMIT"
    limit_price: float | None = Field(default=None, gt=0, le=1_000_000, allow_inf_nan=False,
                                      description="LIMIT: default the spread's mid debit")
    order_ref: str | None = Field(default=None, pattern=ORDER_REF_PATTERN,
                                  description="idempotency key (or the Idempotency-Key header)")


class ExecutionOut(_Out):
    execution_id: str | None = None
    time: datetime | str | None = None
    shares: float | None = None
    price: float | None = None
    side: str | None = None
    con_id: int | None = None
    symbol: str | None = None
    sec_type: str | None = None


class CommissionOut(_Out):
    execution_id: str | None = None
    commission: float | None = None
    currency: str | None = None
    realized_pnl: float | None = None


class OrderOut(_Out):
    id: str
    symbol: str | None = None
    direction: str | None = None
    contracts: int | None = None
    spread_type: str | None = None
    price_type: str | None = None
    limit_price: float | None = None
    status: str
    filled: float | None = None
    remaining: float | None = None
    filled_price: float | None = None
    submit_time: datetime | str | None = None
    fill_time: datetime | str | None = None
    order_ref: str | None = None
    executions: list[ExecutionOut] = Field(default_factory=list)
    commissions: list[CommissionOut] = Field(default_factory=list)
    replayed: bool = Field(default=False, description="true: an earlier request with the same key "
                                              "placed this order; nothing was sent")


class CancelOut(_Out):
    id: str
    cancel_sent: bool
    status: str


# --- signals and the round trip -----------------------------------------------------------


class SignalIn(_In):
    """A trade signal for the Trader (the scanner seam): risk-checked, then a debit spread."""

    symbol: str = Field(pattern=SYMBOL_PATTERN, examples=["AAPL"])
    direction: Direction
    contracts: int = Field(default=1, ge=1, le=10_000)
    price_type: PriceType = "LIMIT"
    limit_price: float | None = Field(default=None, gt=0, le=1_000_000, allow_inf_nan=False)


class SignalOut(_Out):
    id: str
    symbol: str
    direction: str
    contracts: int
    price_type: str
    limit_price: float | None = None
    state: str = Field(description="PENDING (queued for the Trader), REJECTED (risk), QUEUED "
                                   "(waiting for the gateway), PLACED, FAILED, or the order's "
                                   "final status")
    order_id: str | None = None
    error: str | None = None


class RoundtripOut(_Out):
    symbol: str
    quote: QuoteOut
    order_id: str
    limit_price: float
    status_before_cancel: str
    cancel_sent: bool
    status_after_cancel: str
    account: str | None = Field(default=None, description="masked")
    seconds: float


def order_out(record: dict[str, Any], *, replayed: bool = False) -> OrderOut:
    return OrderOut.model_validate({**record, "id": str(record.get("id")), "replayed": replayed})
