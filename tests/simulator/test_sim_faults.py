"""Fault injection: kill / restart (state kept), drop clients, latency, error broadcast,
going silent."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from sim_support import ACCOUNT, Client, RawClient

from src.simulator import SimulatedGateway
from src.simulator.faults import NOTICE_TEXTS

pytestmark = pytest.mark.integration

DISCONNECT_LOGS = ("Peer closed connection", "Connection reset by peer", "Socket disconnect")


def _wait(pred: Any, c: Client, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c(lambda ib: pred(ib)):
            return True
        c.sleep(0.05)
    return False


def _sleep(c: Client, seconds: float) -> None:
    def job(ib: Any) -> None:
        with contextlib.suppress(ConnectionError):
            ib.sleep(seconds)
    c(job)


@pytest.mark.expected_ib_errors(*DISCONNECT_LOGS, "API connection failed",
                                "Make sure API port")
def test_kill_then_restart_keeps_state(client: Client, gateway: SimulatedGateway) -> None:
    engine, market = gateway.engine, gateway.market
    has_positions = hasattr(engine, "inject_position")
    if has_positions:
        gateway.call(engine.inject_position, ACCOUNT, 265598, 10.0, 200.0)
    port = gateway.port
    version_before = gateway.call(lambda: market.version)

    gateway.kill()
    assert client.wait(lambda ib: not ib.isConnected())  # the client saw the socket close
    assert gateway.stats()["listening"] is False
    with pytest.raises(OSError):  # ConnectionRefusedError: nothing listens any more
        client.connect(1, timeout=1)

    gateway.restart()
    assert gateway.port == port
    assert gateway.engine is engine and gateway.market is market
    client.connect(1)
    assert client(lambda ib: ib.isConnected())
    assert gateway.call(lambda: market.version) >= version_before  # walk continued
    if has_positions:
        pos = client(lambda ib: ib.positions())
        assert [(p.contract.conId, p.position) for p in pos] == [(265598, 10.0)]


@pytest.mark.expected_ib_errors(*DISCONNECT_LOGS)
def test_drop_clients_keeps_listening(client: Client, gateway: SimulatedGateway) -> None:
    closed: list[bool] = []
    client(lambda ib: ib.disconnectedEvent.connect(lambda: closed.append(True)))
    gateway.drop_clients()
    assert client.wait(lambda ib: closed)
    assert closed == [True] and not client(lambda ib: ib.isConnected())
    client.connect(1)
    assert client(lambda ib: ib.reqCurrentTime()) is not None


def test_latency_delays_answers_and_keeps_order(gateway: SimulatedGateway) -> None:
    raw = RawClient(gateway.port, client_id=5)
    raw.recv_until(9)
    gateway.set_latency(300)
    t0 = time.perf_counter()
    for req_id, sym in enumerate(["AAPL", "MSFT", "SPY"] * 5, start=1):
        raw.send(9, 8, req_id, 0, sym, "STK", "", 0.0, "", "", "SMART", "", "USD", "", "",
                 False, "", "", "")
    ends = [int(m[2]) for m in raw.recv_until(52)[-1:]]
    elapsed = time.perf_counter() - t0
    while len(ends) < 15:
        ends.append(int(raw.recv_until(52)[-1][2]))
    assert elapsed >= 0.3
    assert ends == list(range(1, 16))  # order preserved
    gateway.set_latency(0)
    t0 = time.perf_counter()
    raw.send(49, 1)
    raw.recv_until(49)
    assert time.perf_counter() - t0 < 0.3  # no longer delayed
    raw.close()
    with pytest.raises(ValueError, match="ms"):
        gateway.set_latency(-1)


def test_latency_with_ib_client(client: Client, gateway: SimulatedGateway) -> None:
    stock = client.mod.Stock("AAPL", "SMART", "USD")
    client(lambda ib: ib.qualifyContracts(stock))
    gateway.set_latency(100)
    t0 = time.perf_counter()
    [t] = client(lambda ib: ib.reqTickers(stock))
    assert time.perf_counter() - t0 >= 0.1 and t.bid > 0


@pytest.mark.expected_ib_errors(1100, 1101, 1102)
def test_broadcast_error_codes_with_ib_texts(client: Client, gateway: SimulatedGateway) -> None:
    got: list[tuple[int, int, str]] = []
    client(lambda ib: ib.errorEvent.connect(
        lambda req, code, msg, *rest: got.append((req, code, msg))))
    codes = [1100, 1101, 1102, 2103, 2104, 2105, 2106, 2158]
    for code in codes:
        gateway.broadcast_error(code)
    gateway.broadcast_error(2103, "Market data farm connection is broken:usopt")
    assert client(lambda ib: ib.reqCurrentTime()) is not None  # round trip: all notices in
    assert got[:len(codes)] == [(-1, code, NOTICE_TEXTS[code]) for code in codes]
    assert got[-1] == (-1, 2103, "Market data farm connection is broken:usopt")
    assert client(lambda ib: ib.isConnected())


def test_go_silent_keeps_sockets_open_then_answers_again(client: Client,
                                                         gateway: SimulatedGateway) -> None:
    gateway.go_silent(0.6)
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError):
        client.aw(lambda ib: _with_timeout(ib.reqCurrentTimeAsync(), 0.3))
    assert client(lambda ib: ib.isConnected())
    remaining = 0.6 - (time.perf_counter() - t0)
    if remaining > 0:
        client.sleep(remaining + 0.05)
    assert client(lambda ib: ib.reqCurrentTime()) is not None


async def _with_timeout(coro: Any, seconds: float) -> Any:
    import asyncio

    return await asyncio.wait_for(coro, seconds)
