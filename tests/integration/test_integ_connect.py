"""Connection, account discovery and metrics — real ib_insync against the simulated gateway."""

from __future__ import annotations

import gc
import logging
import socket
import urllib.request
from typing import Any

import pytest
from integ_support import ACCOUNT, api_config, bull_call, run_in_thread, wait_until
from metrics_support import metric_value

from src.brokers.errors import NotConnected


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client_requests(gw: Any, client_id: int, msg_id: int) -> list[list[str]]:
    return [fields for cid, mid, fields in gw.requests if cid == client_id and mid == msg_id]


def test_connect_fills_account_id_from_managed_accounts(gateway: Any, make_api: Any) -> None:
    api = make_api(connect=False)
    assert api.connected is False
    assert api.account_id == ""
    assert api.connect() is True
    assert api.connected is True
    assert api.account_id == ACCOUNT


def test_connect_with_configured_account_subscribes_account_updates(
        gateway: Any, make_api: Any) -> None:
    # Seed bug: reqAccountUpdates(True, acct) raises in ib_insync 0.9.86 → connect() failed
    # whenever an account was configured.
    api = make_api(connect=False, IBKR_ACCOUNT_ID=ACCOUNT)
    assert api.connect() is True
    assert api.account_id == ACCOUNT
    # reqAccountUpdates (6): version 2, subscribe "1", the configured account.
    cid = api.test_client_id
    wait_until(lambda: [f for f in _client_requests(gateway, cid, 6) if f[1:3] == ["1", ACCOUNT]],
               what="reqAccountUpdates for the configured account")
    summary = api.get_account_summary()
    assert "error" not in summary, summary
    assert summary["account_id"] == ACCOUNT


@pytest.mark.allow_ib_errors(patterns=(r"API connection failed", r"Make sure API port"))
def test_connect_to_a_closed_port_returns_false_and_logs(
        make_api: Any, gateway: Any, caplog: pytest.LogCaptureFixture) -> None:
    api = make_api(connect=False, IBKR_PORT=_free_port(), IBKR_TIMEOUT=2.0)
    with caplog.at_level(logging.ERROR):
        assert api.connect() is False
    assert api.connected is False
    assert any("Failed to connect to IBKR" in r.getMessage() and r.levelno >= logging.ERROR
               for r in caplog.records)
    # Nothing usable while disconnected; the contract's shapes still hold.
    with pytest.raises(NotConnected):
        api.place_order("AAPL", "LONG", 1, bull_call(gateway), "MARKET")
    assert api.get_positions() == {}
    data = api.get_market_data("AAPL")
    assert data["symbol"] == "AAPL" and "error" in data


@pytest.mark.allow_ib_errors(patterns=(r"API connection failed", r"Make sure API port"))
def test_failed_connect_leaves_no_unretrieved_exception(gateway: Any) -> None:
    """asyncio logs "Future exception was never retrieved" at ERROR when such a future is
    collected; the error guard fails the test on it."""
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

    api = IBKRIBInsyncApi(api_config(gateway, IBKR_PORT=_free_port(), IBKR_TIMEOUT=2.0))
    try:
        assert api.connect() is False
    finally:
        api.close()
    del api
    gc.collect()


def test_connect_and_disconnect_from_a_thread_without_event_loop(make_api: Any) -> None:
    api = make_api(connect=False)
    assert run_in_thread(api.connect) is True
    assert api.connected is True
    assert api.account_id == ACCOUNT
    run_in_thread(api.handle_callbacks)
    assert run_in_thread(api.get_next_order_id) >= 1
    assert run_in_thread(api.disconnect) is None
    assert api.connected is False


def test_disconnect_is_idempotent_and_reconnect_works(make_api: Any) -> None:
    api = make_api()
    api.disconnect()
    api.disconnect()
    assert api.connected is False
    data = api.get_market_data("AAPL")
    assert "error" in data
    summary = api.get_account_summary()
    assert "error" in summary and "timestamp" in summary
    assert api.cancel_order("1") is False
    assert api.connect() is True
    quote = api.get_market_data("AAPL")
    assert "error" not in quote, quote
    assert quote["bid"] is not None


def test_connect_when_connected_keeps_the_session(gateway: Any, api: Any) -> None:
    def sessions() -> int:
        return gateway.call(lambda: sum(1 for s in gateway.runtime.server.sessions()
                                        if s.client_id == api.test_client_id))

    assert sessions() == 1
    assert api.connect() is True
    assert run_in_thread(api.connect) is True
    assert sessions() == 1
    assert "error" not in api.get_market_data("AAPL")


def test_next_order_ids_are_unique_and_increasing(api: Any) -> None:
    ids = [api.get_next_order_id() for _ in range(5)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


def test_connection_status_metric_follows_the_connection(make_api: Any) -> None:
    api = make_api(connect=False)
    assert metric_value(api, "ib_connection_status") in (None, 0.0)
    assert api.connect() is True
    assert metric_value(api, "ib_connection_status") == 1.0
    api.disconnect()
    assert metric_value(api, "ib_connection_status") == 0.0


def test_prometheus_endpoint_served_on_localhost(make_api: Any) -> None:
    port = _free_port()
    api = make_api(IBKR_METRICS_PORT=port)
    assert api.connected

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            assert resp.status == 200
            return resp.read().decode()

    body = wait_until(lambda: _try(scrape), timeout=5.0, what="the metrics endpoint")
    assert "ib_connection_status" in body
    line = next(ln for ln in body.splitlines() if ln.startswith("ib_connection_status"))
    assert float(line.split()[-1]) == 1.0
    # Bound to loopback only: the host's other address refuses.
    other = _non_loopback_address()
    if other is not None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            assert s.connect_ex((other, port)) != 0, f"metrics reachable on {other}"


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.255", 9))  # no packet is sent for UDP connect
            addr = str(s.getsockname()[0])
    except OSError:
        return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


def _try(fn: Any) -> Any:
    try:
        return fn()
    except OSError:
        return None
