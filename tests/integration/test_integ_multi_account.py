"""A login with two accounts: the adapter reads and trades exactly the one it uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from integ_support import (
    AAPL_CON_ID,
    LATENCY_MS,
    MSFT_CON_ID,
    bull_call,
    wait_sim_order,
    wait_until,
)

FIRST, SECOND = "DU1111111", "DU2222222"


@pytest.fixture(scope="module")
def gateway() -> Iterator[Any]:
    from src.simulator import SimulatedGateway

    with SimulatedGateway(port=0, seed=2, latency_ms=LATENCY_MS, accounts=[FIRST, SECOND],
                          pacing=True) as gw:
        gw.call(gw.engine.inject_position, FIRST, AAPL_CON_ID, 11, 200.0)
        gw.call(gw.engine.inject_position, SECOND, MSFT_CON_ID, 22, 400.0)
        yield gw


def test_blank_account_uses_the_first_managed_account(gateway: Any, make_api: Any) -> None:
    api = make_api()
    assert api.account_id == FIRST
    summary = api.get_account_summary()
    assert summary["account_id"] == FIRST
    assert isinstance(summary["net_liquidation"], float)
    positions = wait_until(lambda: (p := api.get_positions()).get("AAPL") and p,
                           what="FIRST's AAPL position")
    assert positions["AAPL"]["quantity"] == 11
    assert "MSFT" not in positions, "a position of the other account leaked in"
    assert all(row["account"] == FIRST for row in positions.values())


def test_configured_second_account_is_the_one_read_and_traded(
        gateway: Any, make_api: Any) -> None:
    api = make_api(IBKR_ACCOUNT_ID=SECOND)
    assert api.account_id == SECOND
    summary = api.get_account_summary()
    assert "error" not in summary, summary
    assert summary["account_id"] == SECOND
    assert isinstance(summary["net_liquidation"], float)
    positions = wait_until(lambda: (p := api.get_positions()).get("MSFT") and p,
                           what="SECOND's MSFT position")
    assert positions["MSFT"]["quantity"] == 22
    assert "AAPL" not in positions, "a position of the other account leaked in"

    order_id = api.place_order("AAPL", "LONG", 1, bull_call(gateway), "LIMIT", 0.05)
    sim = wait_sim_order(gateway, api.test_client_id, order_id)
    assert sim.request.account == SECOND
    assert api.cancel_order(order_id) is True


def test_position_update_of_the_other_account_is_ignored(gateway: Any, make_api: Any) -> None:
    api = make_api(IBKR_ACCOUNT_ID=FIRST)
    wait_until(lambda: api.get_positions().get("AAPL"), what="AAPL")
    gateway.call(gateway.engine.inject_position, SECOND, AAPL_CON_ID, 500, 100.0)
    gateway.call(gateway.engine.inject_position, FIRST, AAPL_CON_ID, 12, 200.0)
    wait_until(lambda: api.get_positions()["AAPL"]["quantity"] == 12, what="FIRST AAPL 12")
    assert api.get_positions()["AAPL"]["account"] == FIRST
    gateway.call(gateway.engine.inject_position, SECOND, AAPL_CON_ID, 0, 0.0)
