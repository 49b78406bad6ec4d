"""Shared fixtures and pytest-bdd steps of the four seed features (tests/features/*.feature).

The adapter runs for real (its loop thread, handlers, translation); only ``IB`` is replaced by the
stub kit's ``mock_ib`` (tests/stubs.py). Steps assert behaviour: what was sent to placeOrder,
what the handlers did with real ib_insync objects, what was logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock, patch

import clock_support
import pytest
import stubs  # tests/ is on sys.path (rootdir conftest, prepend import mode)
from pytest_bdd import given, parsers, then, when

from src.app.config import Config
from src.brokers.base import ACCOUNT_FIELDS, MARKET_DATA_FIELDS, ORDER_FIELDS, POSITION_FIELDS
from src.brokers.compat import Position
from src.brokers.errors import NotConnected, OrderRejected
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi
from src.models.option import Option
from src.utils.clock import FixedClock, SystemClock

EXPECTED_ERROR_LOG = {
    "connect": "Failed to connect to IBKR",
    "place_order": "Error placing order",
    "market_data": "Error getting market data for INVALID",
    "option_chain": "Error getting option chain for INVALID",
}


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _pinned_system_clock() -> Iterator[None]:
    """No test reads the host's clock: SystemClock answers the pinned instant (tests/
    clock_support.py) for the whole session. Code under test that is given a clock uses that."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SystemClock, "now", lambda self: clock_support.PINNED_NOW)
        yield


@pytest.fixture
def clock() -> FixedClock:
    """A FixedClock at the pinned instant (Wednesday 2026-12-02 10:00 New York), the test's own."""
    return clock_support.pinned_clock()


@pytest.fixture(autouse=True)
def _capture_adapter_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ibkr")


@pytest.fixture
def mock_config() -> MagicMock:
    """The seeds' config double: unset attributes fall back to the Config defaults."""
    config = MagicMock(spec=Config)
    config.IBKR_HOST = "127.0.0.1"
    config.IBKR_PORT = 7497
    config.IBKR_CLIENT_ID = 1
    config.IBKR_TIMEOUT = 2.0
    config.IBKR_REQUEST_TIMEOUT = 2.0
    return config


@pytest.fixture
def stub_state() -> stubs.StubState:
    return stubs.StubState()


@pytest.fixture
def mock_ib(stub_state: stubs.StubState) -> Iterator[MagicMock]:
    ib = stubs.mock_ib(stub_state)
    with patch("src.brokers.ibkr_ib_insync.IB") as ib_class:
        ib_class.return_value = ib
        yield ib


@pytest.fixture
def api(mock_config: MagicMock, mock_ib: MagicMock,
        clock: FixedClock) -> Iterator[IBKRIBInsyncApi]:
    adapter = IBKRIBInsyncApi(mock_config, clock=clock)
    yield adapter
    adapter.close()


@pytest.fixture
def ctx() -> dict[str, Any]:
    """Scenario context shared between steps."""
    return {}


def on_loop(api: IBKRIBInsyncApi, fn: Any, *args: Any) -> Any:
    """Run ``fn`` on the adapter's loop thread (where ib_insync emits its events)."""
    return api._loop.call(fn, *args)


# --- connection ----------------------------------------------------------------------------


@given("the IBKR TWS/Gateway is running")
def gateway_running(stub_state: stubs.StubState) -> None:
    stub_state.connect_error = None


@given("the IBKR TWS/Gateway is not running")
def gateway_not_running(stub_state: stubs.StubState) -> None:
    stub_state.connect_error = ConnectionRefusedError(
        111, "Connect call failed ('127.0.0.1', 7497)")


@given("I have valid connection parameters")
def valid_parameters(api: IBKRIBInsyncApi) -> None:
    assert (api.host, api.port, api.client_id) == ("127.0.0.1", 7497, 1)
    assert api.timeout == 2.0 and api.max_rate == 45  # MagicMock attrs → defaults


@given("I am connected to IBKR")
def connected(api: IBKRIBInsyncApi, mock_ib: MagicMock) -> None:
    assert api.connect() is True
    assert api.connected is True


