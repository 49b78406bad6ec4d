"""Both brokers behave the same where the contract says so (issue 8): one validation module
(duck-typed spreads checked field by field), read-only refusals, bad symbols, PendingCancel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock, patch

import pytest
import stubs

from src.app.config import Config
from src.app.executor import TradeExecutor, TradeRecord
from src.brokers.base import FINAL_STATUSES, ORDER_STATUSES
from src.brokers.errors import InvalidOrder, ReadOnlyViolation
from src.brokers.ibkr_api import IBKRApi
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

EXP = stubs.expiry(30)


def leg(option_type: str = "call", strike: Any = 150.0, expiration: Any = EXP,
        underlying: str = "AAPL") -> SimpleNamespace:
    return SimpleNamespace(option_type=option_type, strike=strike, expiration=expiration,
                           underlying=underlying, symbol="X", bid=1.0, ask=1.1)


def duck(**changes: Any) -> SimpleNamespace:
    """A host-made spread: any object with the OptionSpread attributes."""
    fields: dict[str, Any] = {"symbol": "AAPL", "spread_type": "BULL_CALL",
                              "long_leg": leg(strike=150.0), "short_leg": leg(strike=155.0)}
    fields.update(changes)
    return SimpleNamespace(**fields)


BAD_SPREADS = [
    (None, "option_spread is required"),
    (SimpleNamespace(symbol="AAPL"), "option_spread.spread_type"),
    (duck(spread_type="IRON_CONDOR"), "option_spread.spread_type"),
    (duck(spread_type=None), "option_spread.spread_type"),
    (duck(symbol="MSFT"), "option_spread.symbol"),
    (duck(long_leg=None), "option_spread.long_leg"),
    (duck(long_leg=leg("put")), "option_spread.long_leg.option_type"),
    (duck(short_leg=leg("put", 155.0)), "option_spread.short_leg.option_type"),
    (duck(spread_type="BEAR_PUT"), "option_spread.long_leg.option_type"),
    (duck(long_leg=leg(strike=-1.0)), "option_spread.long_leg.strike"),
    (duck(long_leg=leg(strike=0)), "option_spread.long_leg.strike"),
    (duck(short_leg=leg(strike=float("nan"))), "option_spread.short_leg.strike"),
    (duck(short_leg=leg(strike="155")), "option_spread.short_leg.strike"),
    (duck(long_leg=leg(strike=True)), "option_spread.long_leg.strike"),
    (duck(long_leg=leg(expiration="20261218")), "option_spread.long_leg.expiration"),
    (duck(long_leg=leg(expiration=datetime(2027, 1, 15, 16))),
     "option_spread.long_leg.expiration"),
    (duck(short_leg=leg(strike=155.0, expiration=EXP + timedelta(days=7))),
     "option_spread legs must share one expiration"),
    (duck(short_leg=leg(strike=155.0, underlying="MSFT")),
     "option_spread.short_leg.underlying"),
    (duck(long_leg=leg(strike=160.0)), "option_spread.long_leg.strike must be below"),
    (duck(spread_type="BEAR_PUT", long_leg=leg("put", 150.0), short_leg=leg("put", 155.0)),
     "option_spread.long_leg.strike must be above"),
]


@pytest.fixture
def adapter() -> Iterator[tuple[IBKRIBInsyncApi, stubs.StubState]]:
    state = stubs.StubState()
    ib = stubs.mock_ib(state)
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(Config(IBKR_TIMEOUT=2.0, IBKR_REQUEST_TIMEOUT=2.0))
    assert api.connect()
    yield api, state
    api.close()


@pytest.fixture
def placeholder() -> IBKRApi:
    api = IBKRApi(Config())
    assert api.connect()
    return api


@pytest.mark.parametrize(("spread", "field"), BAD_SPREADS)
def test_adapter_checks_every_spread_field_before_sending(
        adapter: tuple[IBKRIBInsyncApi, stubs.StubState], spread: Any, field: str) -> None:
    api, state = adapter
    with pytest.raises(InvalidOrder, match=field.replace(".", r"\.")):
        api.place_order("AAPL", "LONG", 1, spread, "LIMIT", 2.0)
    assert state.placed == [] and api.orders == {}


@pytest.mark.parametrize(("spread", "field"), BAD_SPREADS)
def test_placeholder_checks_every_spread_field_the_same_way(
        placeholder: IBKRApi, spread: Any, field: str) -> None:
    with pytest.raises(InvalidOrder, match=field.replace(".", r"\.")):
        placeholder.place_order("AAPL", "LONG", 1, spread, "LIMIT", 2.0)
    assert placeholder.orders == {}


def test_a_duck_typed_spread_is_accepted_by_the_adapter(
        adapter: tuple[IBKRIBInsyncApi, stubs.StubState]) -> None:
    api, state = adapter
    order_id = api.place_order("AAPL", "LONG", 1, duck(), "LIMIT", 2.0)
    assert api.get_order_status(order_id)["spread_type"] == "BULL_CALL"
    assert [leg.action for leg in state.placed[-1][0].comboLegs] == ["BUY", "SELL"]


def test_a_duck_typed_spread_is_accepted_by_the_placeholder(placeholder: IBKRApi) -> None:
    order_id = placeholder.place_order("AAPL", "LONG", 1, duck(), "MARKET")
    status = placeholder.get_order_status(order_id)
    assert status["spread_type"] == "BULL_CALL" and status["status"] == "Filled"
    assert [(leg["strike"], leg["action"]) for leg in status["legs"]] == [
        (150.0, "BUY"), (155.0, "SELL")]


def test_read_only_refuses_orders_and_cancels_in_both_brokers(
        adapter: tuple[IBKRIBInsyncApi, stubs.StubState]) -> None:
    api, state = adapter
    order_id = api.place_order("AAPL", "LONG", 1, stubs.aapl_bull_call(), "LIMIT", 2.0)
    api.read_only = True
    placeholder = IBKRApi(Config(IBKR_READ_ONLY=True))
    placeholder.connect()
    for broker, oid in ((api, order_id), (placeholder, "1")):
        with pytest.raises(ReadOnlyViolation, match=r"ibkr\.read_only"):
            broker.place_order("AAPL", "LONG", 1, stubs.aapl_bull_call(), "LIMIT", 2.0)
        with pytest.raises(ReadOnlyViolation, match=r"ibkr\.read_only"):
            broker.cancel_order(oid)
    assert len(state.placed) == 1 and placeholder.orders == {}


@pytest.mark.parametrize("symbol", ["", "  ", None, "aapl$"])
def test_a_bad_symbol_is_invalid_input_in_both_brokers(
        adapter: tuple[IBKRIBInsyncApi, stubs.StubState], placeholder: IBKRApi,
        symbol: Any) -> None:
    api, _ = adapter
    for broker in (api, placeholder):
        with pytest.raises(InvalidOrder, match="symbol"):
            broker.get_market_data(symbol)
        with pytest.raises(InvalidOrder, match="symbol"):
            broker.get_option_chain(symbol)


def test_unknown_symbol_is_trouble_not_bad_input_in_both_brokers(
        adapter: tuple[IBKRIBInsyncApi, stubs.StubState], placeholder: IBKRApi) -> None:
    api, _ = adapter
    for broker in (api, placeholder):
        data = broker.get_market_data("ZZZNOPE")
        assert data["symbol"] == "ZZZNOPE" and data["error"]


def test_pending_cancel_is_a_status_and_not_final() -> None:
    assert "PendingCancel" in ORDER_STATUSES and "PendingCancel" not in FINAL_STATUSES


def test_executor_keeps_tracking_a_pending_cancel_until_final() -> None:
    broker = MagicMock()
    statuses = iter([{"status": "PendingCancel"}, {"status": "Cancelled"}])
    broker.get_order_status.side_effect = lambda oid: next(statuses)
    executor = TradeExecutor(Config(), broker)
    record = TradeRecord(signal=MagicMock(), status="PLACED", order_id="7")
    executor.trades["t1"] = record
    executor.process_queued_trades()
    assert record.status == "PLACED" and record.order["status"] == "PendingCancel"
    executor.process_queued_trades()
    assert record.status == "Cancelled"


def test_adapter_tracks_pending_cancel_without_resending_and_it_may_still_fill(
        adapter: tuple[IBKRIBInsyncApi, stubs.StubState]) -> None:
    api, state = adapter
    ib = api.ib
    order_id = api.place_order("AAPL", "LONG", 1, stubs.aapl_bull_call(), "LIMIT", 2.0)
    trade = state.trades[-1]
    api._loop.call(ib.set_status, trade, "PendingCancel")
    assert api.get_order_status(order_id)["status"] == "PendingCancel"
    assert api.cancel_order(order_id) is True  # already pending: not sent again
    ib.cancelOrder.assert_not_called()
    api._loop.call(lambda: ib.set_status(trade, "Filled", filled=1.0, remaining=0.0,
                                         avgFillPrice=2.0))
    assert api.get_order_status(order_id)["status"] == "Filled"  # PendingCancel was not final


def test_one_set_of_statuses_and_constants_for_both_brokers() -> None:
    from src.brokers import base, translate, validation

    assert translate.TERMINAL_STATUSES is base.FINAL_STATUSES
    assert validation.DIRECTIONS is base.DIRECTIONS
    assert validation.PRICE_TYPES is base.PRICE_TYPES
    assert set(base.ORDER_STATUSES) > base.FINAL_STATUSES
