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
