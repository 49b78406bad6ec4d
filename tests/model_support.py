"""Greek assertions true to the model: an option's greeks against the pricing kernel.

Black-Scholes promises no sign for theta (a deep in-the-money European put close to expiry has a
positive one) and no open interval for delta (it rounds to 1.0 deep in the money), so tests never
assert "usual case" signs. They recompute the kernel (:func:`src.models.pricing.black_scholes`) for
the inputs the quoting side used and compare within a tolerance.

The one input an ``Option`` does not carry is the underlying price at the instant it was quoted
(the simulated gateway's random walk moves it). :func:`assert_true_to_model` takes the range the
spot was in (``spot_lo``..``spot_hi``; the gateway's session low/high bracket every price it
quoted), checks that the option's delta lies within the kernel's deltas over that range (delta
rises with the spot for calls and puts alike), solves the spot that gives the option's delta, and
compares price-free greeks (gamma, vega, theta and, when the broker provides it, rho) there.
"""

from __future__ import annotations

from typing import Any

import pytest

from src.models.pricing import Greeks, black_scholes

REL = 2e-3
ABS = 1e-6


def kernel(option: Any, spot: float, years: float, rate: float) -> Greeks:
    right = "C" if option.option_type == "call" else "P"
    return black_scholes(spot, option.strike, years, option.implied_volatility, rate, right)


def implied_spot(option: Any, years: float, rate: float, lo: float, hi: float) -> float:
    """The spot in [lo, hi] whose kernel delta is the option's (bisection; delta rises with S)."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if kernel(option, mid, years, rate).delta < option.delta:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-9:
            break
    return 0.5 * (lo + hi)


def assert_true_to_model(option: Any, *, years: float, rate: float, spot_lo: float,
                         spot_hi: float, with_rho: bool = False, iv_rel: float = 0.0) -> None:
    """``option``'s greeks are the kernel's for some spot in [spot_lo, spot_hi].

    ``iv_rel``: relative rounding of the option's implied vol (the placeholder rounds it to 4
    decimals); widens the tolerance accordingly."""
    lo = kernel(option, spot_lo, years, rate)
    hi = kernel(option, spot_hi, years, rate)
    slack = 1e-6 + abs(lo.gamma + hi.gamma) * 0.02 + iv_rel
    assert lo.delta - slack <= option.delta <= hi.delta + slack, (
        f"{option.symbol}: delta {option.delta} outside the kernel's "
        f"[{lo.delta}, {hi.delta}] for spot in [{spot_lo}, {spot_hi}]")
    spot = implied_spot(option, years, rate, spot_lo * 0.999, spot_hi * 1.001)
    want = kernel(option, spot, years, rate)
    rel = REL + 50 * iv_rel
    assert option.gamma == pytest.approx(want.gamma, rel=rel, abs=ABS), option.symbol
    assert option.vega == pytest.approx(want.vega, rel=rel, abs=ABS), option.symbol
    assert option.theta == pytest.approx(want.theta, rel=rel, abs=1e-4), option.symbol
    if with_rho:
        assert option.rho == pytest.approx(want.rho, rel=rel, abs=1e-4), option.symbol


def gateway_inputs(gateway: Any, option: Any) -> dict[str, Any]:
    """The simulated gateway's pricing inputs for ``option`` (kwargs of assert_true_to_model):
    its rate, the time to the expiration's close on its clock, and the session low/high of the
    underlying (which brackets every spot it has quoted the option at)."""
    market = gateway.market
    exp = f"{option.expiration:%Y%m%d}"

    def read() -> tuple[float, float, float]:
        st = market.stocks[option.underlying]
        return st.low, st.high, market.years(exp)

    lo, hi, years = gateway.call(read)
    return {"years": years, "rate": market.rate, "spot_lo": lo, "spot_hi": hi}
