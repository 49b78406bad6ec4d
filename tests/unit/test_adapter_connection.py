"""Connection lifecycle with the stub IB: reconnect with backoff, 326, reconciliation after a
reconnect, 1100/1101/1102, data farms, metrics."""

from __future__ import annotations

import asyncio
import random
import urllib.request
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock, patch

import pytest
import stubs

from src.app.config import Config
from src.brokers.compat import Order, OrderStatus, Trade
from src.brokers.connection import backoff_delay
from src.brokers.errors import ConnectionLost
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi


class FakeSleep:
    """Records backoff delays and returns at once (no real waiting in unit tests)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_api(state: stubs.StubState, sleep: FakeSleep | None = None, seed: int = 7,
             **settings: Any) -> tuple[IBKRIBInsyncApi, MagicMock]:
    ib = stubs.mock_ib(state)
    config = Config(IBKR_TIMEOUT=2.0, IBKR_REQUEST_TIMEOUT=2.0).replace(**settings)
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(config, reconnect_rng=random.Random(seed),
                              reconnect_sleep=sleep or FakeSleep())
    return api, ib


def wait_reconnect(api: IBKRIBInsyncApi) -> None:
    """Await the supervisor task on the loop (bounded)."""
    async def waiter() -> None:
        task = api.connection._reconnect_task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    api._loop.run(waiter, timeout=10)


@pytest.fixture
def state() -> stubs.StubState:
    return stubs.StubState()


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def adapter(state: stubs.StubState, sleep: FakeSleep
            ) -> Iterator[tuple[IBKRIBInsyncApi, MagicMock]]:
    api, ib = make_api(state, sleep, IBKR_RECONNECT_BASE=0.5, IBKR_RECONNECT_CAP=4.0)
    assert api.connect()
    yield api, ib
    api.close()


def test_backoff_delay_is_jittered_between_base_and_cap() -> None:
    rng = random.Random(1)
    ref = random.Random(1)
    for attempt in range(12):
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert backoff_delay(attempt, 0.5, 4.0, rng) == ref.uniform(0.5, ceiling)
    delays = [backoff_delay(a, 0.5, 4.0, rng) for a in range(10_000)]
    assert min(delays) >= 0.5 and max(delays) <= 4.0  # never faster than base, never over cap
    assert 0.2 <= backoff_delay(3, 0.5, 0.2, rng) <= 0.2  # cap below base: the cap wins


def test_reconnect_after_socket_loss_follows_backoff_schedule(
        adapter: tuple[IBKRIBInsyncApi, MagicMock], state: stubs.StubState,
        sleep: FakeSleep) -> None:
    api, ib = adapter
    state.connect_error = ConnectionRefusedError("gateway restarting")
    failures = {"left": 3}
    real_connect = ib.connectAsync.side_effect

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionRefusedError("gateway restarting")
        state.connect_error = None
        return await real_connect(*args, **kwargs)

    ib.connectAsync.side_effect = flaky
    api._loop.call(ib.disconnect)  # the socket drops (as ib_insync reports it)
    wait_reconnect(api)
    ref = random.Random(7)
    assert sleep.delays == [ref.uniform(0.5, min(4.0, 0.5 * 2**a)) for a in range(4)]
    assert api.connected is True and api.reconnect_count == 1
    assert api.metrics.value("ib_connection_status") == 1
    assert api.metrics.value("ib_reconnects_total") == 1


def test_reconnect_gives_up_after_max_attempts(state: stubs.StubState, sleep: FakeSleep) -> None:
    api, ib = make_api(state, sleep, IBKR_RECONNECT_MAX_ATTEMPTS=3)
    try:
        assert api.connect()
        state.connect_error = ConnectionRefusedError("down")
        api._loop.call(ib.disconnect)
        wait_reconnect(api)
        assert len(sleep.delays) == 3 and api.connected is False
        assert api.reconnect_count == 0 and isinstance(api.last_error, ConnectionLost)
    finally:
        api.close()


def test_user_disconnect_does_not_reconnect(adapter: tuple[IBKRIBInsyncApi, MagicMock],
                                            state: stubs.StubState, sleep: FakeSleep) -> None:
    api, _ = adapter
    api.disconnect()
    assert not api.connection.reconnecting and sleep.delays == []
    assert state.connect_calls == 1 and api.connected is False
    assert api.connect() is True  # the loop survives disconnect()


def test_auto_reconnect_off(state: stubs.StubState, sleep: FakeSleep) -> None:
    api, ib = make_api(state, sleep, IBKR_AUTO_RECONNECT=False)
    try:
        assert api.connect()
        api._loop.call(ib.disconnect)
        assert api.connected is False and not api.connection.reconnecting
    finally:
        api.close()


def test_client_id_in_use_ends_connect_at_once(state: stubs.StubState) -> None:
    api, ib = make_api(state, IBKR_TIMEOUT=60.0)

    async def handshake_326(*args: Any, **kwargs: Any) -> None:
        ib.errorEvent.emit(-1, 326, "Unable to connect as the client id is already in use.", None)
        await asyncio.Event().wait()  # ib_insync keeps waiting for apiStart

    ib.connectAsync.side_effect = handshake_326
    try:
        assert api.connect() is False
        assert isinstance(api.last_error, ConnectionLost) and api.last_error.code == 326
        assert api.connected is False
    finally:
        api.close()


def test_raise_errors_option(state: stubs.StubState) -> None:
    state.connect_error = ConnectionRefusedError("refused")
    ib = stubs.mock_ib(state)
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(Config(), raise_errors=True)
    try:
        with pytest.raises(ConnectionLost):
            api.connect()
    finally:
        api.close()


def test_reconcile_relinks_orders_and_merges_offline_fills(
        adapter: tuple[IBKRIBInsyncApi, MagicMock], state: stubs.StubState) -> None:
    api, ib = adapter
    order_id = api.place_order("AAPL", "LONG", 2, stubs.aapl_bull_call(), "LIMIT", 1.0,
                               order_ref="keep-me")
    old = state.trades[-1]
    api._loop.call(lambda: ib.set_status(old, "Submitted", permId=777, remaining=2.0))
    assert api.get_order_status(order_id)["perm_id"] == 777

    # while disconnected the order fills; after reconnect ib_insync re-creates its Trade
    # (completed order: keyed by permId, 0/0 quantities) and the executions with commissions
    api._loop.call(ib.disconnect)
    wait_reconnect(api)
    new = Trade(old.contract, Order(orderId=old.order.orderId, clientId=1, permId=777,
                                    totalQuantity=2, orderRef="keep-me"),
                OrderStatus(orderId=old.order.orderId, status="Filled"), [], [])
    bag_fill = stubs.fill("e-bag", order_id=old.order.orderId, perm_id=777, shares=2, price=1.1,
                          commission=2.6)
    leg_fill = stubs.fill("e-leg", order_id=old.order.orderId, perm_id=777, shares=2,
                          price=3.0, sec_type="OPT")
    new.fills.append(bag_fill)
    state.trades = [new]
    state.fills = [bag_fill, leg_fill]
    api._loop.run(api.connection.after_connect)  # what runs after every reconnect

    status = api.get_order_status(order_id)
    assert api.order_service.trades[order_id] is new
    assert (status["status"], status["filled"], status["remaining"]) == ("Filled", 2, 0)
    assert sorted(e["execution_id"] for e in status["executions"]) == ["e-bag", "e-leg"]
    assert [c["commission"] for c in status["commissions"]] == [2.6]
    assert status["filled_price"] == 1.1  # from the BAG execution
    api._loop.call(api.order_service.reconcile)  # idempotent: no duplicates
    assert len(api.get_order_status(order_id)["executions"]) == 2

    # a late commission report for the leg arrives through the event
    api._loop.call(ib.commissionReportEvent.emit, new, leg_fill,
                   stubs.commission_report("e-leg", 1.3))
    assert len(api.get_order_status(order_id)["commissions"]) == 2


def test_positions_and_streams_rebuilt_after_reconnect(
        adapter: tuple[IBKRIBInsyncApi, MagicMock], state: stubs.StubState) -> None:
    api, ib = adapter
    assert api.get_market_data("AAPL")["last"] == 150.25
    assert ib.reqMktData.call_count == 1
    state.positions = stubs.positions(("TSLA", 5, 200.0))
    api._loop.call(ib.disconnect)
    wait_reconnect(api)
    assert set(api.positions) == {"TSLA"}
    assert ib.reqMktData.call_count == 2  # stream re-subscribed
    assert ib.reqMarketDataType.call_count == 2


def test_connectivity_codes(adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    api.get_market_data("AAPL")
    api._on_error(-1, 1100, "Connectivity between IB and TWS has been lost.", None)
    assert api.connected is False and api.data_health["ib"] == "down"
    assert not api.connection.reconnecting  # the socket to TWS is still up
    api._on_error(-1, 1102, "Connectivity restored - data maintained.", None)
    assert api.connected is True and ib.reqMktData.call_count == 1
    api._on_error(-1, 1101, "Connectivity restored - data lost.", None)
    assert ib.reqMktData.call_count == 2 and api.connected is True
    api._on_error(-1, 2103, "Market data farm connection is broken:usfarm", None)
    assert api.data_health["usfarm"] == "down" and api.connected is True
    api._on_error(-1, 2104, "Market data farm connection is OK:usfarm", None)
    assert api.data_health["usfarm"] == "ok"


def test_handlers_and_callbacks_are_safe_from_any_thread(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, _ = adapter
    api.handle_callbacks()
    api._on_order_status(MagicMock())  # unknown trade: ignored, never raises
    api._on_error(5, 9999, "odd", None)
    assert api.last_error is not None and api.last_error.code == 9999


def test_metrics_served_on_localhost(state: stubs.StubState) -> None:
    api, _ = make_api(state, IBKR_METRICS_PORT=0)
    try:
        assert api.connect()
        port = api.metrics.port
        assert port
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b"ib_connection_status 1.0" in body
        assert b"ib_market_data_subscriptions" in body and b"ib_orders_total" in body
    finally:
        api.close()


def test_connected_only_after_the_post_connect_work(state: stubs.StubState) -> None:
    """Issue 8: while the post-connect work runs (here: reconciling orders, held on a barrier)
    the adapter is not connected and place_order is refused with NotConnected; once the work is
    done it is connected and orders go through."""
    import threading

    from src.brokers.errors import NotConnected

    api, ib = make_api(state)
    reconciling, release = threading.Event(), threading.Event()

    def held_trades() -> list[Any]:
        reconciling.set()
        release.wait(10)
        return list(state.trades)

    ib.trades.side_effect = held_trades
    outcome: list[bool] = []
    connecting = threading.Thread(target=lambda: outcome.append(api.connect()))
    try:
        connecting.start()
        assert reconciling.wait(10), "the reconcile never started"
        assert state.connected is True  # the socket and API handshake are up …
        assert api.connected is False  # … but the adapter is not ready
        assert api.metrics.value("ib_connection_status") == 0
        with pytest.raises(NotConnected):
            api.place_order("AAPL", "LONG", 1, stubs.aapl_bull_call(), "LIMIT", 1.0)
        assert state.placed == []
    finally:
        release.set()
        connecting.join(10)
    try:
        assert outcome == [True] and api.connected is True
        assert api.account_id == stubs.ACCOUNT
        assert api.place_order("AAPL", "LONG", 1, stubs.aapl_bull_call(), "LIMIT", 1.0)
    finally:
        api.close()


def test_a_reconnect_attempt_cut_short_by_disconnect_leaves_no_unretrieved_error(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    """disconnect() during a reconnect's handshake ends the attempt; when the abandoned
    handshake later fails, its error is retrieved (no "Task exception was never retrieved")."""
    import gc
    import threading

    api, ib = adapter
    started = threading.Event()
    handshake: dict[str, asyncio.Future[None]] = {}
    unhandled: list[dict[str, Any]] = []

    async def hanging(*args: Any, **kwargs: Any) -> None:
        handshake["future"] = asyncio.get_running_loop().create_future()
        started.set()
        await asyncio.shield(handshake["future"])  # survives the cancel, as a socket wait does

    def watch() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: unhandled.append(ctx))

    api._loop.call(watch)
    ib.connectAsync.side_effect = hanging
    api._loop.call(ib.disconnect)  # the socket drops: the supervisor starts a new handshake
    assert started.wait(10)
    api.disconnect()  # the user stops it mid-handshake
    api._loop.call(lambda: handshake["future"].set_exception(ConnectionRefusedError("late")))
    api._loop.run(lambda: asyncio.sleep(0), timeout=5)  # the loop runs the failed handshake
    gc.collect()
    api._loop.run(lambda: asyncio.sleep(0), timeout=5)
    assert [c.get("message") for c in unhandled] == []
