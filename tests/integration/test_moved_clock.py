"""The clock moved across three weeks: the suite's scenarios hold on every date.

For each instant below — every day from Monday 2026-12-21 to Friday 2027-01-08 (weekdays,
weekends, the Christmas and New Year's Day holidays whose weekly options expire on the Thursday,
the year end), an expiration Friday before and after the 16:00 New York close, and New York
evenings when the UTC date has already turned — one simulated gateway, the real ib_insync
adapter and the placeholder all run on one FixedClock at that instant and must agree with the
exchange calendar: the chain lists exactly the next weeklies (never a holiday, never one past its
close), greeks are the pricing kernel's, a MARKET spread fills, a resting LIMIT survives a
restart of the adapter (reconcile) and today's executions are replayed to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from integ_support import ACCOUNT, api_config, wait_until
from model_support import assert_true_to_model, gateway_inputs

from src.app.config import Config
from src.app.executor import select_spread
from src.brokers.ibkr_api import RISK_FREE_RATE, IBKRApi
from src.utils.clock import NEW_YORK, FixedClock, ny_datetime
from src.utils.market_calendar import (
    first_live_expiry,
    is_business_day,
    listed_weeklies,
    years_to_expiry,
)

pytestmark = pytest.mark.integration

N_EXPIRATIONS = 4  # the adapter's and the placeholder's CHAIN_EXPIRATIONS default


def _instants() -> list[datetime]:
    start = date(2026, 12, 21)
    days = [ny_datetime(start + timedelta(days=i), time(10, 0)) for i in range(19)]
    extra = [
        ny_datetime(date(2026, 12, 4), time(15, 0)),  # expiration Friday, before the close
        ny_datetime(date(2026, 12, 4), time(16, 30)),  # ... and after it
        ny_datetime(date(2026, 12, 24), time(16, 30)),  # holiday-moved expiration, after close
        ny_datetime(date(2026, 12, 31), time(21, 30)),  # New York's year end; UTC is in 2027
        ny_datetime(date(2026, 12, 1), time(20, 0)),  # a Tuesday evening (UTC: Wednesday)
    ]
    return days + extra


INSTANTS = _instants()


def _ny_label(instant: datetime) -> str:
    return instant.astimezone(NEW_YORK).strftime("%a-%Y-%m-%d-%H%M")


@pytest.fixture(scope="module", params=INSTANTS, ids=[_ny_label(i) for i in INSTANTS])
def moved(request: pytest.FixtureRequest) -> Iterator[tuple[FixedClock, Any]]:
    """One clock and one simulated gateway on it, per instant (shared by that instant's tests)."""
    from src.simulator import SimulatedGateway

    clock = FixedClock(request.param)
    with SimulatedGateway(port=0, seed=5, accounts=[ACCOUNT], pacing=True, clock=clock) as gw:
        yield clock, gw


def _adapter(gw: Any, clock: FixedClock, **overrides: Any) -> Any:
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

    api = IBKRIBInsyncApi(api_config(gw, **overrides), clock=clock)
    assert api.connect() is True
    return api


def _close(api: Any) -> None:
    try:
        api.disconnect()
    finally:
        api.close()


def _expected(clock: FixedClock) -> list[date]:
    exps = listed_weeklies(clock, N_EXPIRATIONS)
    first = first_live_expiry(clock)
    assert all(is_business_day(d) and d >= first for d in exps)  # the calendar's own promise
    return exps


def test_adapter_chain_greeks_order_and_reconcile(moved: tuple[FixedClock, Any]) -> None:
    clock, gw = moved
    api = _adapter(gw, clock)
    try:
        chain = api.get_option_chain("AAPL")
        assert sorted({o.expiration for o in chain}) == _expected(clock)
        assert {o.option_type for o in chain} == {"call", "put"}
        for o in chain:
            assert_true_to_model(o, **gateway_inputs(gw, o))

        spot = api.get_market_data("AAPL")["last"]
        spread = select_spread(chain, "AAPL", "LONG", spot)
        filled_id = api.place_order("AAPL", "LONG", 1, spread, "MARKET")
        status = wait_until(lambda: (s := api.get_order_status(filled_id)).get("status")
                            == "Filled" and s.get("executions") and s, what="MARKET fill")
        exec_ids = {e["execution_id"] for e in status["executions"]}
        resting_id = api.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)
        wait_until(lambda: api.get_order_status(resting_id).get("status") == "Submitted",
                   what="resting LIMIT acknowledged")
        client_id = api.client_id
    finally:
        _close(api)

    again = _adapter(gw, clock, IBKR_CLIENT_ID=client_id)  # a restart of the same client
    try:
        assert again.get_order_status(resting_id).get("status") == "Submitted"  # adopted
        replayed = {f.execution.execId for f in again.ib.fills()}
        assert exec_ids <= replayed, "today's executions were not replayed after the restart"
        assert again.cancel_order(resting_id) is True
        wait_until(lambda: again.get_order_status(resting_id).get("status") == "Cancelled",
                   what="resting LIMIT cancelled")
    finally:
        _close(again)


def test_placeholder_chain_greeks_order_and_reconnect(moved: tuple[FixedClock, Any]) -> None:
    clock, _ = moved
    api = IBKRApi(Config().replace(USE_IB_INSYNC=False), clock=clock)
    assert api.connect()
    chain = api.get_option_chain("AAPL")
    assert sorted({o.expiration for o in chain}) == _expected(clock)
    spot = api.get_market_data("AAPL")["last"]
    for o in chain:
        assert_true_to_model(o, years=years_to_expiry(o.expiration, clock), rate=RISK_FREE_RATE,
                             spot_lo=spot, spot_hi=spot, with_rho=True, iv_rel=2e-4)
    spread = select_spread(chain, "AAPL", "LONG", spot)
    order_id = api.place_order("AAPL", "LONG", 1, spread, "MARKET")
    assert api.get_order_status(order_id)["status"] == "Filled"
    api.disconnect()
    assert api.connect()  # the simulated gateway keeps its state across a reconnect
    assert api.get_order_status(order_id)["status"] == "Filled"
    assert len(api.get_positions()) == 2
