"""IBKRClient with a mocked ib_insync (seed 003's planned unit tests): connect / disconnect,
the gateway unavailable (errors mapped, retries with backoff through an injected rng and sleep),
place_order's happy and failure paths, market data, typed frozen results."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import stubs

from src.brokers.client_types import ConnectionState, OrderResult, Quote
from src.brokers.compat import LimitOrder, Stock
from src.brokers.errors import (
    ConnectionLost,
    LiveTradingNotAllowed,
    NotConnected,
    OrderRejected,
    PacingViolation,
    ReadOnlyViolation,
)
from src.brokers.ib_client import IBKRClient
from src.brokers.settings import BrokerSettings
from src.utils.clock import FixedClock

NOW = FixedClock.new_york(date(2026, 12, 1))


class FakeSleep:
    """Records the backoff delays and returns at once; ``on_call`` runs before each return."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.on_call: Any = None

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.on_call is not None:
            self.on_call(len(self.delays))


def make_client(state: stubs.StubState, sleep: FakeSleep | None = None, seed: int = 7,
                **changes: Any) -> tuple[IBKRClient, Any]:
    ib = stubs.mock_ib(state)
    settings = BrokerSettings(timeout=2.0, request_timeout=2.0, reconnect_base=0.5,
                              reconnect_cap=4.0).replace(**changes)
    client = IBKRClient(settings, ib_factory=lambda: ib, clock=NOW, rng=random.Random(seed),
                        sleep=sleep or FakeSleep())
    return client, ib


def wait_supervisor(client: IBKRClient) -> None:
    async def waiter() -> None:
        task = client.connection._reconnect_task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    client.run(waiter, timeout=10)


@pytest.fixture
def state() -> stubs.StubState:
    return stubs.StubState()


@pytest.fixture
def client(state: stubs.StubState) -> Iterator[tuple[IBKRClient, Any]]:
    c, ib = make_client(state)
    assert c.connect() is True
    yield c, ib
    c.close()


# --- connect / disconnect ---------------------------------------------------------------------


