"""State that must follow the gateway: live quotes, chains centred on the moving price, account
values after fills, orders across a reconnect; plus client-id clashes, read-only, idempotent refs.

This module moves prices (``gateway.set_price``), so it has its own gateway (module scope).
"""

from __future__ import annotations

from typing import Any

import pytest
from integ_support import (
    bear_put,
    bull_call,
    round_trip,
    sim_status,
    wait_sim_order,
    wait_until,
)
from model_support import assert_true_to_model, gateway_inputs

from src.brokers.errors import ReadOnlyViolation

NOT_MARKETABLE = 0.05


def _placed(gw: Any, client_id: int) -> int:
    return sum(1 for cid, mid, _ in gw.requests if cid == client_id and mid == 3)


def test_quotes_follow_the_market_not_a_cache(gateway: Any, api: Any) -> None:
    first = api.get_market_data("MSFT")
    assert "error" not in first
    target = round(first["last"] * 1.10, 2)
    gateway.set_price("MSFT", target)
    moved = wait_until(lambda: (d := api.get_market_data("MSFT"))["last"] > first["last"] * 1.05
                       and d, timeout=5.0, what="MSFT quote to follow the +10% move")
    assert moved["last"] == pytest.approx(target, rel=0.01)
    assert moved["bid"] < moved["ask"]
    assert moved["high"] >= moved["last"]


