"""Spread orders end to end: the BAG on the wire, statuses, fills, rejections, cancels."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from integ_support import (
    bear_put,
    bull_call,
    leg_actions,
    market_steps,
    option_con_id,
    round_trip,
    run_in_thread,
    set_market_open,
    sim_order,
    sim_status,
    wait_sim_order,
    wait_until,
)
from metrics_support import metric_value

from src.brokers.base import FINAL_STATUSES, ORDER_FIELDS
from src.brokers.errors import InvalidOrder

NOT_MARKETABLE = 0.05  # a debit no ATM vertical trades at: the order rests


def _leg_con_ids(gw: Any, spread: Any) -> tuple[int, int]:
    exp = spread.expiration.strftime("%Y%m%d")
    long_id = option_con_id(gw, spread.symbol, exp, spread.long_leg.strike, spread.long_leg.right)
    short_id = option_con_id(gw, spread.symbol, exp, spread.short_leg.strike,
                             spread.short_leg.right)
    return long_id, short_id


def _placed_requests(gw: Any, client_id: int) -> int:
    return sum(1 for cid, mid, _ in gw.requests if cid == client_id and mid == 3)


def _cancel_requests(gw: Any, client_id: int) -> int:
    return sum(1 for cid, mid, _ in gw.requests if cid == client_id and mid == 4)


def _status(api: Any, order_id: str) -> str:
    return str(api.get_order_status(order_id).get("status"))


def test_bull_call_limit_order_placed_then_cancelled(gateway: Any, api: Any) -> None:
    spread = bull_call(gateway)
    order_id = api.place_order("AAPL", "LONG", 2, spread, "LIMIT", NOT_MARKETABLE)
    assert isinstance(order_id, str) and order_id.isdigit()

    sim = wait_sim_order(gateway, api.test_client_id, order_id)
    req = sim.request
    assert req.contract.sec_type == "BAG"
    assert req.contract.symbol == "AAPL"
    long_id, short_id = _leg_con_ids(gateway, spread)
    # BUY the lower call, SELL the higher call; the combo itself is bought.
    assert leg_actions(gateway, sim) == {long_id: "BUY", short_id: "SELL"}
    assert all(leg.ratio == 1 for leg in req.contract.combo_legs)
    assert req.action == "BUY"
    assert req.total_quantity == 2
    assert req.order_type == "LMT"
    assert req.lmt_price == pytest.approx(NOT_MARKETABLE)
    assert req.order_ref, "orderRef must be set"

    status = wait_until(lambda: (s := api.get_order_status(order_id)).get("status") in
                        ("PreSubmitted", "Submitted") and s, what="a working status")
    assert set(ORDER_FIELDS) <= set(status), sorted(status)
    assert status["id"] == order_id
    assert status["symbol"] == "AAPL"
    assert status["direction"] == "LONG"
    assert status["contracts"] == 2
    assert status["spread_type"] == "BULL_CALL"
    assert status["price_type"] == "LIMIT"
    assert status["limit_price"] == pytest.approx(NOT_MARKETABLE)
    assert status["filled"] == 0 and status["remaining"] == 2
    assert status["filled_price"] is None and status["fill_time"] is None
    assert status["submit_time"] is not None

    assert api.cancel_order(order_id) is True
    wait_until(lambda: _status(api, order_id) == "Cancelled", what="Cancelled")
    assert sim_status(gateway, api.test_client_id, order_id) == "Cancelled"
    # A finished order cannot be cancelled again.
    assert api.cancel_order(order_id) is False


def test_order_ref_is_passed_through(gateway: Any, api: Any) -> None:
    order_id = api.place_order("AAPL", "LONG", 1, bull_call(gateway, expiry_index=1), "LIMIT",
                               NOT_MARKETABLE, order_ref="integ-ref-42")
    sim = wait_sim_order(gateway, api.test_client_id, order_id)
    assert sim.request.order_ref == "integ-ref-42"
    assert api.cancel_order(order_id) is True


def test_short_bull_call_reverses_the_legs_and_buys_the_combo(gateway: Any, api: Any) -> None:
    # Seed bug: SHORT flipped both the leg actions and the order action — LONG again.
    spread = bull_call(gateway, expiry_index=2)
    order_id = api.place_order("AAPL", "SHORT", 1, spread, "LIMIT", NOT_MARKETABLE)
    sim = wait_sim_order(gateway, api.test_client_id, order_id)
    long_id, short_id = _leg_con_ids(gateway, spread)
    assert leg_actions(gateway, sim) == {long_id: "SELL", short_id: "BUY"}
    assert sim.request.action == "BUY"
    status = api.get_order_status(order_id)
    assert status["direction"] == "SHORT"
    if status.get("status") not in FINAL_STATUSES:
        api.cancel_order(order_id)


def test_short_limit_price_is_a_credit_floor(gateway: Any, api: Any) -> None:
    """SHORT = BUY the reversed legs, a credit combo: IB prices credits negative. A SHORT at
    limit X must mean "receive at least X" (BUY @ -X); sent as +X it would mean "pay up to X"
    and fill at whatever credit the market gives — the limit would protect nothing."""
    spread = bull_call(gateway, expiry_index=1)
    width = spread.short_leg.strike - spread.long_leg.strike
    demanded = round(width - 0.10, 2)  # no vertical trades this close to its width
    order_id = api.place_order("AAPL", "SHORT", 1, spread, "LIMIT", demanded)
    sim = wait_sim_order(gateway, api.test_client_id, order_id)
    assert sim.request.action == "BUY"
    assert sim.request.lmt_price == pytest.approx(-demanded)
    market_steps(gateway, 2)  # two fill checks at the gateway: it must still rest
    assert sim_status(gateway, api.test_client_id, order_id) in ("PreSubmitted", "Submitted")
    assert api.get_order_status(order_id)["limit_price"] == pytest.approx(demanded)
    assert api.cancel_order(order_id) is True

    # A credit the market does give: it fills, at a credit no smaller than asked.
    order_id = api.place_order("AAPL", "SHORT", 1, spread, "LIMIT", 0.05)
    status = wait_until(lambda: (s := api.get_order_status(order_id)).get("status") == "Filled"
                        and s, what="SHORT Filled")
    sim = sim_order(gateway, api.test_client_id, order_id)
    assert sim.avg_fill_price <= -0.05  # received ≥ 0.05
    # Reported in the caller's convention, like limit_price: the credit received, positive.
    assert status["filled_price"] == pytest.approx(-sim.avg_fill_price)
    assert status["filled_price"] >= 0.05


def test_bear_put_market_order_fills_with_executions_and_commissions(
        gateway: Any, api: Any) -> None:
    spread = bear_put(gateway)
    order_id = api.place_order("AAPL", "LONG", 2, spread, "MARKET")
    sim = wait_sim_order(gateway, api.test_client_id, order_id)
    long_id, short_id = _leg_con_ids(gateway, spread)
    # BUY the higher put, SELL the lower put.
    assert leg_actions(gateway, sim) == {long_id: "BUY", short_id: "SELL"}
    assert sim.request.order_type == "MKT"
    assert sim.request.action == "BUY"

    status = wait_until(
        lambda: (s := api.get_order_status(order_id)).get("status") == "Filled"
        and s.get("commissions") and s, what="Filled with commissions")
    assert status["filled"] == 2 and status["remaining"] == 0
    assert isinstance(status["filled_price"], float)
    assert status["filled_price"] == pytest.approx(sim.avg_fill_price, abs=1e-6)
    assert status["fill_time"] is not None
    execs = status["executions"]
    assert execs, "no executions recorded"
    assert all(e.get("execution_id") for e in execs)
    assert len({e["execution_id"] for e in execs}) == len(execs), "duplicate executions"
    gw_exec_ids = {f.exec_id for f in gateway.call(lambda: list(gateway.engine.fills))
                   if f.order_id == int(order_id) and f.client_id == api.test_client_id}
    assert {e["execution_id"] for e in execs} <= gw_exec_ids
    comms = status["commissions"]
    assert {c["execution_id"] for c in comms} <= gw_exec_ids
    assert len({c["execution_id"] for c in comms}) == len(comms), "duplicate commissions"
    # Every commission report arrives (the combo-level execution carries 0.0).
    gw_total = sum(f.commission for f in gateway.call(lambda: list(gateway.engine.fills))
                   if f.order_id == int(order_id) and f.client_id == api.test_client_id)
    wait_until(lambda: sum(c["commission"] for c in
                           api.get_order_status(order_id)["commissions"]) == pytest.approx(gw_total)
               and gw_total > 0, what="all commission reports")
    assert api.cancel_order(order_id) is False  # already filled


def test_marketable_limit_order_fills(gateway: Any, api: Any) -> None:
    spread = bull_call(gateway, expiry_index=1)
    order_id = api.place_order("AAPL", "LONG", 1, spread, "LIMIT", 5.0)  # ≥ the strike width
    status = wait_until(lambda: (s := api.get_order_status(order_id)).get("status") == "Filled"
                        and s, what="Filled")
    assert status["filled"] == 1 and status["remaining"] == 0
    assert 0 < status["filled_price"] <= 5.0


@pytest.mark.allow_ib_errors(201)
def test_market_closed_rejection_raises_promptly(
        gateway: Any, api: Any, caplog: pytest.LogCaptureFixture) -> None:
    errors_before = metric_value(api, "ib_order_errors_total") or 0.0
    set_market_open(gateway, False)
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(
                RuntimeError, match=r"^Order placement failed: ") as caught:
            api.place_order("AAPL", "LONG", 1, bear_put(gateway), "MARKET")
    finally:
        set_market_open(gateway, True)
    # ended on the gateway's rejection (error 201), not on the request timeout
    assert "timed out" not in str(caught.value), caught.value
    assert metric_value(api, "ib_order_errors_total") == errors_before + 1
    assert any("Error placing order" in r.getMessage() and r.levelno >= logging.ERROR
               for r in caplog.records)
    # The gateway saw it and rejected it.
    rejected = [o for o in gateway.call(lambda: list(gateway.engine.orders.values()))
                if o.client_id == api.test_client_id]
    assert rejected and rejected[-1].status == "Inactive"
    # And the adapter still trades afterwards.
    order_id = api.place_order("AAPL", "LONG", 1, bull_call(gateway), "LIMIT", NOT_MARKETABLE)
    assert api.cancel_order(order_id) is True


def test_invalid_orders_raise_value_error_and_send_nothing(gateway: Any, api: Any) -> None:
    spread = bull_call(gateway)
    before = _placed_requests(gateway, api.test_client_id)
    bad_calls: list[tuple[Any, ...]] = [
        ("AAPL", "LONG", 0, spread, "LIMIT", 1.0),
        ("AAPL", "LONG", -1, spread, "MARKET", None),
        ("AAPL", "SIDEWAYS", 1, spread, "LIMIT", 1.0),
        ("AAPL", "LONG", 1, spread, "STOP", 1.0),
        ("AAPL", "LONG", 1, spread, "LIMIT", None),
        ("MSFT", "LONG", 1, spread, "LIMIT", 1.0),  # symbol does not match the spread
        ("AAPL", "LONG", 1, "not a spread", "LIMIT", 1.0),
    ]
    for args in bad_calls:
        with pytest.raises(InvalidOrder):
            api.place_order(*args)
    round_trip(api)  # anything sent before this was processed by the gateway
    assert _placed_requests(gateway, api.test_client_id) == before
    assert api.orders == {} or all(o["symbol"] == "AAPL" for o in api.orders.values())


@pytest.mark.allow_ib_errors(10147, 161)
def test_unknown_order_ids(api: Any) -> None:
    assert api.get_order_status("999999") == {}
    assert api.cancel_order("999999") is False
    assert api.get_order_status("not-a-number") == {}
    assert api.cancel_order("not-a-number") is False


def test_order_lifecycle_from_threads_without_event_loop(gateway: Any, api: Any) -> None:
    spread = bull_call(gateway, expiry_index=3)
    order_id = run_in_thread(api.place_order, "AAPL", "LONG", 1, spread, "LIMIT",
                             NOT_MARKETABLE)
    wait_sim_order(gateway, api.test_client_id, order_id)
    status = run_in_thread(api.get_order_status, order_id)
    assert status["id"] == order_id
    # Seed bug: cancel_order held a non-reentrant lock while the status handler took it.
    assert run_in_thread(api.cancel_order, order_id, timeout=8.0) is True
    wait_until(lambda: run_in_thread(api.get_order_status, order_id)["status"] == "Cancelled",
               what="Cancelled")


def test_cancel_while_status_events_stream(gateway: Any, api: Any) -> None:
    """Cancel many resting orders back to back: each cancel returns, none deadlocks."""
    ids = [api.place_order("AAPL", "LONG", 1, bull_call(gateway, expiry_index=i % 4), "LIMIT",
                           NOT_MARKETABLE) for i in range(4)]
    for oid in ids:
        wait_sim_order(gateway, api.test_client_id, oid)
    results = [run_in_thread(api.cancel_order, oid, timeout=8.0) for oid in ids]
    assert results == [True] * 4
    for oid in ids:
        wait_until(lambda oid=oid: sim_status(gateway, api.test_client_id, oid) == "Cancelled",
                   what=f"order {oid} Cancelled at the gateway")


def test_orders_total_metric_counts_placements(gateway: Any, api: Any) -> None:
    before = metric_value(api, "ib_orders_total") or 0.0
    oid = api.place_order("AAPL", "LONG", 1, bull_call(gateway), "LIMIT", NOT_MARKETABLE)
    api.place_order("AAPL", "LONG", 1, bear_put(gateway), "MARKET")
    after = metric_value(api, "ib_orders_total")
    assert after is not None and after - before >= 2
    api.cancel_order(oid)
    assert sim_order(gateway, api.test_client_id, oid) is not None


@pytest.mark.allow_ib_errors(161, 10147)
def test_cancel_racing_a_fill_returns_and_the_fill_wins(gateway: Any, api: Any) -> None:
    """Cancel sent while the gateway fills the order: cancel_order answers (True: sent, or
    False: already final) without hanging, and the order ends Filled everywhere."""
    order_id = api.place_order("AAPL", "LONG", 1, bear_put(gateway, expiry_index=3), "MARKET")
    cancels_before = _cancel_requests(gateway, api.test_client_id)
    result = run_in_thread(api.cancel_order, order_id, timeout=8.0)  # answers, never hangs
    round_trip(api)
    # True exactly when a cancel was sent; False when the adapter already knew it was final
    assert result is (_cancel_requests(gateway, api.test_client_id) > cancels_before)
    wait_until(lambda: api.get_order_status(order_id)["status"] == "Filled", what="Filled")
    assert sim_status(gateway, api.test_client_id, order_id) == "Filled"
    assert api.cancel_order(order_id) is False


def test_the_placement_wait_listens_to_order_statuses_only_while_it_waits(
        gateway: Any, api: Any) -> None:
    """Every orderStatus of the session passes through ``orderStatusEvent``'s slots: the
    client's own slot (which ends ``IBKRClient.place_order``'s wait for the gateway's answer)
    is there while a placement waits, and gone once it has its answer."""
    from src.brokers.compat import LimitOrder, Stock

    client, event = api.client, api.ib.orderStatusEvent
    idle = client.loop.call(lambda: len(event))
    during: list[int] = []

    def spy(trade: Any) -> None:  # runs on the loop thread, inside the placement's wait
        during.append(len(event))

    client.loop.call(lambda: event.connect(spy))
    try:
        result = client.place_order(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
        assert result.status == "Submitted"  # answered, not waited out
        assert during and during[0] == idle + 2  # the spy and the placement's slot
    finally:
        client.loop.call(lambda: event.disconnect(spy))
    assert client.loop.call(lambda: len(event)) == idle  # nobody waits: no slot
