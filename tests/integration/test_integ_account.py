"""Account summary and positions that follow the gateway (never a stale cache)."""

from __future__ import annotations

from typing import Any

import pytest
from integ_support import (
    AAPL_CON_ID,
    ACCOUNT,
    MSFT_CON_ID,
    bear_put,
    round_trip,
    run_in_thread,
    wait_until,
)

from src.brokers.base import ACCOUNT_FIELDS, POSITION_FIELDS

# updateAccountValue tags → the summary keys (the contract's mapping).
TAG_TO_KEY = {
    "CashBalance": "cash_balance",
    "NetLiquidation": "net_liquidation",
    "EquityWithLoanValue": "equity_with_loan",
    "InitMarginReq": "initial_margin_req",
    "MaintMarginReq": "maintenance_margin_req",
    "AvailableFunds": "available_funds",
    "ExcessLiquidity": "excess_liquidity",
    "BuyingPower": "buying_power",
    "DayTradesRemaining": "day_trades_remaining",
    "GrossPositionValue": "gross_position_value",
    "TotalCashValue": "total_cash_value",
}


def _inject(gw: Any, con_id: int, qty: float, avg_cost: float) -> None:
    gw.call(gw.engine.inject_position, ACCOUNT, con_id, qty, avg_cost)


def _qty(api: Any, symbol: str) -> float | None:
    row = api.get_positions().get(symbol)
    return None if row is None else float(row["quantity"])


def test_account_summary_has_a_float_for_every_value_the_gateway_sends(
        gateway: Any, api: Any) -> None:
    summary = api.get_account_summary()
    assert "error" not in summary, summary
    assert set(ACCOUNT_FIELDS) <= set(summary), sorted(summary)
    assert summary["account_id"] == ACCOUNT
    assert summary["timestamp"]
    from src.simulator.account import account_value_rows

    # What the gateway's updateAccountValue stream carries: (tag, value, currency) rows.
    rows = gateway.call(lambda: account_value_rows(ACCOUNT, gateway.engine.book.values(ACCOUNT)))
    sent = {tag: value for tag, value, currency in rows if currency in ("USD", "")}
    sent_tags = {tag for tag in sent if tag in TAG_TO_KEY}
    assert sent_tags, f"the gateway sent none of the mapped tags: {sorted(sent)}"
    for tag in sent_tags:
        key = TAG_TO_KEY[tag]
        value = summary[key]
        assert isinstance(value, float), f"{key} = {value!r}"
        assert value == pytest.approx(float(sent[tag]), rel=1e-6, abs=0.01), key
    for tag, key in TAG_TO_KEY.items():
        if tag not in sent:
            assert summary[key] is None, f"{key} should be None, got {summary[key]!r}"
    assert summary["net_liquidation"] > 0


def test_account_summary_from_a_thread_without_event_loop(api: Any) -> None:
    summary = run_in_thread(api.get_account_summary)
    assert "error" not in summary, summary
    assert isinstance(summary["net_liquidation"], float)


def test_positions_follow_the_gateways_position_updates(gateway: Any, api: Any) -> None:
    # Seed bug: get_positions returned the first answer forever.
    _inject(gateway, AAPL_CON_ID, 100, 150.25)
    wait_until(lambda: _qty(api, "AAPL") == 100, what="AAPL 100")
    row = api.get_positions()["AAPL"]
    assert set(POSITION_FIELDS) <= set(row), sorted(row)
    assert row["symbol"] == "AAPL"
    assert row["account"] == ACCOUNT
    assert row["avg_price"] == pytest.approx(150.25)

    _inject(gateway, AAPL_CON_ID, 250, 160.0)
    wait_until(lambda: _qty(api, "AAPL") == 250, what="AAPL 250 after the update")
    assert api.get_positions()["AAPL"]["avg_price"] == pytest.approx(160.0)

    _inject(gateway, MSFT_CON_ID, -10, 400.0)
    wait_until(lambda: _qty(api, "MSFT") == -10, what="MSFT -10")

    _inject(gateway, MSFT_CON_ID, 0, 0.0)
    wait_until(lambda: _qty(api, "MSFT") in (None, 0.0), what="MSFT closed")
    _inject(gateway, AAPL_CON_ID, 0, 0.0)
    wait_until(lambda: _qty(api, "AAPL") in (None, 0.0), what="AAPL closed")


