"""Value types shared by the simulator's modules (the seam between market, orders and codec).

Plain dataclasses, no behaviour: ``market.py`` builds ``SimContract``s from the universe,
``order_codec.py`` decodes ``placeOrder`` into an ``OrderRequest`` and encodes ``SimOrder``s
and ``SimFill``s back onto the wire, ``orders.py`` runs the matching on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ComboLegSpec:
    con_id: int
    ratio: int
    action: str  # "BUY" | "SELL"
    exchange: str = "SMART"
    open_close: int = 0
    short_sale_slot: int = 0
    designated_location: str = ""
    exempt_code: int = -1


@dataclass
class SimContract:
    """A contract as the gateway knows it (fields named after IB's)."""

    con_id: int
    symbol: str
    sec_type: str  # "STK" | "OPT" | "BAG"
    currency: str = "USD"
    exchange: str = "SMART"
    primary_exchange: str = ""
    last_trade_date: str = ""  # "YYYYMMDD" for options
    strike: float = 0.0
    right: str = ""  # "C" | "P" | ""
    multiplier: str = ""  # "100" for options
    local_symbol: str = ""
    trading_class: str = ""
    long_name: str = ""
    min_tick: float = 0.01
    combo_legs: list[ComboLegSpec] = field(default_factory=list)
    combo_legs_descrip: str = ""


@dataclass
class OrderRequest:
    """What a client's placeOrder carried (only the fields the simulator acts on)."""

    order_id: int
    contract: SimContract
    action: str  # "BUY" | "SELL"
    total_quantity: float
    order_type: str  # "MKT" | "LMT" | ...
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"
    order_ref: str = ""
    account: str = ""
    transmit: bool = True
    outside_rth: bool = False
    perm_id: int = 0
    parent_id: int = 0
    client_id: int = 0  # filled in by the server from the session
    oca_group: str = ""
    what_if: bool = False
    order_combo_leg_prices: list[float | None] = field(default_factory=list)
    smart_combo_routing_params: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SimOrder:
    """The gateway's live state of one order."""

    request: OrderRequest
    perm_id: int
    client_id: int
    status: str = "PreSubmitted"  # IB status strings
    filled: float = 0.0
    remaining: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    why_held: str = ""
    commission: float = 0.0
    completed_time: str = ""  # "YYYYMMDD HH:MM:SS" once final
    completed_status: str = ""
    what_if_margin: dict[str, str] = field(default_factory=dict)
    announced: bool = True  # its openOrder went out (False: exec_before_open_order, not yet)


@dataclass
class SimFill:
    """One execution (for a BAG: one per leg plus the combo-level one, as IB sends them)."""

    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    contract: SimContract
    side: str  # "BOT" | "SLD"
    shares: float
    price: float
    time: str  # "YYYYMMDD  HH:MM:SS" (IB's format, two spaces) in UTC
    account: str
    exchange: str = "SMART"
    cum_qty: float = 0.0
    avg_price: float = 0.0
    order_ref: str = ""
    liquidation: int = 0
    ev_multiplier: float = 0.0
    commission: float = 0.0
    realized_pnl: float | None = None  # None → IB's UNSET_DOUBLE on the wire
    last_liquidity: int = 2  # 1 added, 2 removed liquidity
