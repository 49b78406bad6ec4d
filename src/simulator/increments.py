"""Minimum price increments the simulated gateway enforces (IB error 110).

The rules (the exchanges' minimum price variation, as IB applies it to SMART-routed orders):

* **options** of a class outside the penny program: $0.05 below $3.00, $0.10 at and above;
* **penny-program classes** (e.g. AAPL, MSFT): $0.01 below $3.00, $0.05 at and above;
* **SPY, QQQ, IWM** (penny program, all prices): $0.01 throughout;
* **combos** (BAG, priced as the net of the legs, negative for a credit): $0.01;
* **stocks**: $0.01 at and above $1.00, $0.0001 below (Reg NMS rule 612).

Sources: Cboe's "Penny Interval Program" (the class list and the $3 break point; QQQ, SPY and
IWM quote in pennies at every price) and IB's error 110 "The price does not conform to the
minimum price variation for this contract." (TWS API message codes). The class lists below
are this simulator's table, not the full program (a few hundred classes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from src.simulator.types import OrderRequest

ERROR_110: Final = 110
TEXT_110: Final = "The price does not conform to the minimum price variation for this contract."

PENNY_ALL_PRICES: Final = frozenset({"SPY", "QQQ", "IWM"})
"""Option classes quoted in $0.01 at every price."""
PENNY_PROGRAM: Final = frozenset({"AAPL", "MSFT", "AMZN", "NVDA", "TSLA", "META", "GOOGL",
                                  "AMD", "INTC", "BAC", "F", "XLF"})
"""Option classes quoted in $0.01 below $3.00 and $0.05 at and above."""
BREAK: Final = 3.0
COMBO_INCREMENT: Final = 0.01


def increment(sec_type: str, symbol: str, price: float) -> float:
    """The minimum price variation of a ``sec_type`` contract on ``symbol`` at ``price``."""
    size = abs(price)
    if sec_type == "BAG":
        return COMBO_INCREMENT
    if sec_type in ("OPT", "FOP"):
        if symbol in PENNY_ALL_PRICES:
            return 0.01
        if symbol in PENNY_PROGRAM:
            return 0.01 if size < BREAK else 0.05
        return 0.05 if size < BREAK else 0.10
    return 0.01 if size >= 1.0 else 0.0001


def conforms(price: float, step: float) -> bool:
    """True when ``price`` is a whole multiple of ``step`` (float noise tolerated)."""
    units = price / step
    return math.isfinite(units) and abs(units - round(units)) < 1e-6


def off_increment(req: OrderRequest) -> bool:
    """True for a limit order whose price is not a multiple of its contract's increment."""
    if req.order_type != "LMT" or req.lmt_price is None:
        return False
    c = req.contract
    return not conforms(req.lmt_price, increment(c.sec_type, c.symbol, req.lmt_price))
