"""Option and OptionSpread: every invalid construction raises ValueError naming the field."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

import pytest

from src.models.option import Option, OptionSpread

EXP = date(2026, 12, 18)
LATER = date(2027, 1, 15)


def opt(**overrides: Any) -> Option:
    fields: dict[str, Any] = dict(symbol="AAPL  261218C00150000", underlying="AAPL",
                                  option_type="call", strike=150.0, expiration=EXP,
                                  bid=5.0, ask=5.2, last=5.1)
    fields.update(overrides)
    return Option(**fields)


def call(strike: float, **kw: Any) -> Option:
    return opt(option_type="call", strike=strike, **kw)


def put(strike: float, **kw: Any) -> Option:
    return opt(option_type="put", strike=strike, **kw)


# -- Option ------------------------------------------------------------------------------------


def test_valid_option_with_defaults() -> None:
    o = Option(symbol="X", underlying="AAPL", option_type="put", strike=1, expiration=EXP)
    assert (o.bid, o.ask, o.last, o.volume, o.open_interest) == (0.0, 0.0, 0.0, 0, 0)
    assert (o.delta, o.gamma, o.theta, o.vega, o.rho, o.implied_volatility) == (0.0,) * 6
    assert o.right == "P"
    assert opt().right == "C"


def test_option_accepts_negative_greeks() -> None:
    o = opt(delta=-0.4, theta=-0.1, rho=-0.02)
    assert o.theta == -0.1


@pytest.mark.parametrize("field, value, fragment", [
    ("symbol", "", "symbol must be a non-empty string"),
    ("symbol", "   ", "symbol must be a non-empty string"),
    ("symbol", None, "symbol must be a non-empty string"),
    ("underlying", "", "underlying must be a non-empty string"),
    ("underlying", 5, "underlying must be a non-empty string"),
    ("option_type", "CALL", "option_type must be 'call' or 'put'"),
    ("option_type", "C", "option_type must be 'call' or 'put'"),
    ("strike", 0, "strike must be positive"),
    ("strike", -150.0, "strike must be positive"),
    ("strike", float("nan"), "strike must be finite"),
    ("strike", float("inf"), "strike must be finite"),
    ("strike", "150", "strike must be a number"),
    ("strike", True, "strike must be a number"),
    ("expiration", "2026-12-18", "expiration must be a datetime.date"),
    ("expiration", None, "expiration must be a datetime.date"),
    ("bid", -0.01, "bid must not be negative"),
    ("ask", -1.0, "ask must not be negative"),
    ("last", -5, "last must not be negative"),
    ("bid", float("nan"), "bid must be finite"),
    ("volume", -1, "volume must be a non-negative int"),
    ("volume", 1.5, "volume must be a non-negative int"),
    ("volume", True, "volume must be a non-negative int"),
    ("open_interest", -3, "open_interest must be a non-negative int"),
    ("implied_volatility", float("nan"), "implied_volatility must be finite"),
    ("delta", float("inf"), "delta must be finite"),
    ("gamma", "0.1", "gamma must be a number"),
    ("theta", None, "theta must be a number"),
    ("vega", float("-inf"), "vega must be finite"),
    ("rho", float("nan"), "rho must be finite"),
])
def test_invalid_option_fields(field: str, value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        opt(**{field: value})


def test_option_is_frozen() -> None:
    o = opt()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.strike = 1.0  # type: ignore[misc]


def test_datetime_is_accepted_as_a_date() -> None:
    # datetime is a date subclass; documented here so a change is deliberate
    assert opt(expiration=datetime(2026, 12, 18)).expiration.day == 18


def test_mid_uses_the_two_sided_quote_else_last() -> None:
    assert opt(bid=1.0, ask=1.2, last=5.0).mid == pytest.approx(1.1)
    assert opt(bid=0.0, ask=1.2, last=0.9).mid == 0.9
    assert opt(bid=1.0, ask=0.0, last=0.8).mid == 0.8


def test_option_equality_and_hash() -> None:
    assert opt() == opt()
    assert len({opt(), opt(), opt(strike=155.0)}) == 2


# -- OptionSpread ------------------------------------------------------------------------------


def bull_call(**kw: Any) -> OptionSpread:
    fields: dict[str, Any] = dict(symbol="AAPL", spread_type="BULL_CALL",
                                  long_leg=call(150.0, bid=5.0, ask=5.2),
                                  short_leg=call(155.0, bid=2.9, ask=3.1))
    fields.update(kw)
    return OptionSpread(**fields)


def bear_put(**kw: Any) -> OptionSpread:
    fields: dict[str, Any] = dict(symbol="AAPL", spread_type="BEAR_PUT",
                                  long_leg=put(155.0, bid=6.0, ask=6.2),
                                  short_leg=put(150.0, bid=3.0, ask=3.2))
    fields.update(kw)
    return OptionSpread(**fields)


def test_valid_bull_call() -> None:
    s = bull_call()
    assert s.expiration == EXP
    assert s.width == 5.0
    assert s.net_debit == pytest.approx(5.1 - 3.0)


def test_valid_bear_put() -> None:
    s = bear_put()
    assert s.expiration == EXP
    assert s.width == 5.0
    assert s.net_debit == pytest.approx(6.1 - 3.1)


def test_expiration_keyword_matching_the_legs_is_accepted() -> None:
    assert bull_call(expiration=EXP).expiration == EXP


def test_net_debit_never_negative() -> None:
    s = bull_call(long_leg=call(150.0, bid=1.0, ask=1.0), short_leg=call(155.0, bid=2, ask=2))
    assert s.net_debit == 0.0


@pytest.mark.parametrize("kwargs, fragment", [
    ({"symbol": ""}, "symbol must be a non-empty string"),
    ({"symbol": None}, "symbol must be a non-empty string"),
    ({"spread_type": "IRON_CONDOR"}, "spread_type must be 'BULL_CALL' or 'BEAR_PUT'"),
    ({"spread_type": "bull_call"}, "spread_type must be 'BULL_CALL' or 'BEAR_PUT'"),
    ({"long_leg": "AAPL 150C"}, "long_leg must be an Option"),
    ({"short_leg": None}, "short_leg must be an Option"),
    ({"symbol": "MSFT"}, "long_leg.underlying 'AAPL' does not match symbol 'MSFT'"),
    ({"short_leg": call(155.0, underlying="MSFT")},
     "short_leg.underlying 'MSFT' does not match symbol 'AAPL'"),
    ({"short_leg": call(155.0, expiration=LATER)}, "legs expire on different dates"),
    ({"expiration": LATER}, "expiration 2027-01-15 does not match the legs' 2026-12-18"),
    ({"long_leg": put(150.0)}, "BULL_CALL needs calls: long_leg is a put"),
    ({"short_leg": put(155.0)}, "BULL_CALL needs calls: short_leg is a put"),
    ({"long_leg": call(155.0), "short_leg": call(150.0)},
     "BULL_CALL needs long_leg.strike < short_leg.strike"),
    ({"long_leg": call(150.0), "short_leg": call(150.0)},
     "BULL_CALL needs long_leg.strike < short_leg.strike"),
])
def test_invalid_bull_call(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        bull_call(**kwargs)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"long_leg": call(155.0)}, "BEAR_PUT needs puts: long_leg is a call"),
    ({"short_leg": call(150.0)}, "BEAR_PUT needs puts: short_leg is a call"),
    ({"long_leg": put(150.0), "short_leg": put(155.0)},
     "BEAR_PUT needs long_leg.strike > short_leg.strike"),
    ({"long_leg": put(150.0), "short_leg": put(150.0)},
     "BEAR_PUT needs long_leg.strike > short_leg.strike"),
    ({"long_leg": put(155.0, underlying="SPY")}, "long_leg.underlying 'SPY' does not match"),
    ({"long_leg": put(155.0, expiration=LATER)}, "legs expire on different dates"),
])
def test_invalid_bear_put(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        bear_put(**kwargs)


def test_spread_is_frozen() -> None:
    s = bull_call()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.spread_type = "BEAR_PUT"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.expiration = LATER  # type: ignore[misc]
