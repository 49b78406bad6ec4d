"""``ibkr-service`` in a subprocess against an in-process simulated gateway that goes through
IB's weekly token reset (down until released; connections accepted, then closed, as behind
ib-gateway-docker's socat): ``/ready`` says 503 "reconnecting" and ``ib_connection_status`` 0
all through the outage, the adapter's attempts reach the gateway spaced within the backoff,
and after the release ``/ready`` is 200 with one reconnect counted."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import Proc, executable, get_status, until
from service_support import TOKEN, free_port, metric

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
import clock_support  # noqa: E402

from src.simulator import SimulatedGateway  # noqa: E402

pytestmark = pytest.mark.integration

GRACEFUL = (0, -signal.SIGTERM)
BASE, CAP = 0.1, 0.4

CONFIG = f"""\
log_level: INFO
ibkr:
  host: "127.0.0.1"
  port: {{gateway}}
  client_id: 7
  timeout: 5
  request_timeout: 3
  reconnect_base: {BASE}
  reconnect_cap: {CAP}
service:
  broker: adapter
  trader: false
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    gw = SimulatedGateway(port=free_port(), seed=1, accounts=["DU1234567"],
                          clock=clock_support.pinned_clock()).start()
    service_port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(gateway=gw.port), encoding="utf-8")
    service = Proc([executable("ibkr-service"), "--config", str(config), "--host",
                    "127.0.0.1", "--port", str(service_port)], tmp_path / "service.log",
                   env={"IBKR_SERVICE_TOKEN": TOKEN, "IBKR_SERVICE_TOKEN_FILE": ""})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{service_port}", timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            until(lambda: get_status(client, "/ready") == 200 or not service.alive(), 60,
                  "the service to be ready")
            assert service.alive(), service.output()
            yield {"gw": gw, "client": client, "service": service}
    finally:
        code = service.stop()
        gw.stop()
        assert code in GRACEFUL, service.output()


def test_ready_and_metrics_tell_the_truth_through_a_token_reset(stack: dict[str, Any]) -> None:
    gw: SimulatedGateway = stack["gw"]
    client: httpx.Client = stack["client"]
    before = metric(client.get("/metrics").text, "ib_reconnects_total") or 0.0
    mark = len(gw.connection_attempts())
    gw.token_reset()
    until(lambda: get_status(client, "/ready") == 503, 5, "/ready 503")
    lies: list[str] = []

    def dropped_enough() -> bool:
        ready = client.get("/ready")
        body = ready.json()
        if ready.status_code != 503 or body["connected"] or not body["reconnecting"]:
            lies.append(f"/ready {ready.status_code} {body}")
        if metric(client.get("/metrics").text, "ib_connection_status") != 0.0:
            lies.append("ib_connection_status != 0")
        attempts = gw.connection_attempts()[mark:]
        return sum(a.outcome == "dropped" for a in attempts) >= 8

    until(dropped_enough, 15, "8 connection attempts dropped by the logged-out gateway")
    assert not lies, sorted(set(lies))
    times = [a.at for a in gw.connection_attempts()[mark:] if a.outcome == "dropped"]
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    # each gap: a backoff delay in [BASE, CAP] + the attempt itself (ms; more on a loaded host)
    assert min(gaps) >= BASE - 0.005 and max(gaps) <= CAP + 1.0, gaps
    assert gw.restart_state == "logged_out"

    gw.release()
    until(lambda: get_status(client, "/ready") == 200, 10, "/ready 200 after the release")
    text = client.get("/metrics").text
    assert metric(text, "ib_connection_status") == 1.0
    assert metric(text, "ib_reconnects_total") == before + 1
