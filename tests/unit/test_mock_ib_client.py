"""MockIBKRClient implements IBKRClientProtocol exactly as IBKRClient does (member by member,
signature by signature) and returns deterministic results: order ids, scripted fills
(immediate, resting, partial, rejected), settable connection states, errors injected by IB code
and mapped by the real client's table."""

from __future__ import annotations

import inspect
from datetime import date
from typing import Any

import pytest

from src.brokers.client_protocol import IBKRClientProtocol
from src.brokers.client_types import ConnectionState
from src.brokers.compat import LimitOrder, Stock
from src.brokers.errors import (
    ContractNotFound,
    NotConnected,
    OrderRejected,
    PacingViolation,
    ReadOnlyViolation,
)
from src.brokers.ib_client import IBKRClient
from src.brokers.mock_client import MockIBKRClient
from src.brokers.settings import BrokerSettings
from src.utils.clock import FixedClock

CLOCK = FixedClock.new_york(date(2026, 12, 1))
MEMBERS = sorted(name for name, value in vars(IBKRClientProtocol).items()
                 if not name.startswith("_") and (callable(value) or isinstance(value, property)))
ATTRIBUTES = sorted(IBKRClientProtocol.__annotations__)


def test_the_protocol_lists_seed_003s_methods_and_the_adapters() -> None:
    assert {"connect", "disconnect", "is_connected", "place_order", "request_market_data",
            "cancel_market_data", "qualify", "contract_details", "cancel_order", "order_state",
            "executions", "positions", "account_values"} <= set(MEMBERS)
    assert {"settings", "account_id", "last_error", "metrics"} == set(ATTRIBUTES)


@pytest.mark.parametrize("cls", [IBKRClient, MockIBKRClient])
@pytest.mark.parametrize("name", MEMBERS)
def test_member_signatures_match_the_protocol(cls: type, name: str) -> None:
    wanted = vars(IBKRClientProtocol)[name]
    actual = getattr(cls, name, None)
    assert actual is not None, f"{cls.__name__}.{name} is missing"
    if isinstance(wanted, property):
        assert isinstance(actual, property), f"{cls.__name__}.{name} must be a property"
        wanted, actual = wanted.fget, actual.fget
    ws, acts = inspect.signature(wanted), inspect.signature(actual)
    assert [(p.name, p.kind, p.default) for p in ws.parameters.values()] == [
        (p.name, p.kind, p.default) for p in acts.parameters.values()], (
        f"{cls.__name__}.{name}{acts} != protocol {ws}")
    assert str(ws.return_annotation) == str(acts.return_annotation), (
        f"{cls.__name__}.{name} returns {acts.return_annotation}, "
        f"protocol {ws.return_annotation}")


def test_both_are_instances_of_the_protocol() -> None:
    real = IBKRClient(BrokerSettings(), ib_factory=lambda: _FakeIB())
    try:
        assert isinstance(real, IBKRClientProtocol)
        for attr in ATTRIBUTES:
            assert hasattr(real, attr)
    finally:
        real.close()
    mock = MockIBKRClient()
    assert isinstance(mock, IBKRClientProtocol)
    for attr in ATTRIBUTES:
        assert hasattr(mock, attr)


class _FakeIB:
    """Just enough of an IB for the constructor (events that accept handlers)."""

    class _Event:
        def __iadd__(self, handler: Any) -> _FakeIB._Event:
            return self

        def disconnect(self, handler: Any) -> None:
            pass

    def __init__(self) -> None:
        self.client = type("C", (), {"apiError": _FakeIB._Event()})()

    def __getattr__(self, name: str) -> Any:
        if name.endswith("Event"):
            return _FakeIB._Event()
        raise AttributeError(name)

    def isConnected(self) -> bool:  # noqa: N802 - IB's name
        return False


@pytest.fixture
def mock() -> MockIBKRClient:
    m = MockIBKRClient(clock=CLOCK, first_order_id=500)
    m.set_quote("AAPL", 150.2, 150.3, 150.25)
    assert m.connect()
    return m


def order(qty: int = 2, price: float = 1.5) -> Any:
    return LimitOrder("BUY", qty, price)


def test_order_ids_and_conids_are_deterministic(mock: MockIBKRClient) -> None:
    first = [mock.place_order(Stock("AAPL", "SMART", "USD"), order()) for _ in range(3)]
    other = MockIBKRClient(clock=CLOCK, first_order_id=500)
    other.connect()
    second = [other.place_order(Stock("AAPL", "SMART", "USD"), order()) for _ in range(3)]
    assert [r.order_id for r in first] == [500, 501, 502] == [r.order_id for r in second]
    assert first == second  # same contract ids, statuses, times
    (q,) = mock.qualify(Stock("AAPL", "SMART", "USD"))
    assert q.conId == MockIBKRClient.con_id_of(Stock("AAPL", "SMART", "USD")) > 0


