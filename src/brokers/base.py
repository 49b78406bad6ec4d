"""The broker contract, typed: what the host application may call on any broker.

Both :class:`~src.brokers.ibkr_api.IBKRApi` (the simulated placeholder) and
:class:`~src.brokers.ibkr_ib_insync.IBKRIBInsyncApi` (the real adapter) satisfy
:class:`BrokerApi`; ``tests/unit/test_protocol.py`` checks members and signatures.
The ``Trader`` depends on this protocol only.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol, runtime_checkable

from src.models.option import Option, OptionSpread

ORDER_STATUSES: tuple[str, ...] = (
    "PendingSubmit", "PreSubmitted", "Submitted", "PendingCancel", "Filled", "Cancelled",
    "ApiCancelled", "Inactive",
)
"""IB's order statuses. ``PendingCancel`` (a cancel sent, not yet confirmed) is not final: the
order may still fill."""
FINAL_STATUSES: frozenset[str] = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
STATUS_KINDS: dict[str, str] = {
    "ApiPending": "pending",       # not yet sent to the gateway
    "PendingSubmit": "pending",    # sent, not yet acknowledged
    "PreSubmitted": "working",     # accepted, held (e.g. outside hours, simulated type)
    "Submitted": "working",        # working at the exchange
    "PendingCancel": "working",    # a cancel was sent, not confirmed: the order may still fill
    "ApiCancelled": "terminal",    # cancelled before it reached the gateway
    "Cancelled": "terminal",
    "Filled": "terminal",
    "Inactive": "terminal",        # rejected / not working (IB 201 …): done on both libraries
}
"""Every IB order status → pending / working / terminal (ib_async's own ``ValidationError`` /
``ApiUpdate`` are not IB's: ``compat.contract_status`` keeps the previous status for them).
Statuses are passed through unchanged; this table decides waits and finality."""
if {k for k, v in STATUS_KINDS.items() if v == "terminal"} != FINAL_STATUSES:
    raise RuntimeError("STATUS_KINDS and FINAL_STATUSES disagree")  # pragma: no cover
DIRECTIONS: frozenset[str] = frozenset({"LONG", "SHORT"})
PRICE_TYPES: frozenset[str] = frozenset({"LIMIT", "MARKET"})

ORDER_FIELDS: tuple[str, ...] = (
    "id", "symbol", "direction", "contracts", "spread_type", "price_type", "limit_price",
    "status", "filled", "remaining", "filled_price", "submit_time", "fill_time",
)
MARKET_DATA_FIELDS: tuple[str, ...] = (
    "symbol", "timestamp", "last", "bid", "ask", "volume", "high", "low", "close",
    "data_type",  # an addition: "live" | "frozen" | "delayed" | "delayed_frozen"
)
ACCOUNT_FIELDS: tuple[str, ...] = (
    "timestamp", "account_id", "cash_balance", "net_liquidation", "equity_with_loan",
    "initial_margin_req", "maintenance_margin_req", "available_funds", "excess_liquidity",
    "buying_power", "day_trades_remaining", "gross_position_value", "total_cash_value",
)
POSITION_FIELDS: tuple[str, ...] = (
    "symbol", "quantity", "avg_price", "market_price", "market_value", "unrealized_pnl",
    "realized_pnl", "account", "trades",
)


@runtime_checkable
class BrokerApi(Protocol):
    """The drop-in contract (docs/contract.md)."""

    connected: bool
    account_id: str
    orders: dict[str, dict[str, Any]]
    positions: dict[str, dict[str, Any]]
    lock: Any  # threading.Lock / threading.RLock

    def connect(self) -> bool: ...

    def disconnect(self) -> None: ...

    def handle_callbacks(self) -> None: ...

    def get_next_order_id(self) -> int: ...

    def place_order(
        self,
        symbol: str,
        direction: str,
        contracts: int,
        option_spread: OptionSpread,
        price_type: str = "LIMIT",
        limit_price: float | None = None,
    ) -> str: ...

    def get_order_status(self, order_id: str) -> dict[str, Any]: ...

    def cancel_order(self, order_id: str) -> bool: ...

    def get_market_data(self, symbol: str) -> dict[str, Any]: ...

    def get_option_chain(self, symbol: str) -> list[Option]: ...

    def get_account_summary(self) -> dict[str, Any]: ...

    def get_positions(self) -> dict[str, dict[str, Any]]: ...


LockType = type(threading.RLock())