def test_chain_is_centred_on_the_current_price(gateway: Any, api: Any) -> None:
    chain = gateway.call(gateway.market.chain, "AAPL")
    strikes = list(chain.strikes)
    original = gateway.call(gateway.market.underlying_price, "AAPL")
    target = strikes[len(strikes) // 2 + 4]  # four strikes up from the centre
    gateway.set_price("AAPL", target + 0.3)
    try:
        wait_until(lambda: abs(api.get_market_data("AAPL")["last"] - target) < 2.0,
                   what="AAPL quote at the new price")
        options = api.get_option_chain("AAPL")
        assert len(options) == 48
        ks = sorted({o.strike for o in options})
        assert target in ks
        assert min(ks) >= target - 15 and max(ks) <= target + 15, ks
        calls = [o for o in options if o.option_type == "call" and o.strike == target]
        assert calls
        for o in calls:  # priced off the moved spot: the kernel's greeks within its range
            assert_true_to_model(o, **gateway_inputs(gateway, o))
    finally:
        gateway.set_price("AAPL", original)


def test_account_values_follow_fills(gateway: Any, api: Any) -> None:
    before = api.get_account_summary()
    assert "error" not in before
    order_id = api.place_order("AAPL", "LONG", 2, bear_put(gateway), "MARKET")
    wait_until(lambda: api.get_order_status(order_id).get("status") == "Filled", what="Filled")
    after = wait_until(
        lambda: (s := api.get_account_summary())["cash_balance"] != before["cash_balance"]
        and s["gross_position_value"] != before["gross_position_value"] and s,
        what="cash and gross position value to change after the fill")
    assert after["cash_balance"] < before["cash_balance"]  # a debit spread costs cash
    assert after["gross_position_value"] > 0


def test_orders_survive_a_reconnect(gateway: Any, api: Any) -> None:
    order_id = api.place_order("AAPL", "LONG", 1, bull_call(gateway), "LIMIT", NOT_MARKETABLE)
    wait_sim_order(gateway, api.test_client_id, order_id)
    api.disconnect()
    assert api.connect() is True
    status = wait_until(lambda: (s := api.get_order_status(order_id)).get("status") in
                        ("PreSubmitted", "Submitted") and s, what="order still working")
    assert status["spread_type"] == "BULL_CALL"
    assert api.cancel_order(order_id) is True
    wait_until(lambda: api.get_order_status(order_id)["status"] == "Cancelled", what="Cancelled")
    assert sim_status(gateway, api.test_client_id, order_id) == "Cancelled"
    # New ids never collide with the ones used before the reconnect.
    new_id = api.place_order("AAPL", "LONG", 1, bull_call(gateway), "LIMIT", NOT_MARKETABLE)
    assert int(new_id) > int(order_id)
    assert api.cancel_order(new_id) is True


@pytest.mark.allow_ib_errors(326, patterns=(r"API connection failed", r"already in use"))
def test_client_id_in_use_fails_promptly(make_api: Any, api: Any) -> None:
    clash = make_api(connect=False, IBKR_CLIENT_ID=api.test_client_id)
    assert clash.connect() is False
    # ended on the gateway's error 326, not on the connect timeout
    assert getattr(clash.last_error, "code", None) == 326, repr(clash.last_error)
    assert clash.connected is False
    # The first adapter is untouched.
    assert api.connected is True
    assert "error" not in api.get_market_data("AAPL")


def test_read_only_adapter_refuses_orders_and_sends_nothing(
        gateway: Any, make_api: Any) -> None:
    api = make_api(IBKR_READ_ONLY=True)
    with pytest.raises(ReadOnlyViolation, match="read"):
        api.place_order("AAPL", "LONG", 1, bull_call(gateway), "LIMIT", NOT_MARKETABLE)
    round_trip(api)
    assert _placed(gateway, api.test_client_id) == 0
    assert "error" not in api.get_market_data("AAPL")  # reads still work


def test_order_ref_makes_placement_idempotent(gateway: Any, api: Any) -> None:
    spread = bull_call(gateway, expiry_index=2)
    first = api.place_order("AAPL", "LONG", 1, spread, "LIMIT", NOT_MARKETABLE,
                            order_ref="idem-1")
    again = api.place_order("AAPL", "LONG", 1, spread, "LIMIT", NOT_MARKETABLE,
                            order_ref="idem-1")
    assert again == first
    assert _placed(gateway, api.test_client_id) == 1
    assert api.cancel_order(first) is True


def test_filled_order_keeps_exactly_its_fills_across_a_reconnect(gateway: Any, api: Any) -> None:
    order_id = api.place_order("AAPL", "LONG", 1, bear_put(gateway, expiry_index=1), "MARKET")
    before = wait_until(lambda: (s := api.get_order_status(order_id))["status"] == "Filled"
                        and len(s["commissions"]) == len(s["executions"]) and s,
                        what="Filled with every commission")
    api.disconnect()
    assert api.connect() is True
    # ib_insync replays executions at connect: they must not be counted twice.
    round_trip(api)
    after = api.get_order_status(order_id)
    assert after["status"] == "Filled"
    assert after["filled"] == before["filled"] == 1
    assert sorted(e["execution_id"] for e in after["executions"]) == \
        sorted(e["execution_id"] for e in before["executions"])
    assert sorted(c["execution_id"] for c in after["commissions"]) == \
        sorted(c["execution_id"] for c in before["commissions"])
    assert after["filled_price"] == pytest.approx(before["filled_price"])


@pytest.mark.allow_ib_errors(200)
def test_spread_with_an_unlisted_leg_is_refused_promptly(gateway: Any, api: Any) -> None:
    from dataclasses import replace

    spread = bull_call(gateway)
    bad = replace(spread, short_leg=replace(spread.short_leg, strike=spread.short_leg.strike + 1.0),
                  expiration=None)
    with pytest.raises(RuntimeError, match=r"^Order placement failed: ") as caught:
        api.place_order("AAPL", "LONG", 1, bad, "LIMIT", NOT_MARKETABLE)
    assert "timed out" not in str(caught.value)  # the gateway's answer, not the timeout
    round_trip(api)
    assert _placed(gateway, api.test_client_id) == 0  # nothing reached the order book


def test_two_clients_same_order_ids_stay_separate(gateway: Any, make_api: Any) -> None:
    """Order ids are per client: two adapters may both own order "N"; each sees and cancels
    only its own."""
    a, b = make_api(), make_api()
    spread = bull_call(gateway, expiry_index=3)
    ids_a = [a.place_order("AAPL", "LONG", 1, spread, "LIMIT", NOT_MARKETABLE) for _ in range(2)]
    ids_b = [b.place_order("AAPL", "LONG", 2, spread, "LIMIT", NOT_MARKETABLE) for _ in range(2)]
    for oid in ids_a:
        wait_sim_order(gateway, a.test_client_id, oid)
        assert a.get_order_status(oid)["contracts"] == 1
    for oid in ids_b:
        wait_sim_order(gateway, b.test_client_id, oid)
        assert b.get_order_status(oid)["contracts"] == 2
    shared = set(ids_a) & set(ids_b)
    victim = next(iter(shared)) if shared else ids_b[0]
    assert b.cancel_order(victim) is True
    wait_until(lambda: sim_status(gateway, b.test_client_id, victim) == "Cancelled",
               what="B's order cancelled")
    if victim in ids_a:
        round_trip(a)  # any (wrong) status the gateway sent A has arrived
        assert sim_status(gateway, a.test_client_id, victim) in ("PreSubmitted", "Submitted")
        assert a.get_order_status(victim)["status"] in ("PreSubmitted", "Submitted")
    for api, ids in ((a, ids_a), (b, ids_b)):
        for oid in ids:
            if api.get_order_status(oid)["status"] not in ("Cancelled",):
                assert api.cancel_order(oid) is True


def _requests_of(gw: Any, client_id: int) -> int:
    return sum(1 for cid, _, _ in gw.requests if cid == client_id)


def test_disconnect_while_a_chain_is_in_flight_ends_it_promptly(make_api: Any,
                                                                 gateway: Any) -> None:
    import threading

    api = make_api(IBKR_REQUEST_TIMEOUT=10.0)
    box: dict[str, Any] = {}

    def chain() -> None:
        box["result"] = api.get_option_chain("SPY")

    t = threading.Thread(target=chain, daemon=True)
    sent = _requests_of(gateway, api.test_client_id)
    t.start()
    wait_until(lambda: _requests_of(gateway, api.test_client_id) > sent + 2,
               what="the chain in flight at the gateway")
    api.disconnect()
    t.join(8.0)
    # ib_insync 0.9.86's own disconnect() leaves in-flight request futures pending (only a
    # peer close ends them): the caller would sit out IBKR_REQUEST_TIMEOUT (10 s here).
    assert not t.is_alive(), "get_option_chain kept waiting after disconnect"
    assert isinstance(box["result"], list)  # [] or whatever arrived in time; never raises