def test_positions_rows_carry_market_values(gateway: Any, api: Any) -> None:
    _inject(gateway, MSFT_CON_ID, 20, 400.0)
    try:
        row = wait_until(lambda: (r := api.get_positions().get("MSFT")) and r["quantity"] == 20
                         and r["market_price"] and r, what="MSFT row with a market price")
        spot = gateway.call(gateway.market.underlying_price, "MSFT")
        assert row["market_price"] == pytest.approx(spot, rel=0.02)
        assert row["market_value"] == pytest.approx(20 * row["market_price"], rel=0.01)
        assert row["unrealized_pnl"] == pytest.approx(
            row["market_value"] - 20 * 400.0, rel=0.01, abs=1.0)
        assert isinstance(row["realized_pnl"], float)
    finally:
        _inject(gateway, MSFT_CON_ID, 0, 0.0)
        wait_until(lambda: _qty(api, "MSFT") in (None, 0.0), what="MSFT closed")


def _local_symbol(gw: Any, spread: Any, leg: Any) -> str:
    found = gw.call(lambda: gw.market.match(
        symbol=spread.symbol, sec_type="OPT", expiry=spread.expiration.strftime("%Y%m%d"),
        strike=leg.strike, right=leg.right))
    return str(found[0].local_symbol).strip()


def test_positions_change_after_a_fill(gateway: Any, api: Any) -> None:
    spread = bear_put(gateway)
    long_key = _local_symbol(gateway, spread, spread.long_leg)
    short_key = _local_symbol(gateway, spread, spread.short_leg)
    before = api.get_positions()
    long_before = float(before.get(long_key, {}).get("quantity", 0.0))
    short_before = float(before.get(short_key, {}).get("quantity", 0.0))

    order_id = api.place_order("AAPL", "LONG", 3, spread, "MARKET")
    wait_until(lambda: api.get_order_status(order_id).get("status") == "Filled", what="Filled")
    # The two legs follow: +3 of the higher put, −3 of the lower put.
    wait_until(lambda: _qty(api, long_key) == long_before + 3, what=f"{long_key} +3")
    wait_until(lambda: _qty(api, short_key) == short_before - 3, what=f"{short_key} -3")
    rows = api.get_positions()
    for key in (long_key, short_key):
        assert rows[key]["account"] == ACCOUNT
        assert set(POSITION_FIELDS) <= set(rows[key])

    # Closing the spread (a SHORT of the same spread) takes the legs back.
    close_id = api.place_order("AAPL", "SHORT", 3, spread, "MARKET")
    wait_until(lambda: api.get_order_status(close_id).get("status") == "Filled", what="Filled")
    wait_until(lambda: _qty(api, long_key) in (None, long_before) and
               _qty(api, short_key) in (None, short_before), what="legs closed")


def test_positions_from_a_thread_and_after_reconnect(gateway: Any, make_api: Any) -> None:
    _inject(gateway, MSFT_CON_ID, 7, 410.0)
    try:
        api = make_api()
        wait_until(lambda: _qty(api, "MSFT") == 7, what="MSFT 7 at connect")
        assert run_in_thread(api.get_positions)["MSFT"]["quantity"] == 7
        api.disconnect()
        assert api.get_positions() == {}
        _inject(gateway, MSFT_CON_ID, 9, 410.0)  # changes while the adapter is away
        assert api.connect() is True
        wait_until(lambda: _qty(api, "MSFT") == 9, what="MSFT 9 after reconnect")
        api.disconnect()
        _inject(gateway, MSFT_CON_ID, 0, 0.0)  # closed while the adapter is away
        assert api.connect() is True
        round_trip(api)
        assert "MSFT" not in api.get_positions(), "a position closed while away came back"
    finally:
        _inject(gateway, MSFT_CON_ID, 0, 0.0)


def test_positions_and_orders_attributes_follow_events(gateway: Any, api: Any) -> None:
    """Host code may read ``api.positions`` / ``api.orders`` directly (under ``api.lock``):
    they follow the gateway's events without any method being called."""
    _inject(gateway, MSFT_CON_ID, 5, 410.0)
    try:
        def msft_qty() -> Any:
            with api.lock:
                row = api.positions.get("MSFT")
                return row and row["quantity"]

        wait_until(lambda: msft_qty() == 5, what="api.positions['MSFT'] == 5")
        order_id = api.place_order("AAPL", "LONG", 1, bear_put(gateway, expiry_index=2), "MARKET")

        def order_status() -> Any:
            with api.lock:
                return api.orders.get(order_id, {}).get("status")

        wait_until(lambda: order_status() == "Filled", what="api.orders[...] Filled")
    finally:
        _inject(gateway, MSFT_CON_ID, 0, 0.0)
    wait_until(lambda: msft_qty() in (None, 0, 0.0), what="MSFT gone from api.positions")
