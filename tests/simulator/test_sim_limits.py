"""IB's limits: 50 msg/s pacing (error 100 + close), 100 market data lines (error 101),
duplicate clientId (error 326 + close); robustness against malformed input."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sim_support import ACCOUNT, ENGINE_FACTORY, Client, RawClient

from src.simulator import SimulatedGateway

pytestmark = pytest.mark.integration


def _errors(c: Client) -> list[tuple[int, int, str]]:
    errors: list[tuple[int, int, str]] = []
    c(lambda ib: ib.errorEvent.connect(lambda req, code, msg, *rest: errors.append(
        (req, code, msg))))
    return errors


@pytest.mark.expected_ib_errors(100, "Peer closed connection")
def test_more_than_50_msgs_per_second_is_error_100_and_close(client: Client,
                                                             gateway: SimulatedGateway) -> None:
    errors = _errors(client)

    def blast(ib: Any) -> None:
        ib.client.MaxRequests = 0  # let the client exceed IB's limit
        for _ in range(120):
            ib.client.reqCurrentTime()
        with pytest.raises(ConnectionError):  # ib_insync's run() raises on the disconnect
            ib.sleep(2)

    client(blast)
    assert [code for _, code, _ in errors] == [100]
    assert "Max rate of messages per second has been exceeded" in errors[0][2]
    assert not client(lambda ib: ib.isConnected())
    assert gateway.stats()["pacing_violations"] == 1


def test_client_pacing_at_45_per_second_is_never_cut(client: Client,
                                                     gateway: SimulatedGateway) -> None:
    stocks = [client.mod.Stock(s, "SMART", "USD") for s in ("AAPL", "MSFT", "SPY")] * 25
    client.aw(lambda ib: ib.qualifyContractsAsync(*stocks))  # 75 requests, throttled by client
    assert client(lambda ib: ib.isConnected())
    assert gateway.stats()["pacing_violations"] == 0


@pytest.fixture
def unpaced_gateway() -> Iterator[SimulatedGateway]:
    with SimulatedGateway(port=0, seed=2, accounts=[ACCOUNT], pacing=False,
                          engine_factory=ENGINE_FACTORY) as gw:
        yield gw


@pytest.mark.expected_ib_errors(101)
def test_more_than_100_market_data_lines_is_error_101(ib_module: Any,
                                                      unpaced_gateway: SimulatedGateway) -> None:
    gw = unpaced_gateway
    c = Client(ib_module, gw)
    try:
        c.connect(1)
        errors = _errors(c)
        chain = gw.market.chain("AAPL")
        assert chain is not None
        opts = [ib_module.Option("AAPL", e, k, "C", "SMART")
                for e in chain.expirations for k in chain.strikes][:102]

        def subscribe(ib: Any) -> list[Any]:
            ib.client.MaxRequests = 0
            ib.qualifyContracts(*opts)
            tickers = [ib.reqMktData(o) for o in opts[:101]]
            ib.reqCurrentTime()  # round trip: every answer to the 101 requests has arrived
            return tickers

        c(subscribe)
        assert [(code, req) for req, code, _ in errors] == [(101, errors[0][0])]
        assert gw.stats()["market_data_lines"] == 100
        assert gw.stats()["max_market_data_lines"] == 100
        # a snapshot counts as a line too, while the 100 streaming lines are open
        c(lambda ib: ib.reqTickers(opts[101]))
        assert [code for _, code, _ in errors] == [101, 101]
        # freeing a line makes room again
        c(lambda ib: ib.cancelMktData(opts[0]))
        [t] = c(lambda ib: ib.reqTickers(opts[101]))
        assert t.bid > 0 and len(errors) == 2
    finally:
        c.close()


@pytest.mark.expected_ib_errors(326, "Peer closed connection", "API connection failed")
def test_duplicate_client_id_is_error_326_and_close(make_client: Callable[..., Client],
                                                    gateway: SimulatedGateway) -> None:
    first = make_client(7)
    second = make_client(None)
    errors = _errors(second)
    with pytest.raises((TimeoutError, ConnectionError, OSError)):
        second(lambda ib: ib.connect(gateway.host, gateway.port, clientId=7, timeout=1))
    assert 326 in [code for _, code, _ in errors]
    assert not second(lambda ib: ib.isConnected())
    assert first(lambda ib: ib.isConnected())
    assert first(lambda ib: ib.reqCurrentTime()) is not None


def test_malformed_messages_are_answered_with_an_error(gateway: SimulatedGateway) -> None:
    raw = RawClient(gateway.port, client_id=9)
    raw.recv_until(9)  # managedAccounts + nextValidId
    raw.send("notanumber", 1)
    assert raw.recv_error()[3] == "320"
    raw.send(9, 8)  # reqContractDetails without its fields
    err = raw.recv_error()
    assert err[3] == "320"
    raw.send(1, 11, 5, 0, "AAPL", "STK")  # truncated reqMktData
    assert raw.recv_error()[3] == "320"
    raw.send(49, 1)  # the session still works
    assert raw.recv_until(49)[-1][0] == "49"
    raw.close()


def test_garbage_and_disconnect_mid_message_do_not_hurt_the_gateway(
        gateway: SimulatedGateway) -> None:
    s = socket.create_connection((gateway.host, gateway.port))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert s.recv(100) == b""  # closed
    s.close()
    raw = RawClient(gateway.port, client_id=3)
    raw.recv_until(9)
    raw.sock.sendall(b"\x00\x00\x01\x00partial")  # length says 256, then hang up
    raw.close()
    raw2 = RawClient(gateway.port, client_id=3)
    msgs = raw2.recv_until(9)
    assert msgs[0][0] == "15" and msgs[0][2] == ACCOUNT
    raw2.close()


def test_unsupported_request_ends_with_an_error_not_a_hang(gateway: SimulatedGateway) -> None:
    raw = RawClient(gateway.port, client_id=4)
    raw.recv_until(9)
    raw.send(87, 42, 0, "AAPL", "STK")  # reqHeadTimeStamp: not simulated
    err = raw.recv_error()
    assert err[2:4] == ["42", "321"]
    raw.close()


def test_handshake_with_ib_async_range_negotiates_176(gateway: SimulatedGateway) -> None:
    raw = RawClient(gateway.port, versions=b"v157..178")
    assert raw.server_version == 176
    raw.close()
