"""Option and OptionSpread: frozen value objects validated at construction.

A bad object never exists: every check runs in ``__post_init__`` and raises ``ValueError`` naming
the field, so nothing downstream (the broker, the risk manager) has to re-validate shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

OptionType = Literal["call", "put"]
SpreadType = Literal["BULL_CALL", "BEAR_PUT"]

OPTION_TYPES: frozenset[str] = frozenset({"call", "put"})
DATA_TYPES: frozenset[str] = frozenset({"live", "frozen", "delayed", "delayed_frozen"})
"""What an Option's quote is: IB's market data types (delayed ones need no subscription)."""
SPREAD_TYPES: frozenset[str] = frozenset({"BULL_CALL", "BEAR_PUT"})


def _finite(
    name: str, value: object, *, positive: bool = False, non_negative: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if non_negative and value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")


@dataclass(frozen=True)
class Option:
    """One listed option with its quote and model greeks (0.0 where unknown); ``data_type``
    says whether the quote is live or delayed (an addition to the contract, last so positional
    construction is unchanged)."""

    symbol: str
    underlying: str
    option_type: OptionType
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
    data_type: str = "live"

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ValueError(f"symbol must be a non-empty string, got {self.symbol!r}")
        if not isinstance(self.underlying, str) or not self.underlying.strip():
            raise ValueError(f"underlying must be a non-empty string, got {self.underlying!r}")
        if self.option_type not in OPTION_TYPES:
            raise ValueError(f"option_type must be 'call' or 'put', got {self.option_type!r}")
        _finite("strike", self.strike, positive=True)
        if not isinstance(self.expiration, date):
            raise ValueError(f"expiration must be a datetime.date, got {self.expiration!r}")
        for name in ("bid", "ask", "last"):
            _finite(name, getattr(self, name), non_negative=True)
        for name in ("volume", "open_interest"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        for name in ("implied_volatility", "delta", "gamma", "theta", "vega", "rho"):
            _finite(name, getattr(self, name))
        if self.data_type not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {sorted(DATA_TYPES)}, "
                             f"got {self.data_type!r}")

    @property
    def right(self) -> str:
        """IB's right: "C" or "P"."""
        return "C" if self.option_type == "call" else "P"

    @property
    def mid(self) -> float:
        """Mid of bid/ask, or last when there is no two-sided quote."""
        if self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2
        return self.last


@dataclass(frozen=True)
class OptionSpread:
    """A vertical debit spread: BULL_CALL (long lower call, short higher call) or BEAR_PUT
    (long higher put, short lower put), one underlying, one expiration."""

    symbol: str
    spread_type: SpreadType
    long_leg: Option
    short_leg: Option
    expiration: date | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ValueError(f"symbol must be a non-empty string, got {self.symbol!r}")
        if self.spread_type not in SPREAD_TYPES:
            raise ValueError(
                f"spread_type must be 'BULL_CALL' or 'BEAR_PUT', got {self.spread_type!r}"
            )
        for name in ("long_leg", "short_leg"):
            if not isinstance(getattr(self, name), Option):
                raise ValueError(f"{name} must be an Option, got {getattr(self, name)!r}")
        long, short = self.long_leg, self.short_leg
        for name, leg in (("long_leg", long), ("short_leg", short)):
            if leg.underlying != self.symbol:
                raise ValueError(
                    f"{name}.underlying {leg.underlying!r} does not match symbol {self.symbol!r}"
                )
        if long.expiration != short.expiration:
            raise ValueError(
                f"legs expire on different dates: long_leg {long.expiration}, "
                f"short_leg {short.expiration}"
            )
        if self.expiration is None:
            object.__setattr__(self, "expiration", long.expiration)
        elif self.expiration != long.expiration:
            raise ValueError(
                f"expiration {self.expiration} does not match the legs' {long.expiration}"
            )
        wanted = "call" if self.spread_type == "BULL_CALL" else "put"
        for name, leg in (("long_leg", long), ("short_leg", short)):
            if leg.option_type != wanted:
                raise ValueError(
                    f"{self.spread_type} needs {wanted}s: {name} is a {leg.option_type}"
                )
        if self.spread_type == "BULL_CALL" and not long.strike < short.strike:
            raise ValueError(
                f"BULL_CALL needs long_leg.strike < short_leg.strike, "
                f"got {long.strike} >= {short.strike}"
            )
        if self.spread_type == "BEAR_PUT" and not long.strike > short.strike:
            raise ValueError(
                f"BEAR_PUT needs long_leg.strike > short_leg.strike, "
                f"got {long.strike} <= {short.strike}"
            )

    @property
    def width(self) -> float:
        """Distance between the strikes."""
        return abs(self.long_leg.strike - self.short_leg.strike)

    @property
    def net_debit(self) -> float:
        """Mid-price debit of the spread (long mid − short mid), never below 0."""
        return max(0.0, self.long_leg.mid - self.short_leg.mid)
