"""Argument validation for the public methods: every check raises ``InvalidOrder`` (a
``ValueError``) naming the field, before anything is sent and before any state changes."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any, Final

from src.brokers import base, price_increments
from src.brokers.errors import InvalidOrder
from src.models.option import Option, OptionSpread

SYMBOL_RE: Final = re.compile(r"^[A-Z0-9][A-Z0-9.\- ]{0,20}$")
"""Sane IB stock symbols: upper-case letters/digits, '.', '-', ' ' (e.g. "BRK B"), ≤ 21 chars."""

DIRECTIONS: Final = base.DIRECTIONS  # one set of constants for both brokers
PRICE_TYPES: Final = base.PRICE_TYPES
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
            f"contracts {value} exceeds risk.max_contracts_per_order ({maximum})")
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


SPREAD_LEG_TYPES: Final = {"BULL_CALL": "call", "BEAR_PUT": "put"}


def _field(value: Any, name: str) -> Any:
    try:
        return getattr(value, name)
    except AttributeError:
        raise InvalidOrder(f"option_spread.{name} is missing "
                           f"({type(value).__name__} has no attribute {name!r})") from None


def _leg(spread: Any, name: str, sym: str, kind: str) -> tuple[float, date]:
    leg = _field(spread, name)
    where = f"option_spread.{name}"
    try:
        option_type, strike, expiration = (leg.option_type, leg.strike,
                                           leg.expiration)
    except AttributeError as exc:
        raise InvalidOrder(f"{where} must be an option (option_type, strike, expiration): "
                           f"{exc}") from None
    if option_type != kind:
        raise InvalidOrder(f"{where}.option_type must be {kind!r} for this spread type, "
                           f"got {option_type!r}")
    if isinstance(strike, bool) or not isinstance(strike, (int, float)) \
            or not math.isfinite(strike) or strike <= 0:
        raise InvalidOrder(f"{where}.strike must be a positive finite number, got {strike!r}")
    if not isinstance(expiration, date) or isinstance(expiration, datetime):
        raise InvalidOrder(f"{where}.expiration must be a datetime.date, got {expiration!r}")
    underlying = getattr(leg, "underlying", sym)
    if underlying != sym:
        raise InvalidOrder(f"{where}.underlying {underlying!r} does not match symbol {sym!r}")
    return float(strike), expiration


def option_spread(value: Any, sym: str) -> Any:
    """Any object with the ``OptionSpread`` attributes the brokers read: ``symbol``,
    ``spread_type`` (BULL_CALL / BEAR_PUT), ``long_leg`` / ``short_leg`` (``option_type``
    matching the spread, positive finite ``strike``, equal ``datetime.date`` ``expiration``,
    ``underlying`` — when present — equal to the order's symbol)."""
    if value is None:
        raise InvalidOrder("option_spread is required, got None")
    spread_symbol = _field(value, "symbol")
    if spread_symbol != sym:
        raise InvalidOrder(
            f"option_spread.symbol {spread_symbol!r} does not match symbol {sym!r}")
    kind = _field(value, "spread_type")
    if not isinstance(kind, str) or kind not in SPREAD_LEG_TYPES:
        raise InvalidOrder(f"option_spread.spread_type must be one of "
                           f"{sorted(SPREAD_LEG_TYPES)}, got {kind!r}")
    long_strike, long_exp = _leg(value, "long_leg", sym, SPREAD_LEG_TYPES[kind])
    short_strike, short_exp = _leg(value, "short_leg", sym, SPREAD_LEG_TYPES[kind])
    if long_exp != short_exp:
        raise InvalidOrder(f"option_spread legs must share one expiration, got long_leg "
                           f"{long_exp} and short_leg {short_exp}")
    if kind == "BULL_CALL" and not long_strike < short_strike:
        raise InvalidOrder(f"option_spread.long_leg.strike must be below short_leg.strike for "
                           f"BULL_CALL, got {long_strike} >= {short_strike}")
    if kind == "BEAR_PUT" and not long_strike > short_strike:
        raise InvalidOrder(f"option_spread.long_leg.strike must be above short_leg.strike for "
                           f"BEAR_PUT, got {long_strike} <= {short_strike}")
    return value


def _quote(leg: Any, name: str) -> float:
    value = getattr(leg, name, 0.0)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value >= 0
    return float(value) if ok else 0.0


def as_spread(value: Any, sym: str) -> OptionSpread:
    """A validated spread as the model's ``OptionSpread`` (a host's own object is copied into
    one: its legs' option_type, strike, expiration and bid/ask when they are numbers)."""
    option_spread(value, sym)
    if isinstance(value, OptionSpread):
        return value

    def leg(name: str) -> Option:
        src = getattr(value, name)
        local = getattr(src, "symbol", "")
        return Option(symbol=local if isinstance(local, str) and local.strip() else sym,
                      underlying=sym, option_type=src.option_type, strike=float(src.strike),
                      expiration=src.expiration, bid=_quote(src, "bid"), ask=_quote(src, "ask"))

    return OptionSpread(symbol=sym, spread_type=value.spread_type, long_leg=leg("long_leg"),
                        short_leg=leg("short_leg"))


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
               ref: Any, max_contracts: int, increment_policy: str | None = None,
               ) -> tuple[str, str, int, Any, str, float | None, str | None]:
    """Validate all ``place_order`` arguments in order; return them normalised. With an
    ``increment_policy`` (``ibkr.price_increment_policy``) the limit is put on the combo's
    price increment (``round``) or refused (``refuse``): :mod:`src.brokers.price_increments`."""
    s = symbol(sym)
    d = direction(dirn)
    n = contracts(qty, max_contracts)
    k = price_type(kind)
    p = limit_price(price, k)
    if p is not None and increment_policy is not None:
        p = price_increments.conform_combo_limit(p, -1.0 if d == "SHORT" else 1.0,
                                                 increment_policy)
    sp = option_spread(spread, s)
    r = order_ref(ref)
    return s, d, n, sp, k, p, r
