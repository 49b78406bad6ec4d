"""Pure translation functions: tables, NaN handling, the SHORT leg reversal."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pytest
import stubs

from src.brokers import translate
from src.brokers.base import ACCOUNT_FIELDS, MARKET_DATA_FIELDS, ORDER_FIELDS, POSITION_FIELDS
from src.brokers.compat import Contract, OrderStatus, PortfolioItem, Position, Ticker

NOW = datetime(2026, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("spread", "direction", "expected"),
    [
        (stubs.aapl_bull_call(), "LONG", [(150.0, "C", "BUY"), (155.0, "C", "SELL")]),
        (stubs.aapl_bull_call(), "SHORT", [(150.0, "C", "SELL"), (155.0, "C", "BUY")]),
        (stubs.aapl_bear_put(), "LONG", [(155.0, "P", "BUY"), (150.0, "P", "SELL")]),
        (stubs.aapl_bear_put(), "SHORT", [(155.0, "P", "SELL"), (150.0, "P", "BUY")]),
    ],
)
def test_leg_specs(spread, direction, expected) -> None:  # type: ignore[no-untyped-def]
    legs = translate.leg_specs(spread, direction)
    assert [(leg.strike, leg.right, leg.action) for leg in legs] == expected
    assert {leg.expiry for leg in legs} == {spread.expiration.strftime("%Y%m%d")}


def test_short_keeps_bag_action_buy_and_flips_only_legs() -> None:
    legs = translate.leg_specs(stubs.aapl_bull_call(), "SHORT")
    bag = translate.build_bag("AAPL", zip(legs, [11, 22], strict=True))
    order = translate.build_order("LIMIT", 2, 1.5, "ref-1", "DU1")
    assert [(c.conId, c.action, c.ratio, c.exchange) for c in bag.comboLegs] == [
        (11, "SELL", 1, "SMART"), (22, "BUY", 1, "SMART")]
    assert (bag.secType, bag.currency, bag.exchange) == ("BAG", "USD", "SMART")
    assert (order.action, order.totalQuantity, order.lmtPrice, order.orderType) == (
        "BUY", 2, 1.5, "LMT")
    assert (order.orderRef, order.account) == ("ref-1", "DU1")
    market = translate.build_order("MARKET", 1, None, "r", "DU1")
    assert (market.orderType, market.action) == ("MKT", "BUY")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, 1.5), (0, 0.0), (math.nan, None), (-1, None), (-1.0, None), (None, None),
     ("1.0", None), (True, None), (1.7976931348623157e308, None), (math.inf, None)],
)
def test_clean(value, expected) -> None:  # type: ignore[no-untyped-def]
    assert translate.clean(value) == expected


def test_finite_keeps_minus_one() -> None:
    assert translate.finite(-1.0) == -1.0 and translate.finite(math.nan) is None


def test_market_data_from_ticker_with_gaps() -> None:
    data = translate.market_data("AAPL", stubs.aapl_ticker(bid=-1.0, high=math.nan), NOW)
    assert set(MARKET_DATA_FIELDS) == set(data)
    assert data["bid"] is None and data["high"] is None
    assert (data["ask"], data["last"], data["timestamp"]) == (150.30, 150.25, NOW.isoformat())
    assert translate.has_quote(stubs.aapl_ticker())
    assert not translate.has_quote(stubs.nan_ticker())


def test_underlying_price_fallbacks() -> None:
    assert translate.underlying_price(stubs.aapl_ticker()) == 150.25
    assert translate.underlying_price(stubs.aapl_ticker(last=math.nan)) == pytest.approx(150.25)
    assert translate.underlying_price(
        stubs.aapl_ticker(last=math.nan, bid=-1.0, close=149.0)) == 149.0
    assert translate.underlying_price(Ticker()) is None


def test_option_from_ticker_without_rho_and_with_nan_quotes() -> None:
    contract = stubs.option_contract("20300117", 150.0, "P")
    ticker = stubs.option_ticker(contract, bid=math.nan, ask=-1.0, last=2.0, volume=math.nan,
                                 modelGreeks=stubs.greeks(delta=-1.0, gamma=math.nan))
    option = translate.option_from_ticker(ticker, contract, "AAPL")
    assert (option.option_type, option.strike, option.expiration) == (
        "put", 150.0, date(2030, 1, 17))
    assert (option.bid, option.ask, option.last, option.volume) == (0.0, 0.0, 2.0, 0)
    assert option.delta == -1.0 and option.gamma == 0.0 and option.rho == 0.0
    assert option.implied_volatility == 0.25 and option.symbol == contract.localSymbol


def test_option_without_greeks_or_local_symbol() -> None:
    contract = stubs.option_contract("20300117", 150.0, "C")
    contract.localSymbol = ""
    option = translate.option_from_ticker(Ticker(contract=contract), contract, "AAPL")
    assert option.symbol == "AAPL 300117C150" and option.delta == 0.0 and option.bid == 0.0


def test_nearest_strikes_and_expirations() -> None:
    assert translate.nearest_strikes([140, 145, 150, 155, 160, math.nan], 151, 3) == [
        145.0, 150.0, 155.0]
    assert translate.nearest_expirations(
        ["20200101", "20300101", "20290101", "bad", "20310101"], date(2026, 1, 1), 2) == [
        "20290101", "20300101"]


def test_account_summary_table() -> None:
    summary = translate.account_summary(stubs.account_values(), "DU12345", NOW)
    assert set(ACCOUNT_FIELDS) == set(summary)
    assert summary["cash_balance"] == 100000.0  # USD beats BASE
    assert summary["net_liquidation"] == 151000.5  # EUR row ignored
    assert summary["day_trades_remaining"] == 3.0
    assert summary["available_funds"] is None  # not a number
    assert summary["gross_position_value"] is None  # absent


def test_position_key_and_rows() -> None:
    stock = stubs.stock_contract("AAPL", 1)
    opt = stubs.option_contract("20300117", 150.0, "C")
    assert translate.position_key(stock) == "AAPL"
    assert translate.position_key(opt) == opt.localSymbol
    assert translate.position_key(Contract(symbol="SPY", secType="OPT")) == "SPY"
    row = translate.position_row(Position("DU1", stock, 10.0, 100.0))
    assert set(POSITION_FIELDS) == set(row)
    assert (row["quantity"], row["avg_price"], row["market_price"], row["account"]) == (
        10.0, 100.0, 0.0, "DU1")
    item = PortfolioItem(stock, 10.0, 110.0, 1100.0, 100.0, -1.0, 5.0, "DU1")
    prow = translate.position_row(item, row)
    assert (prow["market_price"], prow["market_value"], prow["unrealized_pnl"],
            prow["realized_pnl"]) == (110.0, 1100.0, -1.0, 5.0)


def test_positions_table_merges_and_drops_zeros() -> None:
    pos = stubs.positions(("AAPL", 100, 150.0), ("MSFT", 0, 1.0), ("TSLA", -1, 200.0))
    port = [stubs.portfolio_item("AAPL", 100, 150.0, 155.0)]
    table = translate.positions_table(pos, port, previous={"AAPL": {"trades": ["t1"]}})
    assert set(table) == {"AAPL", "TSLA"}
    assert table["AAPL"]["market_price"] == 155.0 and table["AAPL"]["trades"] == ["t1"]
    assert table["TSLA"]["quantity"] == -1


def test_order_record_and_status_application() -> None:
    record = translate.order_record(
        order_id="7", symbol="AAPL", direction="LONG", contracts=2,
        spread=stubs.aapl_bull_call(), price_type="LIMIT", limit_price=1.0, order_ref="r",
        legs=[], now=NOW)
    assert set(ORDER_FIELDS) <= set(record)
    assert (record["status"], record["filled"], record["remaining"]) == ("PendingSubmit", 0, 2)
    translate.apply_order_status(record, OrderStatus(status="PendingSubmit"), NOW)
    assert record["remaining"] == 2  # ib_insync's own 0/0 status does not erase quantities
    translate.apply_order_status(
        record, OrderStatus(status="Filled", filled=2, remaining=0, avgFillPrice=1.1,
                            permId=99), NOW)
    assert (record["status"], record["filled"], record["remaining"]) == ("Filled", 2, 0)
    assert (record["filled_price"], record["fill_time"], record["perm_id"]) == (1.1, NOW, 99)
    snap = translate.snapshot(record)
    snap["executions"].append({"x": 1})
    assert record["executions"] == []


def test_execution_and_commission_rows() -> None:
    f = stubs.fill("e1", shares=2, price=3.0)
    assert translate.execution_row(f)["execution_id"] == "e1"
    assert translate.execution_row(f)["sec_type"] == "BAG"
    row = translate.commission_row(stubs.commission_report("e1", 1.3))
    assert row == {"execution_id": "e1", "commission": 1.3, "currency": "USD",
                   "realized_pnl": None}


def test_short_limit_is_a_credit_and_fills_come_back_positive() -> None:
    order = translate.build_order("LIMIT", 1, 1.5, "r", "DU1", "SHORT")
    assert (order.action, order.lmtPrice) == ("BUY", -1.5)
    assert translate.build_order("LIMIT", 1, 1.5, "r", "DU1", "LONG").lmtPrice == 1.5
    record = translate.order_record(
        order_id="1", symbol="AAPL", direction="SHORT", contracts=1,
        spread=stubs.aapl_bull_call(), price_type="LIMIT", limit_price=1.5, order_ref="r",
        legs=[], now=NOW)
    translate.apply_order_status(
        record, OrderStatus(status="Filled", filled=1, remaining=0, avgFillPrice=-1.62), NOW)
    assert record["filled_price"] == 1.62 and record["limit_price"] == 1.5


def test_every_ib_order_status_is_in_the_status_table() -> None:
    """The library's OrderStatus constants (PendingCancel among them) all have a kind, except
    ib_async's own ValidationError / ApiUpdate, which keep the previous status; a cancel in
    flight (PendingCancel) is still working, not final."""
    from src.brokers.compat import MAP_ORDER_STATUS

    lib_statuses = {v for k, v in vars(OrderStatus).items()
                    if isinstance(v, str) and k[:1].isupper() and k == v}
    library_only = {k for k, v in MAP_ORDER_STATUS.items() if v is None}
    assert "PendingCancel" in lib_statuses
    assert lib_statuses - library_only == set(translate.STATUS_KINDS)
    assert "PendingCancel" in translate.WORKING_STATUSES
    assert "PendingCancel" not in translate.TERMINAL_STATUSES | translate.PENDING_STATUSES
    assert {"Filled", "Cancelled", "ApiCancelled", "Inactive"} == translate.TERMINAL_STATUSES
    record: dict[str, Any] = {"status": "Submitted", "filled": 0.0, "remaining": 2.0,
                              "direction": "LONG", "fill_time": None}
    translate.apply_order_status(record, OrderStatus(status="PendingCancel", filled=0,
                                                     remaining=2), NOW)
    assert record["status"] == "PendingCancel"
