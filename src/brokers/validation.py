"""Argument validation for the public methods: every check raises ``InvalidOrder`` (a
``ValueError``) naming the field, before anything is sent and before any state changes."""

from __future__ import annotations

import math
import re
from typing import Any, Final

from src.brokers.errors import InvalidOrder
from src.models.option import OptionSpread

SYMBOL_RE: Final = re.compile(r"^[A-Z0-9][A-Z0-9.\- ]{0,20}$")
"""Sane IB stock symbols: upper-case letters/digits, '.', '-', ' ' (e.g. "BRK B"), ≤ 21 chars."""

DIRECTIONS: Final = ("LONG", "SHORT")
PRICE_TYPES: Final = ("LIMIT", "MARKET")
ORDER_REF_RE: Final = re.compile(r"^[\w.:\-]{1,64}$")


def symbol(value: Any, field: str = "symbol") -> str:
    """A non-empty str of sane characters (case kept as IB wants it: upper)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder(f"{field} must be a non-empty string, got {value!r}")
    if not SYMBOL_RE.match(value):
        raise InvalidOrder(f"{field} has invalid characters: {value!r}")
    return value


def direction(value: Any) -> str:
    if value not in DIRECTIONS:
        raise InvalidOrder(f"direction must be 'LONG' or 'SHORT', got {value!r}")
    return str(value)


def contracts(value: Any, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOrder(f"contracts must be an int, got {value!r}")
    if value <= 0:
        raise InvalidOrder(f"contracts must be positive, got {value!r}")
    if value > maximum:
        raise InvalidOrder(
            f"contracts {value} exceeds MAX_CONTRACTS_PER_ORDER ({maximum})")
    return value


def price_type(value: Any) -> str:
    if value not in PRICE_TYPES:
        raise InvalidOrder(f"price_type must be 'LIMIT' or 'MARKET', got {value!r}")
    return str(value)


def limit_price(value: Any, kind: str) -> float | None:
    """Required, finite and positive for LIMIT; ignored (must be None or a number) for MARKET."""
    if kind == "MARKET":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise InvalidOrder(f"limit_price must be a finite number or None, got {value!r}")
        return None
    if value is None:
        raise InvalidOrder("limit_price is required for LIMIT orders")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOrder(f"limit_price must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidOrder(f"limit_price must be finite and positive, got {value!r}")
    return float(value)


def option_spread(value: Any, sym: str) -> OptionSpread:
    if not isinstance(value, OptionSpread):
        raise InvalidOrder(f"option_spread must be an OptionSpread, got {type(value).__name__}")
    if value.symbol != sym:
        raise InvalidOrder(
            f"option_spread symbol {value.symbol!r} does not match symbol {sym!r}")
    return value


def order_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidOrder(f"order_id must be a non-empty string, got {value!r}")
    return value


def order_ref(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not ORDER_REF_RE.match(value):
        raise InvalidOrder(
            f"order_ref must be 1-64 chars of letters, digits, '_', '-', '.', ':', got {value!r}")
    return value


def order_args(sym: Any, dirn: Any, qty: Any, spread: Any, kind: Any, price: Any,
               ref: Any, max_contracts: int) -> tuple[str, str, int, OptionSpread, str,
                                                      float | None, str | None]:
    """Validate all ``place_order`` arguments in order; return them normalised."""
    s = symbol(sym)
    d = direction(dirn)
    n = contracts(qty, max_contracts)
    k = price_type(kind)
    p = limit_price(price, k)
    sp = option_spread(spread, s)
    r = order_ref(ref)
    return s, d, n, sp, k, p, r
