"""Steps of partial_fills.feature: a gateway that fills in parts, out of order, with corrections
and late commission reports (``SimulatedGateway.set_fill_rules``), driven step by step."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from resilience_support import (
    CROSSING_BUY,
    make_config,
    make_spread,
    run_with_timeout,
    wait_for,
)

from src.app.executor import TradeExecutor
from src.app.signals import Signal
from src.brokers.base import FINAL_STATUSES

pytestmark = pytest.mark.integration

scenarios("partial_fills.feature")

STILL = 3600.0  # step_seconds: the market moves only when a step says so


# ----------------------------------------------------------------------------- views


def gateway_view(ctx: SimpleNamespace, order_id: str) -> dict[str, Any]:
    """The gateway's order ``order_id`` of the adapter's client and its current executions."""

    def read() -> dict[str, Any]:
        engine = ctx.gw.engine
        perm = engine._by_key[(ctx.client_id, int(order_id))]
        o = engine.orders[perm]
        fills = [f for f in engine.fills if f.perm_id == perm]
        return {"status": o.status, "filled": o.filled, "remaining": o.remaining,
                "avg": o.avg_fill_price, "commission": o.commission,
                "exec": {f.exec_id: (f.shares, round(f.price, 6), f.contract.sec_type)
                         for f in fills},
                "commissions": {f.exec_id: f.commission for f in fills}}

    return ctx.gw.call(read)


def record_of(ctx: SimpleNamespace, order_id: str) -> dict[str, Any]:
    return run_with_timeout(lambda: ctx.api.get_order_status(order_id), 10, "get_order_status")


def assert_agrees(ctx: SimpleNamespace, order_id: str) -> None:
    """Wait until the record shows the gateway's figures for the order (fails at the deadline
    with the last difference)."""

    def same() -> bool:
        gw, rec = gateway_view(ctx, order_id), record_of(ctx, order_id)
        assert rec["status"] == gw["status"], (rec["status"], gw["status"])
        assert rec["filled"] == gw["filled"], ("filled", rec["filled"], gw["filled"])
        assert rec["remaining"] == gw["remaining"], ("remaining", rec["remaining"], gw)
        assert rec["filled_price"] == pytest.approx(gw["avg"], abs=1e-6), (
            "filled_price", rec["filled_price"], gw["avg"])
        rows = {e["execution_id"]: (e["shares"], round(e["price"], 6), e["sec_type"])
                for e in rec["executions"]}
        assert rows == gw["exec"], ("executions", rows, gw["exec"])
        assert rec.get("commission") == pytest.approx(gw["commission"], abs=1e-6), (
            "commission", rec.get("commission"), gw["commission"])
        assert rec.get("fills_settled") == gw["filled"], ("settled", rec.get("fills_settled"))
        assert rec.get("commission_pending") == 0, rec.get("commission_pending")
        return True

    wait_for(same, 5, f"order {order_id}'s record to agree with the gateway")


# ----------------------------------------------------------------------------- givens


@given("a simulated IB gateway that moves only when stepped")
def still_gateway(ctx: SimpleNamespace, gateways: Any) -> None:
    ctx.gw = gateways(step_seconds=STILL)


@given(parsers.parse("the gateway fills in parts of at most {lots:d} lots"))
def parts(ctx: SimpleNamespace, lots: int) -> None:
    ctx.gw.set_fill_rules(partial=True, max_slice=lots)


@given("the gateway sends a fill made at placement before the order's openOrder")
def exec_first(ctx: SimpleNamespace) -> None:
    ctx.gw.set_fill_rules(exec_before_open_order=True)


@given("the gateway corrects the first part of every order")
def corrections(ctx: SimpleNamespace) -> None:
    ctx.gw.set_fill_rules(corrections=True)


@given("the gateway sends commission reports one step late")
def late_reports(ctx: SimpleNamespace) -> None:
    ctx.gw.set_fill_rules(late_commissions=True)


@given(parsers.parse("a trade executor with partial_fill_policy {policy} and a {seconds:d} "
                     "second timeout"))
def an_executor(ctx: SimpleNamespace, policy: str, seconds: int) -> None:
    config = make_config(ctx.gw, ctx.client_id, PARTIAL_FILL_POLICY=policy,
                         PARTIAL_FILL_TIMEOUT=float(seconds))
    ctx.extra["executor"] = TradeExecutor(config, ctx.api, clock=ctx.gw.clock)


# ----------------------------------------------------------------------------- whens


@when(parsers.parse("I place a marketable limit order for {count:d} AAPL bull call spreads"))
def place_marketable(ctx: SimpleNamespace, count: int) -> None:
    spread = make_spread(ctx.gw)
    oid = run_with_timeout(
        lambda: ctx.api.place_order("AAPL", "LONG", count, spread, "LIMIT", CROSSING_BUY,
                                    order_ref=f"parts-{time.monotonic_ns()}"),
        15, "place_order")
    ctx.extra["order"] = oid


@when("the gateway steps once")
def step_once(ctx: SimpleNamespace) -> None:
    ctx.gw.step()


@when(parsers.parse("{seconds:d} seconds pass"))
def seconds_pass(ctx: SimpleNamespace, seconds: int) -> None:
    ctx.gw.clock.advance(timedelta(seconds=seconds))  # the adapter's clock too


@when(parsers.parse("the executor trades a signal for {count:d} AAPL contracts at a "
                    "marketable limit"))
def executor_trades(ctx: SimpleNamespace, count: int) -> None:
    executor = ctx.extra["executor"]
    signal = Signal("AAPL", "LONG", count, "LIMIT", limit_price=CROSSING_BUY)
    trade = run_with_timeout(lambda: executor.execute(signal), 60, "execute")
    assert trade.status == "PLACED", (trade.status, trade.error)
    ctx.extra["trade"], ctx.extra["order"] = trade, trade.order_id
    assert_partly_filled(ctx)


def assert_partly_filled(ctx: SimpleNamespace) -> None:
    gw = gateway_view(ctx, ctx.extra["order"])
    assert 0 < gw["filled"] < 5 and gw["status"] == "Submitted", gw
    wait_for(lambda: record_of(ctx, ctx.extra["order"])["filled"] == gw["filled"], 5,
             "the first part to reach the record")


@when("the executor follows its order")
def executor_follows(ctx: SimpleNamespace) -> None:
    run_with_timeout(ctx.extra["executor"].process_queued_trades, 30, "process_queued_trades")


# ----------------------------------------------------------------------------- thens


@then("after every part until it is filled the order record agrees with the gateway")
def agrees_after_every_part(ctx: SimpleNamespace) -> None:
    oid = ctx.extra["order"]
    for _ in range(30):
        assert_agrees(ctx, oid)
        if gateway_view(ctx, oid)["status"] == "Filled":
            return
        ctx.gw.step()
    raise AssertionError(f"order {oid} not filled after 30 steps: {gateway_view(ctx, oid)}")


@then(parsers.parse("the order filled in at least {count:d} parts"))
def filled_in_parts(ctx: SimpleNamespace, count: int) -> None:
    bag = [e for e in gateway_view(ctx, ctx.extra["order"])["exec"].values() if e[2] == "BAG"]
    assert len(bag) >= count, bag


@then("the order record has every execution and commission report of the gateway's order")
def every_report(ctx: SimpleNamespace) -> None:
    oid = ctx.extra["order"]

    def complete() -> bool:
        gw, rec = gateway_view(ctx, oid), record_of(ctx, oid)
        assert {e["execution_id"] for e in rec["executions"]} == set(gw["exec"])
        reports = {c["execution_id"]: c["commission"] for c in rec["commissions"]}
        assert reports == pytest.approx(gw["commissions"]), (reports, gw["commissions"])
        assert rec.get("commission") == pytest.approx(gw["commission"], abs=1e-6)
        assert rec.get("commission_pending") == 0
        return True

    wait_for(complete, 5, f"order {oid}'s executions and commission reports")


@then("the order record's executions are the gateway's, the corrected one replaced")
def corrected(ctx: SimpleNamespace) -> None:
    oid = ctx.extra["order"]

    def replaced() -> bool:
        gw, rec = gateway_view(ctx, oid), record_of(ctx, oid)
        fixes = [e for e in rec["executions"] if e.get("corrects")]
        assert fixes and all(e["execution_id"].endswith(".02") and
                             e["corrects"] == e["execution_id"][:-3] + ".01" for e in fixes), \
            rec["executions"]
        assert {e["execution_id"]: e["price"] for e in rec["executions"]} == \
            pytest.approx({k: v[1] for k, v in gw["exec"].items()})
        assert not any(c["execution_id"] in {e["corrects"] for e in fixes}
                       for c in rec["commissions"])
        return True

    wait_for(replaced, 5, f"order {oid}'s corrected executions")


@then(parsers.parse("the order is filled with {settled:d} lots settled and {pending:d} "
                    "commission reports pending"))
def filled_unsettled(ctx: SimpleNamespace, settled: int, pending: int) -> None:
    oid = ctx.extra["order"]

    def state() -> bool:
        rec = record_of(ctx, oid)
        assert rec["status"] == "Filled" and len(rec["executions"]) == 3, rec
        assert (rec.get("fills_settled"), rec.get("commission_pending")) == (settled, pending)
        return True

    wait_for(state, 5, f"order {oid} filled, its commission reports not yet in")


@then("the order has 2 lots settled, no commission pending and no commission yet")
def settled_after_wait(ctx: SimpleNamespace) -> None:
    rec = record_of(ctx, ctx.extra["order"])
    assert (rec.get("fills_settled"), rec.get("commission_pending")) == (2.0, 0), rec
    assert rec.get("commission") is None and rec["commissions"] == []


@then(parsers.parse("the executor's trade ends {final} with the gateway's filled quantity "
                    "{which}"))
def trade_ends(ctx: SimpleNamespace, final: str, which: str) -> None:
    trade, oid = ctx.extra["trade"], ctx.extra["order"]
    for _ in range(30):
        if trade.status in FINAL_STATUSES:
            break
        ctx.gw.step()
        wait_for(lambda: record_of(ctx, oid)["filled"] == gateway_view(ctx, oid)["filled"],
                 5, "the record to follow the gateway")
        executor_follows(ctx)
    gw = gateway_view(ctx, oid)
    assert trade.status == final == gw["status"], (trade.status, gw)
    assert trade.order["filled"] == gw["filled"], (trade.order, gw)
    assert (gw["filled"] == 5) if which == "of all 5" else (0 < gw["filled"] < 5), gw