@when("I connect to IBKR")
@when("I attempt to connect to IBKR")
def connect(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    ctx["action"] = "connect"
    ctx["result"] = api.connect()


@when("I disconnect from IBKR")
def disconnect(api: IBKRIBInsyncApi) -> None:
    api.disconnect()


@then("the connection should be established")
def connection_established(api: IBKRIBInsyncApi, mock_ib: MagicMock, ctx: dict[str, Any]) -> None:
    assert ctx["result"] is True and api.connected is True
    assert api.metrics.value("ib_connection_status") == 1
    kwargs = mock_ib.connectAsync.await_args.kwargs
    assert mock_ib.connectAsync.await_args.args[:2] == ("127.0.0.1", 7497)
    assert kwargs["clientId"] == 1 and kwargs["timeout"] == 2.0 and kwargs["readonly"] is False
    mock_ib.reqAccountUpdates.assert_not_called()  # the seeds' reqAccountUpdates(True, acct) bug
    mock_ib.reqMarketDataType.assert_called_with(1)
    assert mock_ib.client.MaxRequests == 45
    assert api.last_connect_seconds is not None


@then("account information should be available")
def account_available(api: IBKRIBInsyncApi) -> None:
    assert api.account_id == "DU12345"
    assert api.get_account_summary()["account_id"] == "DU12345"
    assert set(api.positions) == {"AAPL", "MSFT"}  # rebuilt at connect


@then("the connection should fail")
def connection_failed(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    assert ctx["result"] is False and api.connected is False
    assert api.metrics.value("ib_connection_status") == 0
    assert api.last_error is not None and api.last_error.retryable


@then("an appropriate error message should be logged")
def error_logged(caplog: pytest.LogCaptureFixture, ctx: dict[str, Any]) -> None:
    expected = EXPECTED_ERROR_LOG[ctx["action"]]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "ibkr"]
    assert any(r.getMessage().startswith(expected) for r in errors), [
        r.getMessage() for r in errors]


@then("the connection should be terminated")
def connection_terminated(api: IBKRIBInsyncApi, mock_ib: MagicMock) -> None:
    assert api.connected is False
    assert mock_ib.isConnected() is False
    assert api.metrics.value("ib_connection_status") == 0


@then("the system should handle the disconnection gracefully")
def disconnection_graceful(api: IBKRIBInsyncApi, mock_ib: MagicMock,
                           stub_state: stubs.StubState) -> None:
    mock_ib.disconnect.assert_called_once()
    assert not api.connection.reconnecting and stub_state.connect_calls == 1
    assert api.get_market_data("AAPL")["error"] == "Not connected to IBKR"
    assert api.get_positions() == {}
    with pytest.raises(NotConnected):
        api.place_order("AAPL", "LONG", 1, stubs.aapl_bull_call(), "LIMIT", 2.85)
    api.handle_callbacks()


# --- orders --------------------------------------------------------------------------------


@given("I have a valid option spread for AAPL")
def valid_spread(ctx: dict[str, Any]) -> None:
    ctx["spread"] = stubs.aapl_bull_call()
    assert ctx["spread"].symbol == "AAPL" and ctx["spread"].spread_type == "BULL_CALL"


@given("I have placed a limit order")
@when(parsers.parse("I place a limit order for {quantity:d} contract"))
def place_limit(api: IBKRIBInsyncApi, ctx: dict[str, Any], quantity: int = 1) -> None:
    ctx["action"] = "place_order"
    ctx["quantity"] = quantity
    ctx["order_type"] = "LMT"
    ctx["order_id"] = api.place_order("AAPL", "LONG", quantity, ctx["spread"], "LIMIT", 2.85)


@when(parsers.parse("I place a market order for {quantity:d} contracts"))
@when(parsers.parse("I place a market order for {quantity:d} contract"))
def place_market(api: IBKRIBInsyncApi, ctx: dict[str, Any], quantity: int) -> None:
    ctx["action"] = "place_order"
    ctx["quantity"] = quantity
    ctx["spread"] = stubs.aapl_bear_put()
    ctx["order_type"] = "MKT"
    try:
        ctx["order_id"] = api.place_order("AAPL", "LONG", quantity, ctx["spread"], "MARKET")
    except Exception as exc:  # noqa: BLE001 - asserted by the Then steps
        ctx["error"] = exc


@then("the order should be submitted successfully")
def order_submitted(api: IBKRIBInsyncApi, ctx: dict[str, Any], stub_state: stubs.StubState
                    ) -> None:
    assert "error" not in ctx, ctx.get("error")
    assert api.get_order_status(ctx["order_id"])["status"] == "Submitted"
    bag, order = stub_state.placed[-1]
    spread = ctx["spread"]
    right = "C" if spread.spread_type == "BULL_CALL" else "P"
    exp = spread.expiration.strftime("%Y%m%d")
    assert (bag.secType, bag.symbol, bag.exchange, bag.currency) == ("BAG", "AAPL", "SMART", "USD")
    assert [(leg.conId, leg.action, leg.ratio) for leg in bag.comboLegs] == [
        (stubs.option_con_id(exp, spread.long_leg.strike, right), "BUY", 1),
        (stubs.option_con_id(exp, spread.short_leg.strike, right), "SELL", 1),
    ]
    assert order.action == "BUY" and order.totalQuantity == ctx["quantity"]
    assert order.account == "DU12345" and order.orderRef
    assert order.orderType == ctx["order_type"]
    assert api.metrics.value("ib_orders_total") == 1


@then("the order status should be tracked")
def order_tracked(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    status = api.get_order_status(ctx["order_id"])
    assert set(ORDER_FIELDS) <= set(status)
    assert (status["filled"], status["remaining"]) == (0, 1)
    assert (status["limit_price"], status["price_type"], status["spread_type"]) == (
        2.85, "LIMIT", "BULL_CALL")
    assert api.get_order_status("999999") == {}


@then("the order should be filled at market price")
def order_filled(api: IBKRIBInsyncApi, mock_ib: MagicMock, ctx: dict[str, Any],
                 stub_state: stubs.StubState) -> None:
    trade = stub_state.trades[-1]
    fill = stubs.fill("0001.01", order_id=trade.order.orderId, shares=2, price=2.90)

    def gateway_fills() -> None:  # what ib_insync's Wrapper does on execDetails + orderStatus
        trade.fills.append(fill)
        mock_ib.execDetailsEvent.emit(trade, fill)
        mock_ib.set_status(trade, "Filled", filled=2.0, remaining=0.0, avgFillPrice=2.90)
        report = stubs.commission_report("0001.01", 1.30)
        mock_ib.commissionReportEvent.emit(trade, fill, report)

    on_loop(api, gateway_fills)
    status = api.get_order_status(ctx["order_id"])
    assert (status["status"], status["filled"], status["remaining"]) == ("Filled", 2, 0)
    assert status["filled_price"] == 2.90 and status["fill_time"] is not None
    assert [e["execution_id"] for e in status["executions"]] == ["0001.01"]
    assert [c["commission"] for c in status["commissions"]] == [1.30]


@given("the order is not yet filled")
def order_not_filled(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    status = api.get_order_status(ctx["order_id"])
    assert status["status"] == "Submitted" and status["filled"] == 0


@when("I cancel the order")
def cancel(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    ctx["cancelled"] = api.cancel_order(ctx["order_id"])  # the stub confirms synchronously


@then("the order should be cancelled successfully")
def order_cancelled(api: IBKRIBInsyncApi, mock_ib: MagicMock, ctx: dict[str, Any]) -> None:
    assert ctx["cancelled"] is True
    assert api.get_order_status(ctx["order_id"])["status"] == "Cancelled"
    mock_ib.cancelOrder.assert_called_once()
    assert api.cancel_order(ctx["order_id"]) is False  # final: nothing more to cancel


@given("the market is closed")
def market_closed(stub_state: stubs.StubState) -> None:
    stub_state.on_place = "reject"


@then("the order should be rejected")
def order_rejected(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    error = ctx.get("error")
    assert isinstance(error, RuntimeError) and isinstance(error, OrderRejected)
    assert str(error).startswith("Order placement failed: ") and error.code == 201
    assert api.metrics.value("ib_order_errors_total") == 1


# --- market data ---------------------------------------------------------------------------


@when(parsers.parse('I request market data for "{symbol}"'))
@when(parsers.parse('I request market data for an invalid symbol "{symbol}"'))
def request_market_data(api: IBKRIBInsyncApi, ctx: dict[str, Any], symbol: str) -> None:
    ctx["action"] = "market_data"
    ctx["data"] = api.get_market_data(symbol)


@then("I should receive the current price data")
def price_data(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    data = ctx["data"]
    assert "error" not in data and data["symbol"] == "AAPL"
    assert set(MARKET_DATA_FIELDS) <= set(data)
    assert api.metrics.value("ib_market_data_subscriptions") == 1


@then("the data should include bid, ask, and last price")
def bid_ask_last(ctx: dict[str, Any]) -> None:
    data = ctx["data"]
    assert (data["bid"], data["ask"], data["last"]) == (150.20, 150.30, 150.25)
    assert (data["volume"], data["high"], data["low"], data["close"]) == (
        1_000_000, 151.50, 149.75, 150.00)


@then("I should receive an error response")
def error_response(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    assert ctx["data"]["symbol"] == "INVALID" and ctx["data"]["error"]
    assert api.metrics.value("ib_market_data_subscriptions") == 0


@when(parsers.parse('I request the option chain for "{symbol}"'))
@when(parsers.parse('I request the option chain for an invalid symbol "{symbol}"'))
def request_chain(api: IBKRIBInsyncApi, ctx: dict[str, Any], symbol: str) -> None:
    ctx["action"] = "option_chain"
    ctx["options"] = api.get_option_chain(symbol)


@then("I should receive a list of available options")
def options_list(ctx: dict[str, Any], mock_ib: MagicMock) -> None:
    options = ctx["options"]
    assert options and all(isinstance(o, Option) for o in options)
    assert len(options) == 4 * 6 * 2  # CHAIN_EXPIRATIONS x CHAIN_STRIKES x (call, put)
    queries = [c.args[0] for c in mock_ib.reqContractDetailsAsync.await_args_list]
    assert len(queries) == 4 and all(q.strike == 0.0 and q.right == "" for q in queries)


@then("the options should include calls and puts")
def calls_and_puts(ctx: dict[str, Any]) -> None:
    options = ctx["options"]
    assert {o.option_type for o in options} == {"call", "put"}
    for exp in {o.expiration for o in options}:
        for kind in ("call", "put"):
            strikes = sorted(o.strike for o in options
                             if o.expiration == exp and o.option_type == kind)
            assert strikes == [145.0, 147.5, 150.0, 152.5, 155.0, 160.0]  # nearest 150.25


@then("each option should have price and Greek data")
def price_and_greeks(ctx: dict[str, Any]) -> None:
    for option in ctx["options"]:
        assert option.bid > 0 and option.ask > 0 and option.last > 0
        assert option.delta != 0 and option.gamma != 0 and option.theta != 0
        assert option.vega != 0 and option.implied_volatility == 0.25
        assert option.rho == 0.0  # ib_insync's OptionComputation has no rho


@then("I should receive an empty list")
def empty_list(ctx: dict[str, Any]) -> None:
    assert ctx["options"] == []


# --- account -------------------------------------------------------------------------------


@when("I request the account summary")
def request_summary(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    ctx["summary"] = api.get_account_summary()


@then("I should receive the account values")
def account_values(ctx: dict[str, Any]) -> None:
    summary = ctx["summary"]
    assert "error" not in summary and summary["timestamp"]
    assert summary["account_id"] == "DU12345"
    assert set(ACCOUNT_FIELDS) <= set(summary)


@then("the summary should include cash balance and equity values")
def cash_and_equity(ctx: dict[str, Any]) -> None:
    s = ctx["summary"]
    assert (s["cash_balance"], s["equity_with_loan"], s["buying_power"]) == (
        100000.0, 150000.0, 300000.0)
    assert s["net_liquidation"] == 151000.5  # USD row, not EUR
    assert s["day_trades_remaining"] == 3.0  # currency-less tag
    assert s["available_funds"] is None and s["total_cash_value"] is None


@when("I request my current positions")
def request_positions(api: IBKRIBInsyncApi, ctx: dict[str, Any]) -> None:
    ctx["positions"] = api.get_positions()


@then("I should receive a list of positions")
def positions_list(ctx: dict[str, Any]) -> None:
    assert isinstance(ctx["positions"], dict) and set(ctx["positions"]) == {"AAPL", "MSFT"}


@then("each position should include symbol, quantity, and average cost")
def position_fields(ctx: dict[str, Any]) -> None:
    for symbol, row in ctx["positions"].items():
        assert set(POSITION_FIELDS) <= set(row) and row["symbol"] == symbol
        assert row["account"] == "DU12345"
    assert (ctx["positions"]["AAPL"]["quantity"], ctx["positions"]["AAPL"]["avg_price"]) == (
        100, 150.25)
    assert (ctx["positions"]["MSFT"]["quantity"], ctx["positions"]["MSFT"]["avg_price"]) == (
        50, 220.75)


@given(parsers.parse('I have an open position in "{symbol}"'))
def open_position(api: IBKRIBInsyncApi, symbol: str) -> None:
    with api.lock:
        assert api.positions[symbol]["quantity"] == 100


@when("a position update event occurs")
def position_event(api: IBKRIBInsyncApi, mock_ib: MagicMock, stub_state: stubs.StubState
                   ) -> None:
    contract = stub_state.positions[0].contract
    update = Position("DU12345", contract, 120.0, 152.30)

    def gateway_sends() -> None:  # the Wrapper updates its state, then emits
        stub_state.positions[0] = update
        mock_ib.positionEvent.emit(update)

    on_loop(api, gateway_sends)


@then("my position data should be updated accordingly")
def position_updated(api: IBKRIBInsyncApi) -> None:
    with api.lock:
        row = dict(api.positions["AAPL"])
    assert (row["quantity"], row["avg_price"]) == (120, 152.30)
    assert api.get_positions()["AAPL"]["quantity"] == 120


@then("the update should be logged")
def update_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert any(r.getMessage().startswith("Position update: AAPL, 120")
               for r in caplog.records)
