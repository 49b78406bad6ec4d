"""The service through its app factory with ``service.broker: mock``: the lifespan builds
``ClientBroker`` on a ``MockIBKRClient`` (tests/service/service_support.py ``mock_app``); each
test scripts the mock — fills (``script``), IB errors by code (``inject_error``), the connection
(``set_state``) — and drives the routes over HTTP: quotes, chains, orders, status, cancel,
positions, account, readiness, idempotency, interlocks, auth, metrics.

Placeholder-specific service tests (its simulated gateway switch, test doubles built on it) are
in test_service_placeholder.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_support import (
    AUTH,
    PAPER_ACCOUNT,
    TOKEN,
    broker_of,
    config,
    metric,
    mock_app,
    mock_of,
    running,
    wait_for,
)

from src.app.executor import select_spread
from src.brokers.client_broker import ClientBroker
from src.brokers.client_types import ConnectionState
from src.brokers.ibkr_api import IBKRApi
from src.brokers.mock_client import MockIBKRClient
from src.service.auth import NOT_CONFIGURED
from src.service.providers import build_broker
from src.utils.clock import FixedClock

LIMIT_FAR = {"symbol": "AAPL", "price_type": "LIMIT", "limit_price": 0.05}
MARKET = {"symbol": "AAPL", "price_type": "MARKET"}


@pytest.fixture
def svc() -> Iterator[tuple[TestClient, ClientBroker, MockIBKRClient]]:
    with running(mock_app()) as client:
        yield client, broker_of(client), mock_of(client)


@pytest.fixture
def client(svc: tuple[TestClient, ClientBroker, MockIBKRClient]) -> TestClient:
    return svc[0]


# --- the factory and operations -----------------------------------------------------------


def test_service_broker_mock_builds_a_client_broker_on_the_mock_client() -> None:
    broker = build_broker(config(SERVICE_BROKER="mock"))
    assert isinstance(broker, ClientBroker) and not isinstance(broker, IBKRApi)
    assert isinstance(broker.client, MockIBKRClient)
    assert broker.connected and broker.account_id == PAPER_ACCOUNT
    assert broker.get_market_data("AAPL")["last"] == 230.10  # the placeholder's AAPL, seeded


def test_the_lifespan_builds_one_broker_and_closes_it() -> None:
    app = mock_app()
    with running(app) as client:
        broker = broker_of(client)
        for _ in range(3):
            assert client.get("/quotes/AAPL", headers=AUTH).status_code == 200
            assert broker_of(client) is broker
        assert client.get("/ready").json()["broker"] == "mock"
        mock = broker.client
    assert mock.state is ConnectionState.DISCONNECTED  # shutdown closed it


def test_health_uses_the_injected_clock() -> None:
    clock = FixedClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    with running(mock_app(clock=clock)) as client:
        body = client.get("/health").json()
    assert body["status"] == "ok" and body["time"].startswith("2026-03-02T15:00:00")


def test_ready_is_503_with_retry_after_while_the_mock_is_lost(svc: Any) -> None:
    client, _, mock = svc
    calls = mock.connect_calls
    mock.set_state(ConnectionState.LOST)
    r = client.get("/ready")
    assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
    body = r.json()
    assert body["ready"] is False and body["reconnecting"] is True
    assert body["reason"].startswith("reconnecting to the IB gateway")
    assert metric(client.get("/metrics").text, "ib_connection_status") == 0.0
    for method, path in (("GET", "/quotes/AAPL"), ("GET", "/option-chains/AAPL"),
                         ("GET", "/positions"), ("GET", "/account"), ("POST", "/orders")):
        answer = client.request(method, path, headers=AUTH, json=LIMIT_FAR)
        assert answer.status_code == 503, (method, path, answer.text)
        assert answer.headers["Retry-After"] == str(answer.json()["retry_after"])
    assert mock.connect_calls == calls  # a client reconnecting by itself is left alone
    mock.set_state(ConnectionState.CONNECTED)
    assert client.get("/ready").status_code == 200
    assert metric(client.get("/metrics").text, "ib_connection_status") == 1.0


def test_a_disconnected_mock_is_connected_again_by_the_connector(svc: Any) -> None:
    client, _, mock = svc
    calls = mock.connect_calls
    mock.set_state(ConnectionState.DISCONNECTED)  # nothing reconnects it but the connector
    wait_for(lambda: client.get("/ready").status_code == 200, what="ready again")
    assert mock.connect_calls > calls


def test_metrics_is_a_plain_route_and_counts(svc: Any) -> None:
    client, _, mock = svc
    r = client.get("/metrics", follow_redirects=False)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    for name in ("ib_connection_status", "ib_orders_total", "ib_order_errors_total",
                 "ib_market_data_subscriptions", "ib_reconnects_total"):
        assert metric(r.text, name) is not None, name
    assert metric(r.text, "ib_orders_total") == 0.0
    assert client.post("/orders", json=LIMIT_FAR, headers=AUTH).status_code == 201
    mock.inject_error("place_order", 201, "Order rejected - reason: no trading permissions")
    assert client.post("/orders", json=LIMIT_FAR, headers=AUTH).status_code == 409
    client.get("/quotes/AAPL", headers=AUTH)
    client.get("/quotes/MSFT", headers=AUTH)
    text = client.get("/metrics").text
    assert metric(text, "ib_orders_total") == 1.0  # the mock's own registry
    assert metric(text, "ib_order_errors_total") == 1.0
    assert metric(text, "ibkr_service_order_errors_total") == 1.0
    assert metric(text, "ib_market_data_subscriptions") == 2.0  # two stocks; chain lines freed
    assert metric(text, "ibkr_service_requests_total", method="GET", route="/quotes/{symbol}",
                  status="200") == 2.0
    assert metric(text, "ibkr_service_requests_total", method="POST", route="/orders",
                  status="409") == 1.0
    assert metric(text, "ibkr_service_request_duration_seconds_count", method="GET",
                  route="/quotes/{symbol}") == 2.0
    assert client.get("/metrics/", follow_redirects=False).status_code == 404  # no 307


# --- auth and secrets ---------------------------------------------------------------------


def test_no_token_configured_means_403_naming_the_setting() -> None:
    with running(mock_app(token=None)) as client:
        r = client.get("/positions", headers=AUTH)
        assert r.status_code == 403 and r.json()["detail"] == NOT_CONFIGURED
        assert "IBKR_SERVICE_TOKEN " in NOT_CONFIGURED
        assert "IBKR_SERVICE_TOKEN_FILE" in NOT_CONFIGURED
        for path in ("/health", "/ready", "/metrics"):
            assert client.get(path).status_code == 200


@pytest.mark.parametrize("header", [{}, {"Authorization": "Bearer wrong-token-123456789"},
                                    {"Authorization": f"Basic {TOKEN}"}])
def test_missing_or_wrong_token_is_401(client: Any, header: dict[str, str]) -> None:
    for method, path in (("GET", "/quotes/AAPL"), ("GET", "/positions"), ("GET", "/account"),
                         ("POST", "/orders"), ("GET", "/orders/1"), ("DELETE", "/orders/1"),
                         ("POST", "/signals"), ("POST", "/paper/roundtrip"),
                         ("GET", "/option-chains/AAPL")):
        r = client.request(method, path, headers=header, json=LIMIT_FAR)
        assert r.status_code in (401, 403), (method, path, r.status_code)
        if header.get("Authorization", "").startswith("Bearer"):
            assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert broker_of(client).orders == {}


def test_secrets_and_account_ids_never_in_responses_or_logs(
        svc: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, _, mock = svc
    caplog.set_level(logging.DEBUG)
    mock.script("immediate")
    placed = client.post("/orders", json=MARKET, headers=AUTH)
    assert placed.status_code == 201
    bodies = [client.get(p, headers=AUTH).text for p in (
        "/account", "/positions", "/ready", "/metrics", f"/orders/{placed.json()['id']}")]
    bodies.append(client.post("/paper/roundtrip", headers=AUTH).text)
    assert "DU****321" in bodies[0] and "DU****321" in bodies[1]
    for text in [*bodies, caplog.text]:
        assert PAPER_ACCOUNT not in text
        assert TOKEN not in text


# --- market data and account ----------------------------------------------------------------


def test_quote_chain_positions_account(client: Any) -> None:
    q = client.get("/quotes/aapl", headers=AUTH).json()
    assert (q["symbol"], q["bid"], q["ask"], q["last"]) == ("AAPL", 230.09, 230.11, 230.10)
    chain = client.get("/option-chains/AAPL", headers=AUTH).json()
    options = chain["options"]
    assert chain["count"] == len(options) == 4 * 6 * 2  # ibkr.chain_expirations x strikes x C/P
    assert {o["option_type"] for o in options} == {"call", "put"}
    assert chain["expirations"] == sorted(chain["expirations"]) and len(chain["expirations"]) == 4
    strikes = sorted({o["strike"] for o in options})
    assert strikes[0] < 230.10 < strikes[-1]  # near the money
    assert all(o["implied_volatility"] > 0 and 0 <= o["bid"] < o["ask"] for o in options)
    order = client.post("/orders", json={**MARKET, "contracts": 2}, headers=AUTH).json()
    # the service's mock fills MARKET orders at once (LIMIT orders rest unless scripted)
    assert order["status"] == "Filled" and order["filled"] == 2 and order["remaining"] == 0
    positions = client.get("/positions", headers=AUTH).json()
    assert positions["count"] == 2  # the two legs of the filled spread, by OCC local symbol
    assert {p["quantity"] for p in positions["positions"]} == {2, -2}
    assert all(p["symbol"].startswith("AAPL  ") and p["account"] == "DU****321"
               for p in positions["positions"])
    account = client.get("/account", headers=AUTH).json()
    assert account["account_id"] == "DU****321" and account["net_liquidation"] > 0


def test_unknown_symbol_is_404_with_ib_code_and_bad_symbol_is_422(client: Any) -> None:
    r = client.get("/quotes/ZZZNOPE", headers=AUTH)
    assert r.status_code == 404 and r.json()["ib_code"] == 200
    chain = client.get("/option-chains/ZZZNOPE", headers=AUTH)
    assert chain.status_code == 404 and chain.json()["ib_code"] == 200
    bad = client.get("/quotes/AA$PL", headers=AUTH)
    assert bad.status_code == 422 and bad.json()["field"] == "symbol"


def test_pacing_is_429_and_a_gateway_loss_503(svc: Any) -> None:
    client, _, mock = svc
    mock.inject_error("request_market_data", 100, "Max rate of messages per second exceeded")
    r = client.get("/quotes/AAPL", headers=AUTH)
    assert r.status_code == 429 and r.json()["ib_code"] == 100 and r.headers["Retry-After"]
    mock.inject_error("account_values", 1100, "Connectivity between IB and TWS has been lost")
    lost = client.get("/account", headers=AUTH)
    assert lost.status_code == 503 and lost.json()["ib_code"] == 1100
    assert client.get("/quotes/AAPL", headers=AUTH).status_code == 200  # one-shot errors


# --- orders ---------------------------------------------------------------------------------


def test_place_status_cancel(svc: Any) -> None:
    client, broker, mock = svc
    r = client.post("/orders", json=LIMIT_FAR, headers=AUTH)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "Submitted" and order["spread_type"] == "BULL_CALL"
    assert r.headers["Location"] == f"/orders/{order['id']}"
    assert mock.order_state(int(order["id"])).status == "Submitted"  # the mock has it
    got = client.get(f"/orders/{order['id']}", headers=AUTH).json()
    assert got["limit_price"] == 0.05 and got["contracts"] == 1 and got["filled"] == 0
    c = client.delete(f"/orders/{order['id']}", headers=AUTH)
    assert c.status_code == 202 and c.json() == {"id": order["id"], "cancel_sent": True,
                                                 "status": "Cancelled"}
    assert mock.order_state(int(order["id"])).status == "Cancelled"
    again = client.delete(f"/orders/{order['id']}", headers=AUTH)
    assert again.status_code == 409 and "Cancelled" in again.json()["detail"]


def test_a_partial_fill_shows_in_the_status_per_leg(svc: Any) -> None:
    client, _, mock = svc
    mock.script("partial", quantity=1)
    order = client.post("/orders", json={**LIMIT_FAR, "contracts": 2}, headers=AUTH).json()
    got = client.get(f"/orders/{order['id']}", headers=AUTH).json()
    assert (got["status"], got["filled"], got["remaining"]) == ("Submitted", 1.0, 1.0)
    assert {e["side"] for e in got["executions"]} == {"BOT", "SLD"}  # one per leg
    assert len(got["commissions"]) == 2 and all(c["commission"] > 0 for c in got["commissions"])


def test_a_cancel_ib_refuses_is_409_with_the_ib_code(svc: Any) -> None:
    client, _, mock = svc
    order = client.post("/orders", json=LIMIT_FAR, headers=AUTH).json()
    mock.inject_error("cancel_order", 161, "Cancel attempted when order is in state Filled")
    r = client.delete(f"/orders/{order['id']}", headers=AUTH)
    assert r.status_code == 409 and r.json()["ib_code"] == 161
    assert client.get(f"/orders/{order['id']}", headers=AUTH).json()["status"] == "Submitted"


@pytest.mark.parametrize("how", ["inject", "script"])
def test_an_order_ib_rejects_is_409_with_the_ib_code(svc: Any, how: str) -> None:
    client, broker, mock = svc
    if how == "inject":
        mock.inject_error("place_order", 201, "Order rejected - reason: market closed")
    else:
        mock.script("rejected", code=201, message="Order rejected - reason: market closed")
    r = client.post("/orders", json=LIMIT_FAR, headers=AUTH)
    assert r.status_code == 409, r.text
    assert r.json()["ib_code"] == 201 and "market closed" in r.json()["detail"]
    assert broker.orders == {}
    assert mock.metrics.value("ib_order_errors_total") == 1.0


def test_explicit_legs_and_a_limit_from_the_chain(client: Any) -> None:
    chain = client.get("/option-chains/AAPL", headers=AUTH).json()["options"]
    calls = sorted((o for o in chain if o["option_type"] == "call"
                    and o["expiration"] == chain[0]["expiration"]), key=lambda o: o["strike"])
    legs = {"expiration": calls[0]["expiration"], "long_strike": calls[0]["strike"],
            "short_strike": calls[1]["strike"]}
    r = client.post("/orders", json={"symbol": "AAPL", "legs": legs}, headers=AUTH)
    assert r.status_code == 201, r.text
    mid = (calls[0]["bid"] + calls[0]["ask"]) / 2 - (calls[1]["bid"] + calls[1]["ask"]) / 2
    assert r.json()["limit_price"] == pytest.approx(round(round(mid / 0.05) * 0.05, 2))
    wrong = client.post("/orders", json={"symbol": "AAPL", "legs": {
        **legs, "long_strike": calls[1]["strike"], "short_strike": calls[0]["strike"]}},
        headers=AUTH)
    assert wrong.status_code == 422 and wrong.json()["field"] == "legs"


def test_idempotent_by_header_or_order_ref(svc: Any) -> None:
    client, broker, mock = svc
    first = client.post("/orders", json=LIMIT_FAR, headers={**AUTH, "Idempotency-Key": "k-1"})
    again = client.post("/orders", json=LIMIT_FAR, headers={**AUTH, "Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["replayed"] is True
    assert first.json()["order_ref"] == "k-1"  # the key is the order's IB orderRef
    by_ref = client.post("/orders", json={**LIMIT_FAR, "order_ref": "k-1"}, headers=AUTH)
    assert by_ref.json()["id"] == first.json()["id"]
    other = client.post("/orders", json={**LIMIT_FAR, "contracts": 2},
                        headers={**AUTH, "Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.json()["field"] == "order_ref"
    mismatch = client.post("/orders", json={**LIMIT_FAR, "order_ref": "k-2"},
                           headers={**AUTH, "Idempotency-Key": "k-3"})
    assert mismatch.status_code == 422
    assert len(broker.orders) == 1 and mock.metrics.value("ib_orders_total") == 1.0
    # the broker itself never sends a known ref twice (a service restart forgets its keys)
    spread = select_spread(broker.get_option_chain("AAPL"), "AAPL", "LONG", 230.10)
    assert broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05,
                              order_ref="k-1") == first.json()["id"]
    assert mock.metrics.value("ib_orders_total") == 1.0


@pytest.mark.parametrize(("body", "field"), [
    ({"symbol": "AAPL", "contracts": 0}, "contracts"),
    ({"symbol": "AAPL", "direction": "UP"}, "direction"),
    ({"symbol": "AAPL", "price_type": "LIMIT", "limit_price": -1}, "limit_price"),
    ({"symbol": "AAPL", "legs": {"expiration": "2026-12-18", "long_strike": 0,
                                 "short_strike": 5}}, "legs.long_strike"),
    ({"symbol": "", "contracts": 1}, "symbol"),
    ({"symbol": "AAPL", "surprise": 1}, "surprise"),
    ({"symbol": "AAPL", "contracts": 11}, "contracts"),  # > risk.max_contracts_per_order
])
def test_bad_order_input_is_422_naming_the_field(svc: Any, body: dict[str, Any],
                                                 field: str) -> None:
    client, broker, mock = svc
    r = client.post("/orders", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert broker.orders == {} and mock.metrics.value("ib_orders_total") == 0.0


def test_unknown_order_404_and_malformed_id_422(client: Any) -> None:
    assert client.get("/orders/424242", headers=AUTH).status_code == 404
    assert client.delete("/orders/424242", headers=AUTH).status_code == 404
    r = client.get("/orders/not-an-id", headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "order_id"


def test_read_only_is_403_and_nothing_reaches_the_mock() -> None:
    with running(mock_app(IBKR_READ_ONLY=True)) as client:
        r = client.post("/orders", json=LIMIT_FAR, headers=AUTH)
        assert r.status_code == 403 and r.json()["error"] == "ReadOnlyViolation"
        assert client.post("/paper/roundtrip", headers=AUTH).status_code == 403
        assert broker_of(client).orders == {}
        assert mock_of(client).metrics.value("ib_orders_total") == 0.0
        assert client.get("/quotes/AAPL", headers=AUTH).status_code == 200  # reads still work


def test_live_account_is_refused_orders_and_the_round_trip() -> None:
    with running(mock_app(IBKR_ACCOUNT_ID="U7654321")) as client:
        r = client.post("/orders", json=LIMIT_FAR, headers=AUTH)
        assert r.status_code == 403 and r.json()["error"] == "LiveTradingNotAllowed"
        assert client.post("/paper/roundtrip", headers=AUTH).status_code == 403
        assert broker_of(client).orders == {}
    allowed = mock_app(IBKR_ACCOUNT_ID="U7654321", TRADING_MODE="live", ALLOW_LIVE=True)
    with running(allowed) as client:  # live allowed for orders, never for the paper check
        assert client.post("/orders", json=LIMIT_FAR, headers=AUTH).status_code == 201
        r = client.post("/paper/roundtrip", headers=AUTH)
        assert r.status_code == 403 and "live account" in r.json()["detail"]


# --- the round trip and signals -------------------------------------------------------------


def test_paper_roundtrip_places_and_cancels_one_lot(svc: Any) -> None:
    client, broker, mock = svc
    r = client.post("/paper/roundtrip", headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbol"] == "AAPL" and body["quote"]["last"] == 230.10
    assert body["status_before_cancel"] == "Submitted"
    assert body["status_after_cancel"] == "Cancelled" and body["cancel_sent"] is True
    order = broker.orders[body["order_id"]]
    assert order["contracts"] == 1 and order["filled"] == 0.0
    assert mock.order_state(int(body["order_id"])).status == "Cancelled"


def test_a_signal_becomes_an_order_through_the_trader(svc: Any) -> None:
    client, broker, mock = svc
    mock.script("immediate")
    r = client.post("/signals", json={"symbol": "AAPL", "direction": "LONG",
                                      "price_type": "MARKET"},
                    headers={**AUTH, "Idempotency-Key": "scan-1"})
    assert r.status_code == 202 and r.json()["id"] == "scan-1"
    done = wait_for(lambda: (s := client.get("/signals/scan-1", headers=AUTH).json())["order_id"]
                    and s, what="the signal's order")
    assert broker.orders[done["order_id"]]["order_ref"] == "scan-1"
    assert mock.order_state(int(done["order_id"])).order_ref == "scan-1"
    again = client.post("/signals", json={"symbol": "AAPL", "direction": "LONG",
                                          "price_type": "MARKET"},
                        headers={**AUTH, "Idempotency-Key": "scan-1"})
    assert again.status_code == 200 and again.json()["order_id"] == done["order_id"]
    assert len(broker.orders) == 1
    assert client.get("/signals/nope", headers=AUTH).status_code == 404


def test_a_risk_rejected_signal_says_why() -> None:
    with running(mock_app(MAX_CONTRACTS_PER_ORDER=2)) as client:
        r = client.post("/signals", json={"symbol": "AAPL", "direction": "SHORT",
                                          "contracts": 3}, headers=AUTH)
        sid = r.json()["id"]
        s = wait_for(lambda: (b := client.get(f"/signals/{sid}", headers=AUTH).json())["state"]
                     != "PENDING" and b, what="risk outcome")
        assert s["state"] == "REJECTED" and "max_contracts_per_order" in s["error"]
        assert broker_of(client).orders == {}


def test_signals_503_when_the_trader_is_off() -> None:
    with running(mock_app(SERVICE_TRADER=False)) as client:
        r = client.post("/signals", json={"symbol": "AAPL", "direction": "LONG"}, headers=AUTH)
        assert r.status_code == 503 and "service.trader" in r.json()["detail"]


# --- docs -----------------------------------------------------------------------------------


def test_docs_page_is_offline_and_lists_every_endpoint(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and "http://" not in page.text \
        and "https://" not in page.text
    schema = client.get("/openapi.json").json()
    for path in schema["paths"]:
        assert f"<code>{path}</code>" in page.text
    assert client.get("/redoc").status_code == 404  # FastAPI's CDN pages are off
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert date.fromisoformat(client.get("/option-chains/AAPL", headers=AUTH)
                              .json()["expirations"][0])
