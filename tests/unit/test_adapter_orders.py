"""The adapter's order path with the stub IB: validation, interlocks, idempotency, rejection,
cancel without deadlock, order ids."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock, patch

import pytest
import stubs

from src.app.config import Config
from src.brokers.errors import (
    InvalidOrder,
    LiveTradingNotAllowed,
    NotConnected,
    OrderInterrupted,
    OrderRejected,
    ReadOnlyViolation,
)
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi


def make_api(state: stubs.StubState, **settings: Any) -> tuple[IBKRIBInsyncApi, MagicMock]:
    ib = stubs.mock_ib(state)
    config = Config(IBKR_TIMEOUT=2.0, IBKR_REQUEST_TIMEOUT=settings.pop("rt", 2.0)).replace(
        **settings)
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(config)
    return api, ib


@pytest.fixture
def state() -> stubs.StubState:
    return stubs.StubState()


@pytest.fixture
def adapter(state: stubs.StubState) -> Iterator[tuple[IBKRIBInsyncApi, MagicMock]]:
    api, ib = make_api(state)
    assert api.connect()
    yield api, ib
    api.close()


SPREAD = stubs.aapl_bull_call()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "LONG", 1, SPREAD, "LIMIT", 1.0), "symbol"),
        ((None, "LONG", 1, SPREAD, "LIMIT", 1.0), "symbol"),
        (("AA;PL", "LONG", 1, SPREAD, "LIMIT", 1.0), "symbol"),
        (("AAPL", "BUY", 1, SPREAD, "LIMIT", 1.0), "direction"),
        (("AAPL", "LONG", 0, SPREAD, "LIMIT", 1.0), "contracts"),
        (("AAPL", "LONG", -2, SPREAD, "LIMIT", 1.0), "contracts"),
        (("AAPL", "LONG", True, SPREAD, "LIMIT", 1.0), "contracts"),
        (("AAPL", "LONG", 1.5, SPREAD, "LIMIT", 1.0), "contracts"),
        (("AAPL", "LONG", 11, SPREAD, "LIMIT", 1.0), "risk.max_contracts_per_order"),
        (("AAPL", "LONG", 1, SPREAD, "STOP", 1.0), "price_type"),
        (("AAPL", "LONG", 1, SPREAD, "LIMIT", None), "limit_price"),
        (("AAPL", "LONG", 1, SPREAD, "LIMIT", math.nan), "limit_price"),
        (("AAPL", "LONG", 1, SPREAD, "LIMIT", -1.0), "limit_price"),
        (("AAPL", "LONG", 1, SPREAD, "LIMIT", "2.5"), "limit_price"),
        (("AAPL", "LONG", 1, "spread", "LIMIT", 1.0), "option_spread"),
        (("MSFT", "LONG", 1, SPREAD, "LIMIT", 1.0), "option_spread"),
    ],
)
def test_bad_input_is_refused_before_sending(adapter: tuple[IBKRIBInsyncApi, MagicMock],
                                             args: tuple[Any, ...], field: str) -> None:
    api, ib = adapter
    with pytest.raises(ValueError, match=field) as info:
        api.place_order(*args)
    assert isinstance(info.value, InvalidOrder)
    assert api.orders == {}
    ib.placeOrder.assert_not_called()
    ib.qualifyContractsAsync.assert_not_called()


def test_bad_order_id_and_symbol_arguments(adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, _ = adapter
    for call in (lambda: api.get_order_status(123), lambda: api.cancel_order(None),
                 lambda: api.get_market_data(""), lambda: api.get_option_chain(42)):
        with pytest.raises(ValueError):
            call()  # type: ignore[no-untyped-call]


def test_not_connected_sends_nothing(state: stubs.StubState) -> None:
    api, ib = make_api(state)
    try:
        with pytest.raises(NotConnected):
            api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
        assert api.cancel_order("1") is False
        ib.placeOrder.assert_not_called()
    finally:
        api.close()


def test_read_only_refuses_orders_and_cancels(state: stubs.StubState) -> None:
    api, ib = make_api(state, IBKR_READ_ONLY=True)
    try:
        assert api.connect()
        assert ib.connectAsync.await_args.kwargs["readonly"] is True
        with pytest.raises(ReadOnlyViolation):
            api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
        with pytest.raises(ReadOnlyViolation):
            api.cancel_order("100")
        ib.placeOrder.assert_not_called()
        ib.cancelOrder.assert_not_called()
    finally:
        api.close()


@pytest.mark.parametrize(
    ("accounts", "port", "mode", "allow", "allowed"),
    [
        (["U1234567"], 7497, "paper", False, False),
        (["DU1234567"], 7496, "paper", False, False),
        (["DU1234567"], 4001, "live", False, False),
        (["U1234567"], 7496, "live", True, True),
        (["DU1234567"], 7497, "paper", False, True),
    ],
)
def test_live_interlock(state: stubs.StubState, accounts: list[str], port: int, mode: str,
                        allow: bool, allowed: bool) -> None:
    state.accounts = accounts
    api, ib = make_api(state, IBKR_PORT=port, TRADING_MODE=mode, ALLOW_LIVE=allow)
    try:
        assert api.connect()
        if allowed:
            assert api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
        else:
            with pytest.raises(LiveTradingNotAllowed):
                api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
            ib.placeOrder.assert_not_called()
    finally:
        api.close()


def test_order_ref_is_idempotent(adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    first = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0, order_ref="sig-42")
    again = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0, order_ref="sig-42")
    assert first == again and ib.placeOrder.call_count == 1
    assert ib.placeOrder.call_args.args[1].orderRef == "sig-42"
    other = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
    assert other != first and ib.placeOrder.call_count == 2
    assert api.get_order_status(first)["order_ref"] == "sig-42"


def test_leg_conids_are_cached_for_the_session(adapter: tuple[IBKRIBInsyncApi, MagicMock]
                                               ) -> None:
    api, ib = adapter
    api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
    api.place_order("AAPL", "SHORT", 1, SPREAD, "LIMIT", 1.0)
    assert ib.qualifyContractsAsync.await_count == 2  # two legs, once
    legs = [(leg.action) for leg in ib.placeOrder.call_args.args[0].comboLegs]
    assert legs == ["SELL", "BUY"] and ib.placeOrder.call_args.args[1].action == "BUY"


def test_unknown_leg_is_a_rejection(adapter: tuple[IBKRIBInsyncApi, MagicMock],
                                    state: stubs.StubState) -> None:
    api, ib = adapter
    state.strikes = (150.0,)  # the 155 call does not exist
    with pytest.raises(OrderRejected, match="leg not found") as info:
        api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
    assert info.value.code == 200 and api.orders == {}
    ib.placeOrder.assert_not_called()


def test_rejection_by_error_event_ends_the_wait(state: stubs.StubState,
                                                caplog: pytest.LogCaptureFixture) -> None:
    state.on_place = "reject"
    api, ib = make_api(state, rt=60.0)  # a broken wait would show as a timeout warning
    try:
        assert api.connect()
        with pytest.raises(OrderRejected) as info:
            api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0, order_ref="r1")
        assert info.value.code == 201 and "market is closed" in str(info.value)
        assert isinstance(api.last_error, OrderRejected)
        assert not any("no acknowledgement" in r.getMessage() for r in caplog.records)
        record = next(iter(api.orders.values()))
        # the library says Cancelled; a rejected order is IB's Inactive, with the reason
        assert record["status"] == "Inactive" and "market is closed" in record["error"]
        state.on_place = "ack"  # a refused order's ref may be retried
        assert api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0, order_ref="r1")
        assert api.metrics.value("ib_order_errors_total") == 1
        assert api.metrics.value("ib_orders_total") == 2
    finally:
        api.close()


def test_silent_gateway_returns_order_after_bounded_wait(state: stubs.StubState,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    state.on_place = "silent"
    api, _ = make_api(state, rt=0.1)
    try:
        assert api.connect()
        order_id = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
        assert api.get_order_status(order_id)["status"] == "PendingSubmit"
        assert any("no acknowledgement" in r.getMessage() for r in caplog.records
                   if r.levelno == logging.WARNING)
    finally:
        api.close()


def test_cancel_with_synchronous_status_event_does_not_deadlock(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    order_id = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(api.cancel_order(order_id)))
    t.start()
    t.join(20)
    assert result == [True]
    assert api.get_order_status(order_id)["status"] == "Cancelled"
    assert api.cancel_order("424242") is False


def test_cancel_refused_by_gateway_returns_false(adapter: tuple[IBKRIBInsyncApi, MagicMock],
                                                 state: stubs.StubState) -> None:
    api, ib = adapter
    order_id = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
    state.cancel_status = None

    def refuse(order: Any, *args: Any) -> None:
        ib.errorEvent.emit(order.orderId, 161, "Cancel attempted when order is not cancellable",
                           None)

    ib.cancelOrder.side_effect = refuse
    assert api.cancel_order(order_id) is False


def test_status_snapshot_is_a_copy(adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, _ = adapter
    order_id = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
    snap = api.get_order_status(order_id)
    snap["status"] = "tampered"
    snap["executions"].append({})
    assert api.get_order_status(order_id)["status"] == "Submitted"
    assert api.get_order_status(order_id)["executions"] == []
    assert [leg["action"] for leg in snap["legs"]] == ["BUY", "SELL"]


def test_next_order_id_from_gateway_and_thread_safe(adapter: tuple[IBKRIBInsyncApi, MagicMock],
                                                    state: stubs.StubState) -> None:
    api, _ = adapter
    ids: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            i = api.get_next_order_id()
            with lock:
                ids.append(i)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(ids) == 400 and len(set(ids)) == 400
    assert all(isinstance(i, int) for i in ids)


def test_next_order_id_offline_is_local_and_unique(state: stubs.StubState) -> None:
    api, _ = make_api(state)
    try:
        assert [api.get_next_order_id() for _ in range(3)] == [1, 2, 3]
    finally:
        api.close()


def test_connection_drop_while_qualifying_is_retryable(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    ib.qualifyContractsAsync.side_effect = ConnectionError("Socket disconnect")
    with pytest.raises(RuntimeError, match="Order placement failed: Socket disconnect") as info:
        api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0, order_ref="again")
    assert isinstance(info.value, OrderInterrupted) and info.value.retryable
    ib.placeOrder.assert_not_called()
    ib.qualifyContractsAsync.side_effect = None
    ib.qualifyContractsAsync.return_value = [MagicMock(conId=1)]
    assert api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0, order_ref="again")
    assert ib.placeOrder.call_count == 1  # the ref was not burnt by the failed attempt


def test_order_lost_in_flight_is_orphaned_and_its_ref_freed(state: stubs.StubState) -> None:
    state.on_place = "silent"
    api, ib = make_api(state, rt=30.0, IBKR_AUTO_RECONNECT=False)
    try:
        assert api.connect()
        done: list[str] = []
        t = threading.Thread(target=lambda: done.append(api.place_order(
            "AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0, order_ref="lost")))
        t.start()
        # wait (bounded) until the order is tracked, then the socket drops: the wait ends now
        for _ in range(1000):
            if api.orders:
                break
            api._loop.call(lambda: None)
        api._loop.call(ib.disconnect)
        t.join(10)
        assert done and api.get_order_status(done[0])["status"] == "PendingSubmit"
        state.trades = []  # the gateway never received it
        state.on_place = "ack"
        assert api.connect()
        status = api.get_order_status(done[0])
        assert status["status"] == "Inactive" and "not received" in status["error"]
        again = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0, order_ref="lost")
        assert again != done[0] and ib.placeOrder.call_count == 2
    finally:
        api.close()


def test_connect_twice_keeps_the_session(adapter: tuple[IBKRIBInsyncApi, MagicMock],
                                         state: stubs.StubState) -> None:
    api, _ = adapter
    assert api.connect() is True and state.connect_calls == 1


def test_caller_holding_the_lock_never_deadlocks(adapter: tuple[IBKRIBInsyncApi, MagicMock]
                                                 ) -> None:
    api, ib = adapter
    order_id = api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
    with api.lock:  # reads come from the handler-kept state; gateway calls fail fast
        assert api.get_order_status(order_id)["status"] == "Submitted"
        assert set(api.get_positions()) == {"AAPL", "MSFT"}
        assert api.get_account_summary()["cash_balance"] == 100000.0
        assert isinstance(api.get_next_order_id(), int)
        with pytest.raises(OrderInterrupted, match="holding the adapter's lock"):
            api.place_order("AAPL", "LONG", 1, SPREAD, "LIMIT", 1.0)
        assert "lock" in api.get_market_data("AAPL")["error"]
        assert api.cancel_order(order_id) is False
    assert ib.placeOrder.call_count == 1
    assert api.cancel_order(order_id) is True
