"""Limit prices on the contract's minimum price increment, before anything is sent.

IB answers a limit price off the contract's minimum price variation with error 110 ("The
price does not conform to the minimum price variation for this contract.") and does not accept
the order (ib_insync 0.9.86 counts 110 as a warning and leaves the Trade in PendingSubmit).

Where the increment comes from: this adapter places only combo (BAG) orders, and IB has no
contract details for a BAG (no ``minTick``, no ``marketRuleIds`` to pass to ``reqMarketRule``):
the increment is this module's table, keyed by security type and price — combos $0.01; single
options by the exchanges' rule (penny-program classes $0.01 below $3.00 and $0.05 at and above,
SPY/QQQ/IWM $0.01 throughout, other classes $0.05 / $0.10); stocks $0.01 ($0.0001 below $1).

``ibkr.price_increment_policy`` decides what happens to a price off its increment:
``round`` (default) rounds it in the trader's favour — a BUY's price down, a SELL's up, applied
to the signed price IB receives (the BAG is always bought; a SHORT spread is sent as BUY at
minus the credit, so its credit rounds *up*: a better price, never a worse one); ``refuse``
raises :class:`~src.brokers.errors.InvalidOrder` naming the price, the increment and the key.
"""

from __future__ import annotations

import math
from typing import Final

from src.brokers.errors import InvalidOrder
from src.utils.logger import log_info

POLICIES: Final = ("round", "refuse")
POLICY_KEY: Final = "ibkr.price_increment_policy"
COMBO_INCREMENT: Final = 0.01
PENNY_ALL_PRICES: Final = frozenset({"SPY", "QQQ", "IWM"})
PENNY_PROGRAM: Final = frozenset({"AAPL", "MSFT", "AMZN", "NVDA", "TSLA", "META", "GOOGL",
                                  "AMD", "INTC", "BAC", "F", "XLF"})
_EPS: Final = 1e-6


def increment(sec_type: str, symbol: str, price: float) -> float:
    """The minimum price variation of a ``sec_type`` contract on ``symbol`` at ``price``."""
    size = abs(price)
    if sec_type == "BAG":
        return COMBO_INCREMENT
    if sec_type in ("OPT", "FOP"):
        if symbol in PENNY_ALL_PRICES:
            return 0.01
        if symbol in PENNY_PROGRAM:
            return 0.01 if size < 3.0 else 0.05
        return 0.05 if size < 3.0 else 0.10
    return 0.01 if size >= 1.0 else 0.0001


def on_increment(price: float, step: float) -> bool:
    units = price / step
    return abs(units - round(units)) < _EPS


def round_in_favour(price: float, step: float, *, buying: bool) -> float:
    """``price`` on the ``step`` grid: down for a BUY, up for a SELL (a price already on the
    grid, up to float noise, is kept)."""
    units = price / step
    if abs(units - round(units)) < _EPS:
        whole = round(units)
    else:
        whole = math.floor(units) if buying else math.ceil(units)
    decimals = max(0, -math.floor(math.log10(step)) + 2)
    return round(whole * step, decimals)


def conform_combo_limit(limit_price: float, sign: float, policy: str) -> float:
    """The caller's ``limit_price`` of a BAG bought at ``sign * limit_price`` (``sign`` -1 for
    a SHORT's credit) on the combo increment, per ``policy``; in the caller's convention."""
    step = COMBO_INCREMENT
    ib_price = sign * limit_price
    if on_increment(ib_price, step):
        return limit_price
    rounded = round_in_favour(ib_price, step, buying=True) * sign
    if policy not in POLICIES:
        raise InvalidOrder(f"{POLICY_KEY} must be one of {list(POLICIES)}, got {policy!r}")
    if policy == "refuse":
        raise InvalidOrder(
            f"limit_price {limit_price!r} is not a multiple of the combo price increment "
            f"{step:.2f} (IB would answer error 110); send e.g. {rounded:.2f}, or set "
            f"{POLICY_KEY}: round to have it rounded in your favour")
    log_info(f"Limit price {limit_price} rounded to {rounded:.2f} in the trader's favour "
             f"(combo increment {step:.2f}, {POLICY_KEY}: round)")
    return rounded + 0.0
