"""Fixtures and shared steps for the resilience features.

A scenario runs a real :class:`SimulatedGateway` (the TWS wire protocol on 127.0.0.1, an
ephemeral port) and one or more real adapters (``IBKRIBInsyncApi`` with the real ib_insync
inside) with fast reconnect settings. Scenario state lives in ``ctx``; gateways and adapters are
torn down by their fixtures, each teardown bounded so a hang fails instead of stalling the suite.

Environment knobs (documented in tests/resilience/README.md):
  RESILIENCE_RESTARTS       restarts in the quick gauntlet (default 3)
  RESILIENCE_SOAK_RESTARTS  restarts in the @soak gauntlet (default 10)
  SOAK_SECONDS              duration of the quick concurrency soaks (default 5)
  RESILIENCE_SOAK_SECONDS   duration of the @soak concurrency soaks (default 30)
  SOAK_THREADS              threads in the concurrency soaks (default 16)
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import clock_support
import pytest
from pytest_bdd import given, parsers, then, when

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # `pytest` (not `python -m pytest`) without a pythonpath setting
    sys.path.insert(0, _ROOT)

from resilience_support import (  # noqa: E402
    ACCOUNT,
    PLACE_ORDER,
    RESTING_BUY,
    RESULTS,
    adapter_orders,
    assert_orders_agree,
    assert_positions_agree,
    assert_ticks,
    connect_adapter,
    error_class,
    make_config,
    make_spread,
    mark_requests,
    new_requests,
    parse_settings,
    place_resting,
    requests_matching,
    round_trip,
    run_with_timeout,
    timed_call,
    wait_for,
    write_results,
)

pytestmark = pytest.mark.integration

DEFAULT_CLIENT_ID = 11


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def ctx() -> SimpleNamespace:
    """Per-scenario state shared by the steps."""
    return SimpleNamespace(gw=None, api=None, client_id=DEFAULT_CLIENT_ID, outcome=None,
                           orders_before=None, log_mark=0, resting=[], streams=[], extra={})


@pytest.fixture
def gateways() -> Iterator[Callable[..., Any]]:
    """Start simulated gateways; every one started is stopped at teardown."""
    from src.simulator import SimulatedGateway

    started: list[Any] = []

    def start(accounts: list[str] | None = None, port: int = 0, **kwargs: Any) -> Any:
        options: dict[str, Any] = {"seed": 1, "latency_ms": 0, "pacing": True,
                                   "clock": clock_support.pinned_clock()}
        options.update(kwargs)
        gw = SimulatedGateway(port=port, accounts=accounts or [ACCOUNT], **options)
        gw.__enter__()
        started.append(gw)
        return gw

    yield start
    for gw in reversed(started):
        run_with_timeout(lambda gw=gw: gw.__exit__(None, None, None), 15, "gateway stop")


@pytest.fixture
def adapters() -> Iterator[Callable[..., Any]]:
    """Build adapters; every one built is closed at teardown (bounded)."""
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

    built: list[Any] = []

    def build(gw: Any, client_id: int, **settings: Any) -> Any:
        api = IBKRIBInsyncApi(make_config(gw, client_id, **settings), clock=gw.clock)
        built.append(api)
        return api

    yield build
    for api in reversed(built):
        closer = getattr(api, "close", None) or api.disconnect
        run_with_timeout(closer, 15, "adapter close")


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Adapter logs at DEBUG; and no scenario may leave an asyncio exception unretrieved (an
    error nobody handled: asyncio logs "... exception was never retrieved" when it is dropped)."""
    caplog.set_level(logging.DEBUG, logger="ibkr")
    yield
    import gc

    gc.collect()
    dropped = [r.getMessage().splitlines()[0] + " " + str(getattr(r, "exc_info", "") or "")
               for r in caplog.get_records("call") + caplog.get_records("teardown")
               if r.name == "asyncio" and "never retrieved" in r.getMessage()]
    assert not dropped, f"{len(dropped)} unretrieved asyncio exceptions, e.g. {dropped[0]}"


# ----------------------------------------------------------------------------- session hooks


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = write_results()
    if path is not None:
        session.config._resilience_results_path = path  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("resilience figures")
    for section, values in RESULTS.items():
        tr.write_line(f"{section}:")
        for key, value in values.items():
            tr.write_line(f"  {key}: {value}")
    path = getattr(config, "_resilience_results_path", None)
    if path is not None:
        tr.write_line(f"written to {path}")


# ----------------------------------------------------------------------------- shared steps


@given("a simulated IB gateway")
def a_gateway(ctx: SimpleNamespace, gateways: Callable[..., Any]) -> None:
    ctx.gw = gateways()


@given(parsers.parse('a simulated IB gateway for account "{account}"'))
def a_gateway_for(ctx: SimpleNamespace, gateways: Callable[..., Any], account: str) -> None:
    ctx.gw = gateways(accounts=[account])


@given("a connected adapter")
def a_connected_adapter(ctx: SimpleNamespace, adapters: Callable[..., Any]) -> None:
    ctx.api = connect_adapter(ctx, adapters, ctx.client_id)


@given(parsers.parse("a connected adapter with {settings}"))
def a_connected_adapter_with(ctx: SimpleNamespace, adapters: Callable[..., Any],
                             settings: str) -> None:
    if ctx.api is not None:  # the Background's adapter holds its client id: take another
        ctx.client_id += 10
    ctx.api = connect_adapter(ctx, adapters, ctx.client_id, **parse_settings(settings))


@given(parsers.parse("a second adapter with client id {cid:d} connected with {settings}"))
def second_adapter(ctx: SimpleNamespace, adapters: Callable[..., Any], cid: int,
                   settings: str) -> None:
    ctx.extra["second"] = connect_adapter(ctx, adapters, cid, **parse_settings(settings))


