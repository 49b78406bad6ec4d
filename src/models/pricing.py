"""Black-Scholes price and greeks (European, no dividends).

One kernel for everything in the project that prices options itself: the simulated gateway's
quotes (``src.simulator.market``) and the placeholder broker's chain (``src.brokers.ibkr_api``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Greeks(NamedTuple):
    price: float
    delta: float
    gamma: float
    vega: float  # per 1 vol point (0.01)
    theta: float  # per calendar day
    rho: float = 0.0  # per 1 rate point (0.01)


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def _pdf(x: float) -> float:
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


def black_scholes(spot: float, strike: float, years: float, vol: float, rate: float,
                  right: str) -> Greeks:
    """European price and greeks; ``right`` is "C" or "P"."""
    if spot <= 0 or strike <= 0:
        raise ValueError("spot and strike must be positive")
    if right not in ("C", "P"):
        raise ValueError(f"right must be 'C' or 'P', got {right!r}")
    t = max(years, 1.0 / 3650.0)
    v = max(vol, 1e-4)
    sq = v * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * v * v) * t) / sq
    d2 = d1 - sq
    disc = math.exp(-rate * t)
    pdf1 = _pdf(d1)
    gamma = pdf1 / (spot * sq)
    vega = spot * pdf1 * math.sqrt(t) / 100.0
    common_theta = -spot * pdf1 * v / (2.0 * math.sqrt(t))
    if right == "C":
        price = spot * _cdf(d1) - strike * disc * _cdf(d2)
        delta = _cdf(d1)
        theta = common_theta - rate * strike * disc * _cdf(d2)
        rho = strike * t * disc * _cdf(d2) / 100.0
    else:
        price = strike * disc * _cdf(-d2) - spot * _cdf(-d1)
        delta = _cdf(d1) - 1.0
        theta = common_theta + rate * strike * disc * _cdf(-d2)
        rho = -strike * t * disc * _cdf(-d2) / 100.0
    return Greeks(max(price, 0.0), delta, gamma, vega, theta / 365.0, rho)


def implied_vol(price: float, spot: float, strike: float, years: float, rate: float,
                right: str, *, low: float = 1e-4, high: float = 5.0) -> float | None:
    """The volatility at which :func:`black_scholes` prices the option at ``price``
    (bisection: the price rises with the vol). ``None`` for a non-positive price or inputs the
    kernel refuses; clamped to ``low`` / ``high`` when the price lies outside their prices."""
    if not price > 0 or spot <= 0 or strike <= 0 or right not in ("C", "P"):
        return None
    if black_scholes(spot, strike, years, low, rate, right).price >= price:
        return low
    if black_scholes(spot, strike, years, high, rate, right).price <= price:
        return high
    lo, hi = low, high
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if black_scholes(spot, strike, years, mid, rate, right).price < price:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)
