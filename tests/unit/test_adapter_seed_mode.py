"""The seeds' own test style must keep working: ``IB`` patched by a PLAIN MagicMock (values on
the sync names, ``xAsync()`` not awaitable) and ``api.connected = True`` without ``connect()``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from unittest.mock import MagicMock, patch

import clock_support
import pytest

from src.app.config import Config
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi
from src.models.option import Option, OptionSpread


@pytest.fixture
def seed_config() -> MagicMock:
    config = MagicMock(spec=Config)
    config.IBKR_HOST = "127.0.0.1"
    config.IBKR_PORT = 7497
    config.IBKR_CLIENT_ID = 1
    return config


@pytest.fixture
def seed_ib() -> Iterator[MagicMock]:
    with patch("src.brokers.ibkr_ib_insync.IB") as ib_class:
        ib = ib_class.return_value
        ib.isConnected.return_value = True
        ib.managedAccounts.return_value = ["DU12345"]
        trade = MagicMock()
        trade.order.orderId = 123
        trade.orderStatus.status = "Submitted"
        ib.placeOrder.return_value = trade
        qualified = MagicMock()
        qualified.conId = 12345
        ib.qualifyContracts.return_value = [qualified]
        ticker = MagicMock()
        ticker.last, ticker.bid, ticker.ask = 150.25, 150.20, 150.30
        ticker.volume, ticker.high, ticker.low, ticker.close = 1000000, 151.5, 149.75, 150.0
        ib.reqMktData.return_value = ticker
        yield ib


@pytest.fixture
def seed_api(seed_config: MagicMock, seed_ib: MagicMock) -> Iterator[IBKRIBInsyncApi]:
    api = IBKRIBInsyncApi(seed_config)
    api.connected = True
    api.account_id = "DU12345"
    yield api
    api.close()


def spread() -> OptionSpread:
    exp = clock_support.today() + timedelta(days=30)
    return OptionSpread(
        symbol="AAPL", spread_type="BULL_CALL",
        long_leg=Option(symbol="A1", underlying="AAPL", option_type="call", strike=150.0,
                        expiration=exp),
        short_leg=Option(symbol="A2", underlying="AAPL", option_type="call", strike=155.0,
                         expiration=exp))


def test_ib_is_created_once_on_the_loop_thread(seed_api: IBKRIBInsyncApi) -> None:
    import src.brokers.ibkr_ib_insync as module

    module.IB.assert_called_once_with()  # type: ignore[attr-defined]
    assert seed_api._loop.thread.is_alive()


def test_connect_uses_sync_fallback_of_plain_mock(seed_config: MagicMock,
                                                  seed_ib: MagicMock) -> None:
    api = IBKRIBInsyncApi(seed_config)
    try:
        assert api.connect() is True
        seed_ib.connect.assert_called_once()
        assert api.account_id == "DU12345"
        seed_ib.reqAccountUpdates.assert_not_called()
    finally:
        api.close()


def test_failed_connect_logs_and_returns_false(seed_config: MagicMock, seed_ib: MagicMock,
                                               caplog: pytest.LogCaptureFixture) -> None:
    seed_ib.connect.side_effect = Exception("Connection refused")
    seed_ib.isConnected.return_value = False
    api = IBKRIBInsyncApi(seed_config)
    try:
        assert api.connect() is False and api.connected is False
        assert any(r.levelno == logging.ERROR
                   and "Failed to connect to IBKR: Connection refused" in r.getMessage()
                   for r in caplog.records)
    finally:
        api.close()


def test_place_order_and_status_follow_the_mutated_trade(seed_api: IBKRIBInsyncApi,
                                                        seed_ib: MagicMock) -> None:
    order_id = seed_api.place_order("AAPL", "LONG", 1, spread(), "LIMIT", 2.85)
    assert order_id == "123"
    assert seed_api.get_order_status(order_id)["status"] == "Submitted"
    bag, order = seed_ib.placeOrder.call_args.args
    assert [leg.action for leg in bag.comboLegs] == ["BUY", "SELL"]
    assert [leg.conId for leg in bag.comboLegs] == [12345, 12345]
    trade = seed_ib.placeOrder.return_value
    trade.orderStatus.status = "Filled"
    trade.orderStatus.filled = 1
    trade.orderStatus.remaining = 0
    trade.orderStatus.avgFillPrice = 2.90
    status = seed_api.get_order_status(order_id)
    assert (status["status"], status["filled"], status["remaining"]) == ("Filled", 1, 0)
    assert status["filled_price"] == 2.90 and status["fill_time"] is not None


def test_place_order_exception_becomes_runtime_error(seed_api: IBKRIBInsyncApi,
                                                     seed_ib: MagicMock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    seed_ib.placeOrder.side_effect = Exception("Market is closed")
    with pytest.raises(RuntimeError, match="Order placement failed: Market is closed"):
        seed_api.place_order("AAPL", "LONG", 1, spread(), "MARKET")
    assert any("Error placing order: Market is closed" in r.getMessage()
               for r in caplog.records)
    assert seed_api.orders == {}


def test_market_data_and_invalid_symbol(seed_api: IBKRIBInsyncApi, seed_ib: MagicMock) -> None:
    data = seed_api.get_market_data("AAPL")
    assert (data["bid"], data["ask"], data["last"]) == (150.20, 150.30, 150.25)
    seed_ib.qualifyContracts.side_effect = Exception("Invalid symbol")
    bad = seed_api.get_market_data("INVALID")
    assert bad["symbol"] == "INVALID" and "Invalid symbol" in bad["error"]
    assert seed_api.get_option_chain("INVALID") == []


def test_account_and_positions_from_plain_mocks(seed_api: IBKRIBInsyncApi,
                                                seed_ib: MagicMock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ibkr")
    values = []
    for tag, value in (("CashBalance", "100000.00"), ("EquityWithLoanValue", "150000.00"),
                       ("BuyingPower", "300000.00")):
        v = MagicMock()
        v.tag, v.value, v.currency = tag, value, "USD"
        values.append(v)
    seed_ib.accountValues.return_value = values
    positions = []
    for symbol, qty, cost in (("AAPL", 100, 150.25), ("MSFT", 50, 220.75)):
        p = MagicMock()
        p.account, p.contract.symbol, p.position, p.avgCost = "DU12345", symbol, qty, cost
        positions.append(p)
    seed_ib.positions.return_value = positions
    summary = seed_api.get_account_summary()
    assert (summary["cash_balance"], summary["equity_with_loan"], summary["buying_power"]) == (
        100000.0, 150000.0, 300000.0)
    table = seed_api.get_positions()
    assert (table["AAPL"]["quantity"], table["MSFT"]["avg_price"]) == (100, 220.75)
    update = MagicMock()
    update.account, update.contract.symbol, update.position, update.avgCost = (
        "DU12345", "AAPL", 120, 152.30)
    seed_api._on_position(update)  # from this (foreign) thread
    assert (seed_api.positions["AAPL"]["quantity"], seed_api.positions["AAPL"]["avg_price"]) == (
        120, 152.30)
    assert any("Position update" in r.getMessage() for r in caplog.records)


def test_disconnect_calls_ib_disconnect_once(seed_api: IBKRIBInsyncApi,
                                            seed_ib: MagicMock) -> None:
    seed_api.disconnect()
    assert seed_api.connected is False
    seed_ib.disconnect.assert_called_once()
