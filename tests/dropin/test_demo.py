"""``make demo`` end to end: the demo script against the simulated gateway with the real adapter."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from src.app.demo import run_demo


def test_demo_against_the_simulated_gateway_passes() -> None:
    out = io.StringIO()
    code = run_demo("sim", out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "IBKRIBInsyncApi" in text and "Simulated IB gateway listening on 127.0.0.1:" in text
    for heading in ("== Quote AAPL", "== Option chain AAPL", "== Bull call spread at MARKET",
                    "== LIMIT spread far from the market", "== Positions", "== Account summary"):
        assert heading in text
    assert "Filled" in text and "Cancelled" in text and "all steps passed" in text


def test_paper_roundtrip_quotes_places_and_cancels_one_lot_and_leaves_nothing_open(
        tmp_path: Path) -> None:
    """Seed 003's paper round-trip (``python -m src.app --roundtrip``) against a gateway named
    by a config file — here the simulated one: quote AAPL, place a 1-lot LIMIT spread far from
    the market, cancel it; the gateway then holds no live order and no position."""
    from src.simulator import SimulatedGateway

    with SimulatedGateway(port=0, seed=3) as gw:
        config = yaml.safe_load(Path("config.yaml").read_text())
        config["ibkr"].update(host=gw.host, port=gw.port, client_id=77)
        path = tmp_path / "paper.yaml"
        path.write_text(yaml.safe_dump(config))
        out = io.StringIO()
        code = run_demo("gateway", path, out=out, roundtrip=True)
        text = out.getvalue()
        assert code == 0, text
        assert "== 1-lot LIMIT spread far from the market, then cancelled" in text
        assert "Cancelled" in text and "== Bull call spread" not in text
        assert "== IBKRClient: quote AAPL, 1-share LIMIT far from the market" in text
        orders = gw.call(lambda: list(gw.engine.orders.values()))
        assert [(o.status, o.request.total_quantity, o.request.contract.sec_type)
                for o in orders] == [("Cancelled", 1, "BAG"), ("Cancelled", 1, "STK")]
        stock_order = orders[1].request
        assert stock_order.action == "BUY" and stock_order.order_type == "LMT"
        assert {o.client_id for o in orders} == {77, 78}  # the client has its own client id
        assert gw.call(lambda: [p for p in gw.engine.positions.values() if p.quantity]) == []


@pytest.mark.parametrize("where", ["live port", "live account"])
def test_paper_roundtrip_refuses_a_live_gateway(tmp_path: Path, where: str) -> None:
    """The round trip never trades on a live account: a live port (7496/4001) is refused before
    connecting, a non-paper account right after; nothing reaches the gateway's order book."""
    from src.simulator import SimulatedGateway

    accounts = ["U7654321"] if where == "live account" else ["DU1234567"]
    with SimulatedGateway(port=0, seed=3, accounts=accounts) as gw:
        config = yaml.safe_load(Path("config.yaml").read_text())
        config["ibkr"].update(host=gw.host, port=4001 if where == "live port" else gw.port,
                              client_id=79)
        path = tmp_path / "live.yaml"
        path.write_text(yaml.safe_dump(config))
        out = io.StringIO()
        code = run_demo("gateway", path, out=out, roundtrip=True)
        text = out.getvalue()
        assert code == 1, text
        assert "refusing to run the paper round trip" in text
        assert ("port 4001" if where == "live port" else "not a paper account") in text
        assert "U7654321" not in text  # the account id is masked
        assert gw.call(lambda: list(gw.engine.orders.values())) == []
