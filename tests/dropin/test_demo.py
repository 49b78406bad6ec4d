"""``make demo`` end to end: the demo script against the simulated gateway with the real adapter."""

from __future__ import annotations

import io

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
