"""The pure increment rules: the adapter's (src/brokers/price_increments.py) and the simulated
gateway's (src/simulator/increments.py), and rounding in the trader's favour."""

from __future__ import annotations

import pytest

from src.brokers import price_increments as adapter
from src.brokers.errors import InvalidOrder
from src.simulator import increments as gateway

CASES = [
    ("OPT", "SPY", 0.5, 0.01), ("OPT", "SPY", 12.0, 0.01),  # penny at every price
    ("OPT", "QQQ", 7.0, 0.01), ("OPT", "IWM", 3.0, 0.01),
    ("OPT", "AAPL", 2.99, 0.01), ("OPT", "AAPL", 3.0, 0.05),  # penny program: $3 break
    ("OPT", "MSFT", 10.0, 0.05),
    ("OPT", "XYZ", 2.5, 0.05), ("OPT", "XYZ", 3.0, 0.10),  # outside the program
    ("BAG", "AAPL", 4.0, 0.01), ("BAG", "XYZ", -7.0, 0.01),  # combos, debit or credit
    ("STK", "AAPL", 230.0, 0.01), ("STK", "PENNY", 0.5, 0.0001),
]


@pytest.mark.parametrize(("sec_type", "symbol", "price", "step"), CASES)
def test_increment_tables(sec_type: str, symbol: str, price: float, step: float) -> None:
    assert adapter.increment(sec_type, symbol, price) == step
    assert gateway.increment(sec_type, symbol, price) == step  # the adapter agrees with "IB"


def test_credits_use_the_size_of_the_price() -> None:
    assert gateway.increment("OPT", "AAPL", -3.5) == 0.05


@pytest.mark.parametrize(("price", "step", "ok"), [
    (1.23, 0.01, True), (1.234, 0.01, False), (0.1 + 0.2, 0.01, True),  # float noise is fine
    (3.05, 0.05, True), (3.07, 0.05, False), (-1.25, 0.05, True), (3.3, 0.10, True),
])
def test_conforms(price: float, step: float, ok: bool) -> None:
    assert gateway.conforms(price, step) is ok
    assert adapter.on_increment(price, step) is ok


@pytest.mark.parametrize(("price", "step", "buying", "expected"), [
    (1.237, 0.01, True, 1.23), (1.231, 0.01, False, 1.24),
    (-1.231, 0.01, True, -1.24), (-1.239, 0.01, False, -1.23),
    (3.07, 0.05, True, 3.05), (3.07, 0.05, False, 3.10),
    (1.23, 0.01, True, 1.23), (0.1 + 0.2, 0.01, False, 0.3),  # on the grid: unchanged
])
def test_round_in_favour(price: float, step: float, buying: bool, expected: float) -> None:
    assert adapter.round_in_favour(price, step, buying=buying) == expected


def test_combo_limit_long_debit_rounds_down() -> None:
    assert adapter.conform_combo_limit(1.239, 1.0, "round") == 1.23


def test_combo_limit_short_credit_rounds_up() -> None:
    # SHORT: sent as BUY @ -credit; down in IB's terms is more credit for the trader
    assert adapter.conform_combo_limit(1.231, -1.0, "round") == 1.24


def test_combo_limit_on_the_grid_is_kept_under_both_policies() -> None:
    assert adapter.conform_combo_limit(2.35, 1.0, "refuse") == 2.35
    assert adapter.conform_combo_limit(2.35, -1.0, "round") == 2.35


def test_refuse_names_the_price_the_increment_and_the_key() -> None:
    with pytest.raises(InvalidOrder) as info:
        adapter.conform_combo_limit(1.239, 1.0, "refuse")
    text = str(info.value)
    for part in ("1.239", "0.01", "ibkr.price_increment_policy", "1.23"):
        assert part in text, text


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(InvalidOrder, match="ibkr.price_increment_policy"):
        adapter.conform_combo_limit(1.239, 1.0, "nearest")
