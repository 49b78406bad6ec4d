"""End to end: ``ibkr-service`` in a subprocess (the real adapter) against the simulated gateway
in another, driven over HTTP: ready, quote, chain, a spread placed / followed / cancelled, a
filled spread's positions, the paper round trip, a signal through the Trader, ``/metrics``; then
the gateway killed (``/ready`` 503, ``ib_connection_status 0``) and restarted (200 again)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import ROOT, Proc, executable, get_status, start_sim, until
from service_support import TOKEN, free_port, metric

pytestmark = pytest.mark.integration

GRACEFUL = (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a clean shutdown
RECONNECT_WINDOW = 20.0  # fast backoff below: a loss is noticed and repaired well within this

CONFIG = """\
log_level: INFO
ibkr:
  host: "127.0.0.1"
  port: {gateway}
  client_id: 7
  timeout: 5
  request_timeout: 3
  reconnect_base: 0.05
  reconnect_cap: 0.5
service:
  broker: adapter
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    gateway_port, service_port = free_port(), free_port()
    sim = start_sim(gateway_port, tmp_path / "sim.log")
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(gateway=gateway_port), encoding="utf-8")
    service = Proc([executable("ibkr-service"), "--config", str(config), "--host",
                    "127.0.0.1", "--port", str(service_port)], tmp_path / "service.log",
                   env={"IBKR_SERVICE_TOKEN": TOKEN, "IBKR_SERVICE_TOKEN_FILE": ""})
    box: dict[str, Any] = {"sim": sim, "service": service, "gateway_port": gateway_port,
                           "tmp": tmp_path}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{service_port}", timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            box["client"] = client
            until(lambda: get_status(client, "/ready") == 200 or not service.alive(), 60,
                  "the service to be ready")
            assert service.alive(), service.output()
            yield box
    finally:
        code = service.stop()
        box["sim"].stop()
        log = service.output()
        assert code in GRACEFUL, log
        assert "Service stopped" in log  # the lifespan closed the broker
        assert TOKEN not in log and "DU1234567" not in log


def _metrics(client: httpx.Client) -> str:
    r = client.get("/metrics", follow_redirects=False)
    assert r.status_code == 200
    return r.text


def test_the_service_drives_the_real_adapter_against_the_gateway(stack: dict[str, Any]) -> None:
    client: httpx.Client = stack["client"]
    assert client.get("/ready").json()["broker"] == "adapter"
    text = _metrics(client)
    assert metric(text, "ib_connection_status") == 1.0
    orders_before = metric(text, "ib_orders_total") or 0.0

    quote = client.get("/quotes/AAPL")
    assert quote.status_code == 200, quote.text
    assert quote.json()["bid"] > 0
    unknown = client.get("/quotes/ZZZNOPE")  # IB: no security definition (code 200)
    assert unknown.status_code == 404 and unknown.json()["ib_code"] == 200, unknown.text
    chain = client.get("/option-chains/AAPL").json()
    assert chain["count"] > 0 and {o["option_type"] for o in chain["options"]} == {"call", "put"}

    placed = client.post("/orders", json={"symbol": "AAPL", "limit_price": 0.05},
                         headers={"Idempotency-Key": "e2e-limit-1"})
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    replay = client.post("/orders", json={"symbol": "AAPL", "limit_price": 0.05},
                         headers={"Idempotency-Key": "e2e-limit-1"})
    assert replay.status_code == 200 and replay.json()["id"] == order_id
    until(lambda: client.get(f"/orders/{order_id}").json()["status"] in
          ("Submitted", "PreSubmitted"), 10, "the order to rest")
    cancel = client.delete(f"/orders/{order_id}")
    assert cancel.status_code == 202, cancel.text
    until(lambda: client.get(f"/orders/{order_id}").json()["status"] == "Cancelled", 10,
          "the cancel")
    assert client.get("/orders/999999").status_code == 404

    market = client.post("/orders", json={"symbol": "AAPL", "price_type": "MARKET"})
    assert market.status_code == 201, market.text
    filled = market.json()["id"]
    until(lambda: client.get(f"/orders/{filled}").json()["status"] == "Filled", 15, "the fill")
    positions = until(lambda: (p := client.get("/positions").json())["count"] >= 2 and p, 10,
                      "the filled legs in positions")
    assert all(re.search(r"\*{3}", p["account"] or "***") for p in positions["positions"])

    trip = client.post("/paper/roundtrip")
    assert trip.status_code == 200, trip.text
    assert trip.json()["status_after_cancel"] in ("Cancelled", "ApiCancelled")

    sig = client.post("/signals", json={"symbol": "AAPL", "direction": "LONG",
                                        "price_type": "LIMIT", "limit_price": 0.05})
    assert sig.status_code == 202, sig.text
    done = until(lambda: (s := client.get(f"/signals/{sig.json()['id']}").json())["order_id"]
                 and s, 20, "the signal's order")
    assert client.get(f"/orders/{done['order_id']}").status_code == 200

    text = _metrics(client)
    assert metric(text, "ib_connection_status") == 1.0
    assert (metric(text, "ib_market_data_subscriptions") or 0) >= 1  # AAPL's line streams
    assert metric(text, "ib_order_errors_total") is not None
    # the limit order, the market order, the round trip's, the signal's
    assert (metric(text, "ib_orders_total") or 0) - orders_before >= 4
    assert (metric(text, "ibkr_service_requests_total", method="POST", route="/orders",
                   status="201") or 0) >= 2
    log = stack["service"].output()  # seed 003: logs show the connection and the order events
    assert "Connected to IBKR" in log and "Placed order" in log


