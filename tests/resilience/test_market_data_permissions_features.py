"""market_data_permissions.feature: IB's market-data refusals (354, 10089, 10090, 10168, 10197)
and delayed data (reqMarketDataType 3: ticks 66-76, 80-83) against the simulated gateway's
per-symbol entitlements (``SimulatedGateway.set_entitlement`` / ``set_competing_session``)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from resilience_support import error_class, round_trip, timed_call, wait_for

pytestmark = pytest.mark.integration

scenarios("market_data_permissions.feature")


# ----------------------------------------------------------------------------- gateway


@given("a simulated IB gateway whose market stands still")
def still_gateway(ctx: SimpleNamespace, gateways: Callable[..., Any]) -> None:
    ctx.gw = gateways(step_seconds=3600.0)  # no random-walk step during the scenario


@given(parsers.re(r"the gateway permits only delayed data for (?P<symbol>\w+)"
                  r"(, refusing live requests with (?P<code>\d+))?$"))
def delayed_only(ctx: SimpleNamespace, symbol: str, code: str | None) -> None:
    ctx.gw.set_entitlement(symbol, "delayed", int(code) if code else None)


@given(parsers.parse("the gateway permits no market data for {symbol}"))
def no_permission(ctx: SimpleNamespace, symbol: str) -> None:
    ctx.gw.set_entitlement(symbol, "none")


@given(parsers.parse("the gateway permits live data for {symbol} but none for its options"))
def no_options(ctx: SimpleNamespace, symbol: str) -> None:
    ctx.gw.set_entitlement(symbol, "live", None, "none")


@when("the gateway starts a competing live session")
def competing_on(ctx: SimpleNamespace) -> None:
    ctx.gw.set_competing_session(True)


@when("the competing live session ends")
def competing_off(ctx: SimpleNamespace) -> None:
    ctx.gw.set_competing_session(False)


def gateway_lines(ctx: SimpleNamespace, sec_type: str | None = None) -> list[Any]:
    """The gateway's registered market-data lines of the adapter's session."""
    md = ctx.gw.runtime.marketdata

    def mine() -> list[Any]:
        return [(k, line.contract.local_symbol if line.contract else "BAG")
                for k, line in md.lines.items()
                if line.session.client_id == ctx.client_id and (
                    sec_type is None or (line.contract and line.contract.sec_type == sec_type))]

    return ctx.gw.call(mine)


# ----------------------------------------------------------------------------- requests


@when(parsers.parse("I request market data for {symbol}"))
def request_quote(ctx: SimpleNamespace, symbol: str) -> None:
    ctx.outcome = timed_call(lambda: ctx.api.get_market_data(symbol), 30, "get_market_data")
    ctx.extra["symbol"] = symbol


@when(parsers.parse("I request the option chain for {symbol}"))
def request_chain(ctx: SimpleNamespace, symbol: str) -> None:
    ctx.outcome = timed_call(lambda: ctx.api.get_option_chain(symbol), 60, "get_option_chain")
    ctx.extra["symbol"] = symbol


def failure_text(ctx: SimpleNamespace) -> str:
    """The error of the last call: the quote's ``error``, or ``last_error`` for an empty chain."""
    out = ctx.outcome
    assert out.error is None, f"the call raised {out.error!r}"
    if isinstance(out.value, dict):
        assert "error" in out.value, f"no error: {out.value}"
        return str(out.value["error"])
    assert out.value == [], f"the chain has {len(out.value)} options, expected an error"
    assert ctx.api.last_error is not None, "the empty chain left no last_error"
    return str(ctx.api.last_error)


# ----------------------------------------------------------------------------- outcomes


@then(parsers.parse('the quote is marked "{kind}"'))
def quote_marked(ctx: SimpleNamespace, kind: str) -> None:
    quote = ctx.outcome.value
    assert ctx.outcome.error is None and isinstance(quote, dict), ctx.outcome
    assert "error" not in quote, quote
    assert quote.get("data_type") == kind, quote


@then(parsers.parse("its prices are the gateway's current quote of {symbol}"))
def prices_are_the_gateways(ctx: SimpleNamespace, symbol: str) -> None:
    market = ctx.gw.market
    con_id = market.stocks[symbol].contract.con_id
    q = ctx.gw.call(market.snapshot, con_id)
    quote = ctx.outcome.value
    assert (quote["bid"], quote["ask"], quote["last"]) == (q.bid, q.ask, q.last), (quote, q)
    assert quote["close"] == q.close and quote["volume"] == q.volume, (quote, q)


@then(parsers.parse('it fails within {seconds:g} seconds naming "{first}" and "{second}"'))
def fails_at_once(ctx: SimpleNamespace, seconds: float, first: str, second: str) -> None:
    text = failure_text(ctx)
    assert first in text and second in text, text
    assert ctx.extra["symbol"] in text, text
    assert ctx.outcome.seconds < seconds, (
        f"took {ctx.outcome.seconds:.2f}s (request timeout 8 s): waited for the timeout")


@then("the error says delayed data is available")
def says_delayed_available(ctx: SimpleNamespace) -> None:
    assert "delayed data is available" in failure_text(ctx)


@then(parsers.parse("the error is a {name}"))
def error_is(ctx: SimpleNamespace, name: str) -> None:
    assert isinstance(ctx.api.last_error, error_class(name)), repr(ctx.api.last_error)


@then("the gateway holds no market data line for the adapter")
def no_line(ctx: SimpleNamespace) -> None:
    round_trip(ctx)  # the adapter's cancel (if any) has reached the gateway
    assert gateway_lines(ctx) == []


@then("the gateway soon holds no market data line for the adapter")
def soon_no_line(ctx: SimpleNamespace) -> None:
    wait_for(lambda: gateway_lines(ctx) == [], 2.0, "the refused stream to be cancelled")


@then("the gateway holds no option line for the adapter")
def no_option_line(ctx: SimpleNamespace) -> None:
    round_trip(ctx)
    assert gateway_lines(ctx, "OPT") == []


@then(parsers.parse('every option is marked "{kind}" and has model greeks'))
def options_marked(ctx: SimpleNamespace, kind: str) -> None:
    options = ctx.outcome.value
    assert ctx.outcome.error is None and options, (ctx.outcome, ctx.api.last_error)
    assert {o.data_type for o in options} == {kind}
    assert all(o.delta != 0.0 and o.gamma != 0.0 and o.implied_volatility > 0 for o in options)


@then("the options' prices are the gateway's current quotes")
def option_prices(ctx: SimpleNamespace) -> None:
    market = ctx.gw.market
    for o in ctx.outcome.value:
        (contract,) = ctx.gw.call(lambda o=o: market.match(local_symbol=o.symbol))
        q = ctx.gw.call(market.snapshot, contract.con_id)
        assert (o.bid, o.ask, o.last) == (q.bid, q.ask, q.last), (o, q)
        assert q.greeks is not None and abs(o.delta - q.greeks.delta) < 1e-9, (o, q)
