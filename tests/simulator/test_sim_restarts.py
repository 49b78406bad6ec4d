"""IB Gateway's own restarts in the simulator (src/simulator/restarts.py): the daily restart
(socket closed with no code, a pause, fresh sessions, account state kept) and the token reset
(down until released; connections refused, or accepted and closed as behind socat)."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from sim_support import ACCOUNT, Client, RawClient

from src.simulator import SimulatedGateway

pytestmark = pytest.mark.integration

DISCONNECT_LOGS = ("Peer closed connection", "Connection reset by peer", "Socket disconnect")


def _until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _drain_until_closed(raw: RawClient, timeout: float = 5.0) -> list[list[str]]:
    """Every message the gateway sent before it closed the socket (in order)."""
    out: list[list[str]] = []
    with pytest.raises(ConnectionError) as info:
        while True:
            out.append(raw.recv(timeout))
    assert not isinstance(info.value, ConnectionResetError), "reset, not an orderly close"
    return out


def _resting_order(client: Client, ib_module: Any) -> int:
    contract = ib_module.Stock("AAPL", "SMART", "USD", conId=265598)
    trade = client(lambda ib: ib.placeOrder(contract, ib_module.LimitOrder("BUY", 1, 1.0)))
    client.wait(lambda ib: trade.orderStatus.status == "Submitted")
    return int(trade.order.orderId)


@pytest.mark.expected_ib_errors(*DISCONNECT_LOGS)
def test_daily_restart_closes_without_a_code_pauses_and_keeps_the_account(
        client: Client, gateway: SimulatedGateway, ib_module: Any) -> None:
    order_id = _resting_order(client, ib_module)
    gateway.call(gateway.engine.inject_position, ACCOUNT, 265598, 5.0, 200.0)
    raw = RawClient(gateway.port, client_id=7)
    raw.recv_until(9)  # nextValidId: the session is up
    raw.send(1, 11, 1, 265598, "AAPL", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "",
             False, "", False, False, "")  # a market-data line of that session
    _until(lambda: gateway.stats()["market_data_lines"] == 1, 3, "the line")

    gateway.daily_restart(pause=1.5)
    sent = _drain_until_closed(raw)
    errors = [m for m in sent if m[0] == "4" and not 2100 <= int(m[3]) < 2200]
    assert errors == [], f"the gateway sent an error code before closing: {errors}"
    assert client.wait(lambda ib: not ib.isConnected())
    assert gateway.restart_state == "restarting"
    with pytest.raises(ConnectionRefusedError):  # down for the pause
        socket.create_connection(("127.0.0.1", gateway.port), timeout=1).close()
    assert gateway.stats()["market_data_lines"] == 0  # subscriptions die with the sessions

    _until(lambda: gateway.restart_state == "up", 5, "the end of the pause")
    client.connect(1)
    open_ids = [t.order.orderId for t in client(lambda ib: ib.openTrades())]
    assert open_ids == [order_id]  # the account's open orders, on IB's servers
    assert client(lambda ib: ib.client.getReqId()) > order_id  # ids continue
    positions = client(lambda ib: [(p.contract.conId, p.position) for p in ib.positions()])
    assert positions == [(265598, 5.0)]
    assert gateway.stats()["market_data_lines"] == 0  # a fresh session asks again


@pytest.mark.expected_ib_errors(*DISCONNECT_LOGS)
def test_fills_made_during_the_pause_are_todays_executions_after_it(
        client: Client, gateway: SimulatedGateway, ib_module: Any) -> None:
    order_id = _resting_order(client, ib_module)
    gateway.daily_restart(pause=1.5)
    assert client.wait(lambda ib: not ib.isConnected())

    def cross() -> None:
        order = next(o for o in gateway.engine.orders.values()
                     if o.request.order_id == order_id)
        order.request.lmt_price = 10_000.0
        gateway.engine.on_prices()

    gateway.call(cross)
    assert gateway.restart_state == "restarting"
    _until(lambda: gateway.restart_state == "up", 5, "the end of the pause")
    client.connect(1)
    fills = client(lambda ib: ib.reqExecutions())
    assert [f.execution.orderId for f in fills] == [order_id]
    assert client(lambda ib: ib.openTrades()) == []


def test_token_reset_drops_connections_in_order_until_released(
        gateway: SimulatedGateway) -> None:
    gateway.token_reset()  # default: accepted, then closed (ib-gateway-docker's socat)
    assert gateway.restart_state == "logged_out"
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", gateway.port), timeout=3)
        s.settimeout(3)
        try:
            assert s.recv(100) == b""  # an orderly close (FIN) before any byte
        finally:
            s.close()
    attempts = gateway.connection_attempts()
    assert [a.outcome for a in attempts[-3:]] == ["dropped"] * 3
    assert attempts[-3].at <= attempts[-2].at <= attempts[-1].at

    gateway.release()
    assert gateway.restart_state == "up"
    raw = RawClient(gateway.port, client_id=3)
    assert raw.recv_until(9)[-1][0] == "9"
    raw.close()
    assert gateway.connection_attempts()[-1].outcome == "session"


def test_token_reset_can_refuse_and_bad_arguments_change_nothing(
        gateway: SimulatedGateway) -> None:
    with pytest.raises(ValueError, match="mode"):
        gateway.token_reset(mode="sometimes")
    with pytest.raises(ValueError, match="pause"):
        gateway.daily_restart(pause=-1)
    assert gateway.restart_state == "up" and gateway.stats()["listening"] is True
    gateway.token_reset(mode="refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", gateway.port), timeout=1).close()
    gateway.release()
    RawClient(gateway.port, client_id=4).close()


def test_restart_and_stop_end_a_token_reset(gateway: SimulatedGateway) -> None:
    gateway.token_reset()
    gateway.restart()  # the crash-style restart also ends the outage (its relay closed first)
    assert gateway.restart_state == "up"
    RawClient(gateway.port, client_id=5).close()
    gateway.token_reset()
    port = gateway.port
    gateway.stop()  # nothing scheduled or listening is left behind (the relay closed too)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
