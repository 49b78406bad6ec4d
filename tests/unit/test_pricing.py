"""The shared Black-Scholes kernel (simulator quotes and the placeholder's chain)."""

from __future__ import annotations

import math

import pytest

from src.models.pricing import black_scholes


def test_put_call_parity_of_price_delta_and_rho() -> None:
    s, k, t, v, r = 100.0, 105.0, 0.25, 0.3, 0.04
    c = black_scholes(s, k, t, v, r, "C")
    p = black_scholes(s, k, t, v, r, "P")
    assert c.price - p.price == pytest.approx(s - k * math.exp(-r * t), abs=1e-9)
    assert c.delta - p.delta == pytest.approx(1.0)
    # d(C - P)/dr = K t e^(-rt), per rate point
    assert c.rho - p.rho == pytest.approx(k * t * math.exp(-r * t) / 100.0)
    assert c.gamma == pytest.approx(p.gamma) and c.vega == pytest.approx(p.vega)
    assert c.vega > 0
    assert c.theta < 0 and c.rho > 0 > p.rho


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="right"):
        black_scholes(100.0, 100.0, 0.5, 0.2, 0.04, "X")
    with pytest.raises(ValueError, match="positive"):
        black_scholes(0.0, 100.0, 0.5, 0.2, 0.04, "C")


# --- textbook reference values (Hull, Options, Futures, and Other Derivatives) ---------------


def test_hull_example_prices() -> None:
    """Hull's Black-Scholes-Merton example: S=42, K=40, r=10%, sigma=20%, T=0.5 → c=4.76,
    p=0.81 (d1=0.7693, d2=0.6278)."""
    c = black_scholes(42.0, 40.0, 0.5, 0.2, 0.10, "C")
    p = black_scholes(42.0, 40.0, 0.5, 0.2, 0.10, "P")
    assert c.price == pytest.approx(4.76, abs=0.005)
    assert p.price == pytest.approx(0.81, abs=0.005)


def test_hull_greeks_example() -> None:
    """Hull's greeks example (a bank sold 100,000 calls): S=49, K=50, r=5%, sigma=20%,
    T=20 weeks=0.3846 → delta 0.522, gamma 0.066, vega 12.1 (per 1.00 of vol), theta -4.31
    (per year), rho 8.91 (per 1.00 of rate). The kernel quotes vega and rho per point (0.01)
    and theta per calendar day."""
    g = black_scholes(49.0, 50.0, 0.3846, 0.2, 0.05, "C")
    assert g.delta == pytest.approx(0.522, abs=0.0005)
    assert g.gamma == pytest.approx(0.066, abs=0.0005)
    assert g.vega * 100 == pytest.approx(12.1, abs=0.05)
    assert g.theta * 365 == pytest.approx(-4.31, abs=0.005)
    assert g.rho * 100 == pytest.approx(8.91, abs=0.005)


@pytest.mark.parametrize("right", ["C", "P"])
@pytest.mark.parametrize(("s", "k", "t", "v", "r"), [
    (42.0, 40.0, 0.5, 0.2, 0.10),  # in the money call / out of the money put
    (100.0, 130.0, 0.02, 0.35, 0.04),  # a week out, far from the money
    (230.0, 260.0, 3.0 / 365, 0.27, 0.04),  # deep ITM put near expiry: theta > 0
])
def test_greeks_are_the_finite_differences_of_the_price(
        right: str, s: float, k: float, t: float, v: float, r: float) -> None:
    """Every greek is the derivative of the kernel's own price (central differences), so a
    greek with a wrong sign or scale fails whatever the inputs."""

    def price(s_: float = s, t_: float = t, v_: float = v, r_: float = r) -> float:
        return black_scholes(s_, k, t_, v_, r_, right).price

    g = black_scholes(s, k, t, v, r, right)
    h = s * 1e-4
    assert g.delta == pytest.approx((price(s + h) - price(s - h)) / (2 * h), abs=1e-6)
    assert g.gamma == pytest.approx(
        (price(s + h) - 2 * price() + price(s - h)) / (h * h), rel=1e-3, abs=1e-6)
    dv = 1e-5
    assert g.vega == pytest.approx((price(v_=v + dv) - price(v_=v - dv)) / (2 * dv) / 100,
                                   rel=1e-5, abs=1e-9)
    dr = 1e-6
    assert g.rho == pytest.approx((price(r_=r + dr) - price(r_=r - dr)) / (2 * dr) / 100,
                                  rel=1e-5, abs=1e-9)
    dt = 1e-6
    # theta: the price change as a calendar day passes (time to expiry shrinks), per day
    assert g.theta == pytest.approx(-(price(t_=t + dt) - price(t_=t - dt)) / (2 * dt) / 365,
                                    rel=1e-4, abs=1e-8)


def test_deep_in_the_money_european_put_near_expiry_has_positive_theta() -> None:
    """Black-Scholes promises no sign for theta: a deep ITM European put gains value as time
    passes (the strike's discount shrinks). Tests compare with the kernel, never with signs."""
    g = black_scholes(230.0, 260.0, 3.0 / 365, 0.27, 0.04, "P")
    assert g.theta > 0
    assert g.delta == pytest.approx(-1.0, abs=1e-6)