def test_scripted_fills(mock: MockIBKRClient) -> None:
    stock = Stock("AAPL", "SMART", "USD")
    mock.script("immediate", price=1.4)
    mock.script("resting")
    mock.script("partial", quantity=1)
    mock.script("rejected", code=201, message="Order rejected - reason: no margin")
    filled = mock.place_order(stock, order())
    assert (filled.status, filled.filled, filled.remaining, filled.avg_fill_price) == (
        "Filled", 2.0, 0.0, 1.4)
    resting = mock.place_order(stock, order())
    assert (resting.status, resting.filled, resting.remaining) == ("Submitted", 0.0, 2.0)
    partial = mock.place_order(stock, order())
    assert (partial.status, partial.filled, partial.remaining) == ("Submitted", 1.0, 1.0)
    with pytest.raises(OrderRejected, match="no margin") as e:
        mock.place_order(stock, order())
    assert e.value.code == 201 and mock.order_state(503).status == "Inactive"
    assert [x.shares for x in mock.executions()] == [2.0, 1.0]
    assert [p.quantity for p in mock.positions()] == [3.0]
    assert mock.metrics.value("ib_orders_total") == 3
    assert mock.metrics.value("ib_order_errors_total") == 1
    assert mock.cancel_order(resting.order_id).status == "Cancelled"
    with pytest.raises(OrderRejected) as done:
        mock.cancel_order(filled.order_id)
    assert done.value.code == 161


@pytest.mark.parametrize("state", [ConnectionState.LOST, ConnectionState.RECONNECTING,
                                   ConnectionState.DISCONNECTED])
def test_connection_states_refuse_gateway_calls(mock: MockIBKRClient,
                                                state: ConnectionState) -> None:
    mock.set_state(state)
    assert mock.state is state and mock.is_connected() is False
    assert mock.metrics.value("ib_connection_status") == 0
    for call in (lambda: mock.place_order(Stock("AAPL", "SMART", "USD"), order()),
                 lambda: mock.request_market_data(Stock("AAPL", "SMART", "USD")),
                 mock.positions, mock.account_values):
        with pytest.raises(NotConnected):
            call()
    mock.set_state(ConnectionState.CONNECTED)
    assert mock.is_connected() and mock.metrics.value("ib_connection_status") == 1


def test_errors_injected_by_ib_code_use_the_real_table(mock: MockIBKRClient) -> None:
    mock.inject_error("request_market_data", 100, "Max rate of messages per second exceeded")
    with pytest.raises(PacingViolation) as e:
        mock.request_market_data(Stock("AAPL", "SMART", "USD"))
    assert e.value.code == 100 and mock.last_error is e.value
    mock.inject_error("qualify", 200, "No security definition has been found")
    with pytest.raises(ContractNotFound):
        mock.qualify(Stock("AAPL", "SMART", "USD"))
    mock.inject_error("place_order", 110, "The price does not conform to the minimum tick")
    with pytest.raises(OrderRejected, match="minimum tick"):
        mock.place_order(Stock("AAPL", "SMART", "USD"), order())
    mock.inject_error("connect", 502, "Couldn't connect to TWS")
    assert mock.connect() is False and mock.last_error is not None
    assert mock.last_error.code == 502
    with pytest.raises(ValueError, match="no client method"):
        mock.inject_error("nope", 100)


def test_quotes_and_subscriptions(mock: MockIBKRClient) -> None:
    quote = mock.request_market_data(Stock("AAPL", "SMART", "USD"))
    assert (quote.bid, quote.ask, quote.last, quote.time) == (150.2, 150.3, 150.25, CLOCK.now())
    assert mock.metrics.value("ib_market_data_subscriptions") == 1
    assert mock.cancel_market_data(Stock("AAPL", "SMART", "USD")) is True
    assert mock.cancel_market_data(Stock("AAPL", "SMART", "USD")) is False
    with pytest.raises(ContractNotFound):
        mock.request_market_data(Stock("NOPE", "SMART", "USD"))


def test_read_only_is_refused(mock: MockIBKRClient) -> None:
    ro = MockIBKRClient(BrokerSettings(read_only=True))
    ro.connect()
    with pytest.raises(ReadOnlyViolation):
        ro.place_order(Stock("AAPL", "SMART", "USD"), order())