def test_gateway_killed_then_restarted(stack: dict[str, Any]) -> None:
    client: httpx.Client = stack["client"]
    assert client.get("/ready").status_code == 200
    stack["sim"].stop()
    until(lambda: get_status(client, "/ready") == 503, RECONNECT_WINDOW, "/ready 503")
    down = client.get("/ready")
    assert down.headers["Retry-After"] and down.json()["reason"]
    assert metric(_metrics(client), "ib_connection_status") == 0.0
    q = client.get("/quotes/AAPL")
    assert q.status_code == 503 and q.headers["Retry-After"]
    assert client.get("/health").status_code == 200  # alive, just not ready

    stack["sim"] = start_sim(stack["gateway_port"], stack["tmp"] / "sim2.log")
    until(lambda: get_status(client, "/ready") == 200, RECONNECT_WINDOW, "/ready 200 again")
    text = _metrics(client)
    assert metric(text, "ib_connection_status") == 1.0
    assert (metric(text, "ib_reconnects_total") or 0) >= 1
    assert client.get("/quotes/AAPL").status_code == 200


def test_the_dockerfile_command_runs_outside_docker(tmp_path: Path) -> None:
    """The image's exact CMD, with the image's ENV pointed at loopback and a free port."""
    cmd = _dockerfile_cmd(ROOT / "Dockerfile")
    assert cmd[0] == "ibkr-service"
    gateway_port, service_port = free_port(), free_port()
    sim = start_sim(gateway_port, tmp_path / "sim.log")
    env = {"IBKR_SERVICE_HOST": "127.0.0.1", "IBKR_SERVICE_PORT": str(service_port),
           "IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(gateway_port),
           "IBKR_SERVICE_TOKEN": TOKEN, "IBKR_SERVICE_TOKEN_FILE": ""}
    service = Proc([executable(cmd[0]), *cmd[1:]], tmp_path / "service.log", env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{service_port}", timeout=30) as client:
            until(lambda: get_status(client, "/ready") == 200 or not service.alive(), 60,
                  "the container command to be ready")
            assert service.alive(), service.output()
            probe = _healthcheck(ROOT / "Dockerfile")
            assert _run(probe, env) == 0  # the image's HEALTHCHECK: healthy when ready
            sim.stop()
            until(lambda: _run(probe, env) != 0, RECONNECT_WINDOW, "the healthcheck to fail")
    finally:
        assert service.stop() in GRACEFUL, service.output()
        sim.stop()


def _dockerfile_cmd(path: Path) -> list[str]:
    import json

    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("CMD")]
    assert len(lines) == 1, "the Dockerfile has one exec-form CMD"
    return list(json.loads(lines[0][len("CMD"):].strip()))


def _healthcheck(path: Path) -> list[str]:
    """The exec-form command of the Dockerfile's HEALTHCHECK ("python" → this interpreter)."""
    import json

    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines()
             if ln.startswith("HEALTHCHECK")]
    assert len(lines) == 1, "the Dockerfile has one HEALTHCHECK"
    argv = list(json.loads(lines[0].split(" CMD ", 1)[1]))
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


def _run(argv: list[str], env: dict[str, str]) -> int:
    return subprocess.run(argv, env={**os.environ, **env}, capture_output=True,
                          timeout=30).returncode