def test_connect_and_disconnect_with_a_mocked_library(state: stubs.StubState,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    c, ib = make_client(state, host="127.0.0.1", port=4002, client_id=9)
    try:
        assert c.is_connected() is False and c.state is ConnectionState.DISCONNECTED
        with caplog.at_level(logging.INFO):
            assert c.connect() is True
        args, kwargs = ib.connectAsync.call_args
        assert args == ("127.0.0.1", 4002) and kwargs["clientId"] == 9
        assert c.is_connected() and c.state is ConnectionState.CONNECTED
        assert c.account_id == stubs.ACCOUNT  # from managedAccounts()
        assert c.metrics.value("ib_connection_status") == 1
        assert "Connecting to IBKR at 127.0.0.1:4002 with client ID 9" in caplog.text
        c.disconnect()
        assert c.is_connected() is False and ib.disconnect.called
        assert c.metrics.value("ib_connection_status") == 0
        assert c.state is ConnectionState.DISCONNECTED
    finally:
        c.close()


def test_gateway_unavailable_is_mapped_and_retried_with_backoff(
        state: stubs.StubState, caplog: pytest.LogCaptureFixture) -> None:
    sleep = FakeSleep()
    state.connect_error = ConnectionRefusedError("gateway not up yet")

    def gateway_comes_up(calls: int) -> None:
        if calls == 3:
            state.connect_error = None

    sleep.on_call = gateway_comes_up
    c, ib = make_client(state, sleep)
    try:
        with caplog.at_level(logging.INFO):
            assert c.connect() is False  # at once, per the contract
        assert isinstance(c.last_error, ConnectionLost)  # OSError mapped onto the tree
        assert "Failed to connect to IBKR" in caplog.text
        wait_supervisor(c)  # the supervisor keeps trying after a failed first connect
        ref = random.Random(7)
        assert sleep.delays == [ref.uniform(0.5, min(4.0, 0.5 * 2 ** a)) for a in range(3)]
        assert state.connect_calls == 1 + 3
        assert c.is_connected() and c.metrics.value("ib_connection_status") == 1
    finally:
        c.close()


def test_gateway_unavailable_without_auto_reconnect_is_not_retried(
        state: stubs.StubState) -> None:
    sleep = FakeSleep()
    state.connect_error = ConnectionRefusedError("refused")
    c, _ = make_client(state, sleep, auto_reconnect=False)
    try:
        assert c.connect() is False
        assert not c.connection.reconnecting and sleep.delays == []
        assert state.connect_calls == 1 and isinstance(c.last_error, ConnectionLost)
    finally:
        c.close()


def test_retries_give_up_after_the_configured_attempts(state: stubs.StubState) -> None:
    sleep = FakeSleep()
    state.connect_error = ConnectionRefusedError("down")
    c, _ = make_client(state, sleep, reconnect_max_attempts=2)
    try:
        assert c.connect() is False
        wait_supervisor(c)
        assert len(sleep.delays) == 2 and state.connect_calls == 3
        assert c.state is ConnectionState.LOST
    finally:
        c.close()


def test_pacing_violation_that_ends_the_session_stays_the_last_error(
        state: stubs.StubState) -> None:
    """Issue 8: after an error 100 (the gateway then disconnects), ``last_error`` keeps the
    PacingViolation; the ConnectionLost of the failed reconnects does not overwrite it."""
    sleep = FakeSleep()
    c, ib = make_client(state, sleep, reconnect_max_attempts=2)
    try:
        assert c.connect()
        state.connect_error = ConnectionRefusedError("gateway closed the socket")
        c.call(ib.errorEvent.emit, -1, 100, "Max rate of messages per second exceeded", None)
        c.call(ib.disconnect)
        wait_supervisor(c)
        assert isinstance(c.last_error, PacingViolation) and c.last_error.code == 100
        state.connect_error = None
        assert c.connect()
        c.call(ib.disconnect)  # a later loss, not caused by pacing
        wait_supervisor(c)
        c.record_error(ConnectionLost("socket closed"))
        assert isinstance(c.last_error, ConnectionLost)
    finally:
        c.close()


# --- place_order ------------------------------------------------------------------------------


def test_place_order_happy_path(client: tuple[IBKRClient, Any], state: stubs.StubState,
                                caplog: pytest.LogCaptureFixture) -> None:
    c, ib = client
    (aapl,) = c.qualify(Stock("AAPL", "SMART", "USD"))
    order = LimitOrder("BUY", 1, 1.0)
    with caplog.at_level(logging.INFO):
        result = c.place_order(aapl, order)
    assert isinstance(result, OrderResult)
    assert (result.order_id, result.status, result.quantity) == (100, "Submitted", 1.0)
    assert result.contract.symbol == "AAPL" and result.contract.con_id == stubs.AAPL_CON_ID
    assert result.time == NOW.now()
    assert order.orderId == 0  # the caller's Order was copied, not mutated on the loop
    sent_contract, sent_order = state.placed[-1]
    assert sent_order is not order and sent_order.account == stubs.ACCOUNT
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = "Filled"  # type: ignore[misc]
    assert c.metrics.value("ib_orders_total") == 1
    assert "Submitting order: BUY 1 AAPL STK LMT" in caplog.text
    assert "Order #100 answered: Submitted" in caplog.text
    c.call(lambda: ib.set_status(state.trades[-1], "Filled", filled=1.0, remaining=0.0,
                                 avgFillPrice=1.0))
    assert c.order_state(100).status == "Filled"


def test_place_order_rejected_by_the_gateway(client: tuple[IBKRClient, Any],
                                             state: stubs.StubState) -> None:
    c, _ = client
    state.on_place, state.reject_code = "reject", 201
    with pytest.raises(OrderRejected, match="Order placement failed: .*market is closed") as e:
        c.place_order(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
    assert e.value.code == 201 and c.last_error is e.value
    assert c.metrics.value("ib_order_errors_total") == 1
    assert c.metrics.value("ib_orders_total") == 0


def test_place_order_library_exception_is_mapped(client: tuple[IBKRClient, Any],
                                                 state: stubs.StubState) -> None:
    c, _ = client
    state.on_place = "raise"
    with pytest.raises(OrderRejected, match="Market is closed"):
        c.place_order(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
    assert c.metrics.value("ib_order_errors_total") == 1


def test_place_order_refused_before_sending(state: stubs.StubState) -> None:
    c, _ = make_client(state)
    try:
        with pytest.raises(NotConnected):
            c.place_order(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
        assert c.connect()
        c.settings = c.settings.replace(read_only=True)
        with pytest.raises(ReadOnlyViolation, match="ibkr.read_only"):
            c.place_order(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
        c.settings = c.settings.replace(read_only=False, port=4001)  # a live gateway port
        with pytest.raises(LiveTradingNotAllowed):
            c.place_order(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
        assert state.placed == []
    finally:
        c.close()


def test_cancel_order(client: tuple[IBKRClient, Any], state: stubs.StubState) -> None:
    c, _ = client
    placed = c.place_order(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
    cancelled = c.cancel_order(placed.order_id)
    assert cancelled.status == "Cancelled" and cancelled.order_id == placed.order_id


# --- market data ------------------------------------------------------------------------------


def test_request_and_cancel_market_data(client: tuple[IBKRClient, Any],
                                        caplog: pytest.LogCaptureFixture) -> None:
    c, ib = client
    with caplog.at_level(logging.INFO):
        quote = c.request_market_data(Stock("AAPL", "SMART", "USD"))
    assert isinstance(quote, Quote)
    assert (quote.bid, quote.ask, quote.last) == (150.20, 150.30, 150.25)
    assert quote.time == NOW.now() and quote.contract.con_id == stubs.AAPL_CON_ID
    assert c.metrics.value("ib_market_data_subscriptions") == 1
    assert "Market data subscribed: AAPL" in caplog.text
    assert c.cancel_market_data(Stock("AAPL", "SMART", "USD", conId=stubs.AAPL_CON_ID))
    assert ib.cancelMktData.called and c.metrics.value("ib_market_data_subscriptions") == 0
    assert c.cancel_market_data(Stock("AAPL", "SMART", "USD")) is False


def test_account_reads_are_typed_copies(client: tuple[IBKRClient, Any]) -> None:
    c, _ = client
    values = c.account_values()
    assert values and all(v.account == stubs.ACCOUNT for v in values)
    positions = c.positions()
    assert all(dataclasses.is_dataclass(p) for p in positions)
    assert c.executions() == []
