"""Steps of what_if_margin.feature: IB's what-if through the adapter, and the risk manager's
margin check in front of the executor (src/app/risk.py ``check_margin``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pytest_bdd import given, parsers, scenarios, then, when
from resilience_support import (
    PLACE_ORDER,
    engine_orders,
    literal,
    make_spread,
    mark_requests,
    new_requests,
    requests_matching,
    round_trip,
    run_with_timeout,
)

from src.app.config import Config
from src.app.executor import TradeExecutor
from src.app.risk import RiskManager
from src.app.signals import Signal
from src.simulator import order_codec
from src.simulator.orders import OrderEngine

scenarios("what_if_margin.feature")

SERVER_VERSION = 176  # what the simulator negotiates with both libraries
FIGURES = {"init_margin": "init", "maint_margin": "maint", "equity_with_loan": "ewl"}


def _place_requests(ctx: SimpleNamespace) -> list[order_codec.OrderRequest]:
    return [order_codec.decode_place_order(list(r[2]), SERVER_VERSION)
            for r in requests_matching(new_requests(ctx), PLACE_ORDER, ctx.client_id)]


@given("a simulated IB gateway with a still market")
def still_gateway(ctx: SimpleNamespace, gateways: Any) -> None:
    ctx.gw = gateways(step_seconds=3600.0)  # no random-walk step: prices hold still


@given(parsers.parse("a simulated IB gateway whose account has {cash:g} in cash"))
def poor_gateway(ctx: SimpleNamespace, gateways: Any, cash: float) -> None:
    ctx.gw = gateways(engine_factory=lambda market, accounts: OrderEngine(
        market, accounts, starting_cash=cash))


@given(parsers.parse("a risk manager and executor with RISK_CHECK_MARGIN={value}"))
def risk_and_executor(ctx: SimpleNamespace, value: str) -> None:
    config = Config().replace(RISK_CHECK_MARGIN=literal(value), MAX_OPEN_ORDERS=100)
    ctx.extra["risk"] = risk = RiskManager(config, ctx.api)
    ctx.extra["executor"] = TradeExecutor(config, ctx.api, risk)


@when(parsers.parse("I ask the adapter for the what-if of {count:d} AAPL bull call spreads at "
                    "{price:g}"))
def ask_what_if(ctx: SimpleNamespace, count: int, price: float) -> None:
    mark_requests(ctx)
    spread = make_spread(ctx.gw)
    ctx.outcome = run_with_timeout(
        lambda: ctx.api.what_if_order("AAPL", "LONG", count, spread, "LIMIT", price), 15,
        "what_if_order")


@when(parsers.parse("the executor handles a signal for {count:d} AAPL LONG spread at {price:g}"))
def executor_handles(ctx: SimpleNamespace, count: int, price: float) -> None:
    mark_requests(ctx)
    signal = Signal(symbol="AAPL", direction="LONG", contracts=count, limit_price=price)
    ctx.outcome = run_with_timeout(lambda: ctx.extra["executor"].execute(signal), 30, "execute")


@then("its margin and commission figures equal the gateway's for that order")
def figures_equal(ctx: SimpleNamespace) -> None:
    answer = ctx.outcome
    assert "error" not in answer, answer
    sent = _place_requests(ctx)
    assert len(sent) == 1 and sent[0].what_if, f"expected one what-if order, got {sent}"

    def expected() -> Any:
        req = sent[0]
        assert ctx.gw.engine._validate(req) is None
        return ctx.gw.engine.what_if_figures(req)

    figures = ctx.gw.call(expected)
    assert figures is not None, "the gateway has no price for the order"
    margin, commission = figures
    for name, short in FIGURES.items():
        for when_ in ("before", "change", "after"):
            theirs = float(margin[f"{short}{when_.capitalize()}"])
            assert answer[f"{name}_{when_}"] == theirs, (name, when_, answer, margin)
    assert answer["init_margin_change"] > 0, answer  # a short leg takes margin
    for key in ("commission", "min_commission", "max_commission"):
        assert answer[key] == commission, (key, answer, commission)
    assert answer["commission_currency"] == "USD"


@then("the gateway holds no order")
def no_order(ctx: SimpleNamespace) -> None:
    round_trip(ctx)
    assert engine_orders(ctx.gw, ctx.client_id) == []


@then("the trade failed, the reason naming the initial margin change and the available funds")
def trade_refused(ctx: SimpleNamespace) -> None:
    record = ctx.outcome
    assert record.status == "FAILED", (record.status, record.error)
    assert record.order_id is None
    reason = record.error or ""
    assert "initial margin change" in reason and "exceeds available funds" in reason, reason
    assert "risk.check_margin" in reason, reason


@then("the gateway received a what-if order and no order without whatIf")
def only_what_if(ctx: SimpleNamespace) -> None:
    round_trip(ctx)
    sent = _place_requests(ctx)
    assert sent, "the gateway received no placeOrder at all (no what-if was asked)"
    assert all(r.what_if for r in sent), f"an order was placed: {sent}"


@then("the trade is placed and the gateway holds its order")
def trade_placed(ctx: SimpleNamespace) -> None:
    record = ctx.outcome
    assert record.status == "PLACED", (record.status, record.error)
    round_trip(ctx)
    at_gw = {o.order_id: o for o in engine_orders(ctx.gw, ctx.client_id)}
    assert int(record.order_id) in at_gw, (record.order_id, at_gw)


@then("the gateway received a what-if order before the order")
def what_if_first(ctx: SimpleNamespace) -> None:
    flags = [r.what_if for r in _place_requests(ctx)]
    assert flags == [True, False], f"placeOrder whatIf flags in order: {flags}"


@then("the gateway received no what-if order")
def no_what_if(ctx: SimpleNamespace) -> None:
    flags = [r.what_if for r in _place_requests(ctx)]
    assert flags == [False], f"placeOrder whatIf flags in order: {flags}"