@given(parsers.parse("market data streaming for {symbols}"))
def market_data_streaming(ctx: SimpleNamespace, symbols: str) -> None:
    names = [s.strip() for s in symbols.replace(" and ", ",").split(",") if s.strip()]
    for symbol in names:
        data = run_with_timeout(lambda s=symbol: ctx.api.get_market_data(s), 15,
                                "get_market_data")
        assert "error" not in data, f"market data for {symbol}: {data}"
        assert data.get("bid") is not None or data.get("last") is not None, data
    ctx.streams = names


@given(parsers.parse("{count:d} resting limit orders on AAPL bull call spreads"))
def resting_orders(ctx: SimpleNamespace, count: int) -> None:
    for _ in range(count):
        n = len(ctx.resting)
        ctx.resting.append(place_resting(ctx, ctx.api, f"rest-{n}", offset=n % 3))
    wait_for(lambda: all(ctx.api.get_order_status(o).get("status") in
                         ("PreSubmitted", "Submitted") for o in ctx.resting),
             5, "the resting orders to be acknowledged")


@given("a resting AAPL bull call spread order placed earlier")
def a_resting_order(ctx: SimpleNamespace) -> None:
    resting_orders(ctx, 1)


@then(parsers.parse("the adapter reports it is not connected within {seconds:g} seconds"))
def reports_not_connected(ctx: SimpleNamespace, seconds: float) -> None:
    wait_for(lambda: ctx.api.connected is False, seconds, "connected to become False")


@then(parsers.parse("the adapter reports it is connected within {seconds:g} seconds"))
@then(parsers.parse("the adapter is connected again within {seconds:g} seconds"))
def reports_connected(ctx: SimpleNamespace, seconds: float) -> None:
    before = ctx.extra.pop("lost_at_reconnects", None)  # set by the steps that cut the line

    def up() -> bool:
        if isinstance(before, int) and ctx.api.reconnect_count <= before:
            return False
        return ctx.api.connected is True

    wait_for(up, seconds, "connected to become True (after a reconnect)")


@when("I place a limit order for 1 AAPL bull call spread")
def place_one(ctx: SimpleNamespace) -> None:
    spread = make_spread(ctx.gw)
    mark_requests(ctx)
    ctx.orders_before = adapter_orders(ctx.api)
    ctx.outcome = timed_call(
        lambda: ctx.api.place_order("AAPL", "LONG", 1, spread, "LIMIT", RESTING_BUY,
                                    order_ref=f"one-{time.monotonic_ns()}"),
        15, "place_order")


@then(parsers.parse('it raises {error} naming "{field}"'))
def raises_naming(ctx: SimpleNamespace, error: str, field: str) -> None:
    out = ctx.outcome
    assert out.error is not None, f"expected {error}, the call returned {out.value!r}"
    assert isinstance(out.error, error_class(error)), f"{type(out.error).__name__}: {out.error}"
    names = [f.strip() for f in field.split("|")]
    assert any(n in str(out.error) for n in names), f"{out.error!s} does not name {field}"


@then(parsers.re(r"it raises (?P<error>\w+)"))
def raises(ctx: SimpleNamespace, error: str) -> None:
    out = ctx.outcome
    assert out.error is not None, f"expected {error}, the call returned {out.value!r}"
    assert isinstance(out.error, error_class(error)), f"{type(out.error).__name__}: {out.error}"


@then("the adapter's orders are unchanged")
def orders_unchanged(ctx: SimpleNamespace) -> None:
    assert adapter_orders(ctx.api) == ctx.orders_before


@then("the gateway received no new order")
@then("the gateway received no order")
def no_new_order(ctx: SimpleNamespace) -> None:
    round_trip(ctx)  # a wrongly sent message has reached the gateway by now
    sent = requests_matching(new_requests(ctx), PLACE_ORDER)
    assert not sent, f"the gateway received placeOrder: {sent}"


@then("no order was lost or duplicated")
def none_lost_or_duplicated(ctx: SimpleNamespace) -> None:
    assert_orders_agree(ctx.api, ctx.gw, ctx.client_id)


@then("the adapter's positions agree with the gateway's")
def positions_agree(ctx: SimpleNamespace) -> None:
    assert_positions_agree(ctx.api, ctx.gw)


@then(parsers.parse("market data for {symbol} ticks again"))
def ticks_again(ctx: SimpleNamespace, symbol: str) -> None:
    assert_ticks(ctx.api, symbol)


@when("the gateway is killed")
def kill(ctx: SimpleNamespace) -> None:
    ctx.extra["lost_at_reconnects"] = ctx.api.reconnect_count
    ctx.gw.kill()


@when("the gateway is restarted")
def restart(ctx: SimpleNamespace) -> None:
    ctx.gw.restart()


@then(parsers.parse("the adapter reconnected within {seconds:g} seconds"))
def reconnected_within(ctx: SimpleNamespace, seconds: float) -> None:
    before = ctx.extra.get("reconnects_before") or 0
    wait_for(lambda: ctx.api.reconnect_count > before and ctx.api.connected is True, seconds,
             "the adapter to reconnect")


@when("the gateway drops every client")
def drop_all(ctx: SimpleNamespace) -> None:
    ctx.extra["lost_at_reconnects"] = ctx.api.reconnect_count
    ctx.gw.drop_clients()


@given(parsers.parse("the gateway goes silent for {seconds:g} seconds"))
def silent(ctx: SimpleNamespace, seconds: float) -> None:
    ctx.extra["silence_ends"] = time.monotonic() + seconds
    ctx.gw.go_silent(seconds)
