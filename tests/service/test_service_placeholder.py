"""The service on the in-memory placeholder broker, through a ``broker_factory`` (and test
doubles built on it, swapped in with ``app.dependency_overrides``): what is specific to the
placeholder or to a double — its simulated gateway being down at start, a gateway that times
out, a slow gateway that must not block the event loop — and one pass over the read routes.
Everything else runs on the mock client through the factory: test_service_api.py."""

from __future__ import annotations

from typing import Any

import pytest
from service_support import (
    AUTH,
    metric,
    placeholder_app,
    running,
    wait_for,
)

from src.brokers.errors import OrderRejected, RequestTimeout
from src.brokers.ibkr_api import IBKRApi
from src.service.state import get_broker

LIMIT_FAR = {"symbol": "AAPL", "price_type": "LIMIT", "limit_price": 0.05}


@pytest.fixture
def app_and_broker() -> Any:
    app, built = placeholder_app()
    with running(app) as client:
        yield client, built[0]


@pytest.fixture
def client(app_and_broker: Any) -> Any:
    return app_and_broker[0]


def test_lifespan_builds_one_broker_connects_it_and_closes_it() -> None:
    app, built = placeholder_app()
    with running(app) as client:
        for _ in range(3):
            assert client.get("/quotes/AAPL", headers=AUTH).status_code == 200
        assert len(built) == 1 and built[0].connected
    assert built[0].connected is False  # shutdown closed it


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


def test_placeholder_metrics_are_derived_from_the_broker_at_scrape_time(client: Any) -> None:
    """The placeholder keeps no metrics: the ib_* names come from BrokerCollector."""
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
