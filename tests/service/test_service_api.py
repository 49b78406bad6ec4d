"""The service through its app factory, on the in-memory placeholder broker (and test doubles
swapped in with ``app.dependency_overrides``): routes, errors, auth, idempotency, metrics."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import pytest
from service_support import (
    AUTH,
    PAPER_ACCOUNT,
    TOKEN,
    metric,
    placeholder_app,
    running,
    wait_for,
)

from src.brokers.errors import OrderRejected, RequestTimeout
from src.brokers.ibkr_api import IBKRApi
from src.service.auth import NOT_CONFIGURED
from src.service.state import get_broker
from src.utils.clock import FixedClock

LIMIT_FAR = {"symbol": "AAPL", "price_type": "LIMIT", "limit_price": 0.05}


@pytest.fixture
def app_and_broker() -> Any:
    app, built = placeholder_app()
    with running(app) as client:
        yield client, built[0]


@pytest.fixture
def client(app_and_broker: Any) -> Any:
    return app_and_broker[0]


# --- lifecycle and operations --------------------------------------------------------------


def test_lifespan_builds_one_broker_connects_it_and_closes_it() -> None:
    app, built = placeholder_app()
    with running(app) as client:
        for _ in range(3):
            assert client.get("/quotes/AAPL", headers=AUTH).status_code == 200
        assert len(built) == 1 and built[0].connected
    assert built[0].connected is False  # shutdown closed it


def test_health_uses_the_injected_clock() -> None:
    clock = FixedClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    app, _ = placeholder_app(clock=clock)
    with running(app) as client:
        body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["time"].startswith("2026-03-02T15:00:00")


def test_ready_503_with_reason_and_retry_after_until_connected() -> None:
    down = IBKRApi(None, seed=1)
    down.available = False  # the simulated gateway is not running: connect() fails
    app, _ = placeholder_app(broker=down)
    with running(app, ready=False) as client:
        r = client.get("/ready")
        assert r.status_code == 503
        assert r.headers["Retry-After"].isdigit()
        assert "not connected to the IB gateway" in r.json()["reason"]
        assert metric(client.get("/metrics").text, "ib_connection_status") == 0.0
        q = client.get("/quotes/AAPL", headers=AUTH)
        assert q.status_code == 503 and "Retry-After" in q.headers
        down.available = True  # the connector retries with backoff until it connects
        wait_for(lambda: client.get("/ready").status_code == 200, what="ready after start")
        assert metric(client.get("/metrics").text, "ib_connection_status") == 1.0


def test_metrics_is_a_plain_route_with_seed_metrics_and_request_counts(client: Any) -> None:
    r = client.get("/metrics", follow_redirects=False)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in ("ib_connection_status", "ib_orders_total", "ib_order_errors_total",
                 "ib_market_data_subscriptions", "ib_reconnects_total"):
        assert metric(text, name) is not None, name
    assert metric(text, "ib_connection_status") == 1.0
    before = metric(text, "ib_orders_total")
    assert client.post("/orders", json=LIMIT_FAR, headers=AUTH).status_code == 201
    client.get("/quotes/AAPL", headers=AUTH)
    client.get("/quotes/MSFT", headers=AUTH)
    text = client.get("/metrics").text
    assert metric(text, "ib_orders_total") == (before or 0) + 1
    assert metric(text, "ibkr_service_requests_total", method="GET", route="/quotes/{symbol}",
                  status="200") == 2.0
    assert metric(text, "ibkr_service_request_duration_seconds_count", method="GET",
                  route="/quotes/{symbol}") == 2.0
    assert client.get("/metrics/", follow_redirects=False).status_code == 404  # no 307 dance


# --- auth ------------------------------------------------------------------------------------


def test_no_token_configured_means_403_naming_the_setting() -> None:
    app, _ = placeholder_app(token=None)
    with running(app) as client:
        r = client.get("/positions", headers=AUTH)
        assert r.status_code == 403
        detail = r.json()["detail"]
        assert detail == NOT_CONFIGURED
        assert "IBKR_SERVICE_TOKEN " in detail and "IBKR_SERVICE_TOKEN_FILE" in detail
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        assert client.get("/metrics").status_code == 200


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


def test_secrets_and_account_ids_never_in_responses_or_logs(
        client: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert client.post("/orders", json={"symbol": "AAPL", "price_type": "MARKET"},
                       headers=AUTH).status_code == 201
    bodies = [client.get(p, headers=AUTH).text for p in ("/account", "/positions", "/ready",
                                                         "/metrics", "/orders/1")]
    bodies.append(client.post("/paper/roundtrip", headers=AUTH).text)
    assert "DU****321" in bodies[0]
    for text in [*bodies, caplog.text]:
        assert PAPER_ACCOUNT not in text
        assert TOKEN not in text


# --- market data and account -------------------------------------------------------------------


def test_quote_chain_positions_account(client: Any) -> None:
    q = client.get("/quotes/aapl", headers=AUTH).json()
    assert q["symbol"] == "AAPL" and q["bid"] < q["ask"]
    chain = client.get("/option-chains/AAPL", headers=AUTH).json()
    assert chain["count"] == len(chain["options"]) > 0
    assert {o["option_type"] for o in chain["options"]} == {"call", "put"}
    assert chain["expirations"] == sorted(chain["expirations"])
    client.post("/orders", json={"symbol": "AAPL", "price_type": "MARKET"}, headers=AUTH)
    positions = client.get("/positions", headers=AUTH).json()
    assert positions["count"] == 2  # the two legs of the filled spread
    assert {p["quantity"] for p in positions["positions"]} == {1, -1}
    account = client.get("/account", headers=AUTH).json()
    assert account["account_id"] == "DU****321" and account["net_liquidation"] > 0


def test_unknown_symbol_is_404_with_ib_code_and_bad_symbol_is_422(client: Any) -> None:
    r = client.get("/quotes/ZZZNOPE", headers=AUTH)
    assert r.status_code == 404 and r.json()["ib_code"] == 200
    assert client.get("/option-chains/ZZZNOPE", headers=AUTH).status_code == 404
    bad = client.get("/quotes/AA$PL", headers=AUTH)
    assert bad.status_code == 422 and bad.json()["field"] == "symbol"


# --- orders -----------------------------------------------------------------------------------


def test_place_status_cancel(app_and_broker: Any) -> None:
    client, broker = app_and_broker
    r = client.post("/orders", json=LIMIT_FAR, headers=AUTH)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "Submitted" and order["spread_type"] == "BULL_CALL"
    assert r.headers["Location"] == f"/orders/{order['id']}"
    assert order["id"] in broker.orders
    got = client.get(f"/orders/{order['id']}", headers=AUTH).json()
    assert got["limit_price"] == 0.05 and got["contracts"] == 1
    c = client.delete(f"/orders/{order['id']}", headers=AUTH)
    assert c.status_code == 202 and c.json() == {"id": order["id"], "cancel_sent": True,
                                                 "status": "Cancelled"}
    again = client.delete(f"/orders/{order['id']}", headers=AUTH)
    assert again.status_code == 409 and "Cancelled" in again.json()["detail"]


def test_explicit_legs_and_limit_from_the_chain() -> None:
    app, _ = placeholder_app(SERVICE_TRADER=False)  # no Trader loop: the simulated market
    with running(app) as client:                     # stands still between the two calls
        _explicit_legs(client)


def _explicit_legs(client: Any) -> None:
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


def test_idempotent_by_header_or_order_ref(app_and_broker: Any) -> None:
    client, broker = app_and_broker
    first = client.post("/orders", json=LIMIT_FAR, headers={**AUTH, "Idempotency-Key": "k-1"})
    again = client.post("/orders", json=LIMIT_FAR, headers={**AUTH, "Idempotency-Key": "k-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["replayed"] is True
    by_ref = client.post("/orders", json={**LIMIT_FAR, "order_ref": "k-1"}, headers=AUTH)
    assert by_ref.json()["id"] == first.json()["id"]
    assert len(broker.orders) == 1  # one order at the broker for three requests
    other = client.post("/orders", json={**LIMIT_FAR, "contracts": 2},
                        headers={**AUTH, "Idempotency-Key": "k-1"})
    assert other.status_code == 422 and other.json()["field"] == "order_ref"
    mismatch = client.post("/orders", json={**LIMIT_FAR, "order_ref": "k-2"},
                           headers={**AUTH, "Idempotency-Key": "k-3"})
    assert mismatch.status_code == 422
    assert len(broker.orders) == 1


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
def test_bad_order_input_is_422_naming_the_field(app_and_broker: Any, body: dict[str, Any],
                                                 field: str) -> None:
    client, broker = app_and_broker
    r = client.post("/orders", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert broker.orders == {}  # state unchanged


def test_unknown_order_404_and_malformed_id_422(client: Any) -> None:
    assert client.get("/orders/424242", headers=AUTH).status_code == 404
    assert client.delete("/orders/424242", headers=AUTH).status_code == 404
    r = client.get("/orders/not-an-id", headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "order_id"


def test_read_only_is_403_before_the_broker_is_asked() -> None:
    app, built = placeholder_app(IBKR_READ_ONLY=True)
    with running(app) as client:
        r = client.post("/orders", json=LIMIT_FAR, headers=AUTH)
        assert r.status_code == 403 and r.json()["error"] == "ReadOnlyViolation"
        assert client.post("/paper/roundtrip", headers=AUTH).status_code == 403
        assert built[0].orders == {}


def test_live_account_is_refused_orders_and_the_round_trip() -> None:
    app, built = placeholder_app(IBKR_ACCOUNT_ID="U7654321")
    with running(app) as client:
        r = client.post("/orders", json=LIMIT_FAR, headers=AUTH)
        assert r.status_code == 403 and r.json()["error"] == "LiveTradingNotAllowed"
        assert client.post("/paper/roundtrip", headers=AUTH).status_code == 403
        assert built[0].orders == {}
    allowed, built = placeholder_app(IBKR_ACCOUNT_ID="U7654321", TRADING_MODE="live",
                                     ALLOW_LIVE=True)
    with running(allowed) as client:  # live allowed for orders, never for the paper check
        assert client.post("/orders", json=LIMIT_FAR, headers=AUTH).status_code == 201
        r = client.post("/paper/roundtrip", headers=AUTH)
        assert r.status_code == 403 and "live account" in r.json()["detail"]


# --- errors from the broker, by a test double -------------------------------------------------


class Troubled(IBKRApi):
    """The placeholder, but the gateway times out quotes and IB refuses orders (code 201)."""

    last_error: Any = None

    def get_market_data(self, symbol: str) -> dict[str, Any]:
        self.last_error = RequestTimeout("the gateway did not answer within 10s")
        return {"symbol": symbol, "error": str(self.last_error)}

    def place_order(self, *args: Any, **kwargs: Any) -> str:
        raise OrderRejected("IB error 201: Order rejected - reason: market closed", 201)


def test_errors_map_to_http_by_the_error_tree(app_and_broker: Any) -> None:
    client, _ = app_and_broker
    troubled = Troubled(None, seed=2)
    troubled.connect()
    client.app.dependency_overrides[get_broker] = lambda: troubled
    try:
        q = client.get("/quotes/AAPL", headers=AUTH)
        assert q.status_code == 504 and q.json()["error"] == "RequestTimeout"
        legs = {"expiration": "2030-01-18", "long_strike": 200, "short_strike": 205}
        o = client.post("/orders", json={**LIMIT_FAR, "legs": legs}, headers=AUTH)
        assert o.status_code == 409 and o.json()["ib_code"] == 201
        assert metric(client.get("/metrics").text, "ib_order_errors_total") == 1.0
        troubled.disconnect()
        r = client.get("/option-chains/AAPL", headers=AUTH)
        assert r.status_code == 503 and r.headers["Retry-After"]
        assert client.get("/ready").status_code == 503
    finally:
        client.app.dependency_overrides.clear()


# --- the round trip and signals ---------------------------------------------------------------


def test_paper_roundtrip_places_and_cancels_one_lot(app_and_broker: Any) -> None:
    client, broker = app_and_broker
    r = client.post("/paper/roundtrip", headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbol"] == "AAPL" and body["quote"]["last"] > 0
    assert body["status_before_cancel"] == "Submitted"
    assert body["status_after_cancel"] == "Cancelled" and body["cancel_sent"] is True
    order = broker.orders[body["order_id"]]
    assert order["contracts"] == 1 and order["status"] == "Cancelled"
    assert order["filled"] == 0.0


def test_a_signal_becomes_an_order_through_the_trader(app_and_broker: Any) -> None:
    client, broker = app_and_broker
    r = client.post("/signals", json={"symbol": "AAPL", "direction": "LONG",
                                      "price_type": "MARKET"},
                    headers={**AUTH, "Idempotency-Key": "scan-1"})
    assert r.status_code == 202 and r.json()["id"] == "scan-1"
    done = wait_for(lambda: (s := client.get("/signals/scan-1", headers=AUTH).json())["order_id"]
                    and s, what="the signal's order")
    assert done["order_id"] in broker.orders
    assert broker.orders[done["order_id"]]["order_ref"] == "scan-1"
    again = client.post("/signals", json={"symbol": "AAPL", "direction": "LONG",
                                          "price_type": "MARKET"},
                        headers={**AUTH, "Idempotency-Key": "scan-1"})
    assert again.status_code == 200 and again.json()["order_id"] == done["order_id"]
    assert len(broker.orders) == 1
    assert client.get("/signals/nope", headers=AUTH).status_code == 404


def test_a_risk_rejected_signal_says_why() -> None:
    app, built = placeholder_app(MAX_CONTRACTS_PER_ORDER=2)
    with running(app) as client:
        r = client.post("/signals", json={"symbol": "AAPL", "direction": "SHORT",
                                          "contracts": 3}, headers=AUTH)
        sid = r.json()["id"]
        s = wait_for(lambda: (b := client.get(f"/signals/{sid}", headers=AUTH).json())["state"]
                     != "PENDING" and b, what="risk outcome")
        assert s["state"] == "REJECTED" and "max_contracts_per_order" in s["error"]
        assert built[0].orders == {}


def test_signals_503_when_the_trader_is_off() -> None:
    app, _ = placeholder_app(SERVICE_TRADER=False)
    with running(app) as client:
        r = client.post("/signals", json={"symbol": "AAPL", "direction": "LONG"}, headers=AUTH)
        assert r.status_code == 503 and "service.trader" in r.json()["detail"]


# --- docs -------------------------------------------------------------------------------------


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


# --- the event loop never waits on the gateway -------------------------------------------------


class Slow(IBKRApi):
    """The placeholder, but a quote waits until the test releases it (a slow gateway)."""

    def __init__(self) -> None:
        super().__init__(None, seed=3)
        import threading

        self.entered = threading.Event()
        self.release = threading.Event()

    def get_market_data(self, symbol: str) -> dict[str, Any]:
        self.entered.set()
        self.release.wait(30)
        return super().get_market_data(symbol)


def test_a_slow_gateway_call_does_not_block_other_requests() -> None:
    import threading

    slow = Slow()
    app, _ = placeholder_app(broker=slow)
    with running(app) as client:
        box: dict[str, Any] = {}
        quote = threading.Thread(target=lambda: box.setdefault(
            "quote", client.get("/quotes/AAPL", headers=AUTH)), daemon=True)
        quote.start()
        try:
            assert slow.entered.wait(10), "the quote never reached the broker"
            # the quote is parked in the broker; the loop must still serve everything else
            for path in ("/health", "/ready", "/metrics"):
                assert client.get(path).status_code == 200
            assert client.get("/orders/1", headers=AUTH).status_code == 404
            assert quote.is_alive() and "quote" not in box
        finally:
            slow.release.set()
            quote.join(10)
        assert box["quote"].status_code == 200
