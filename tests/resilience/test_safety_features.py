"""safety.feature: read_only, live-account and live-port interlocks, masked account ids."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from resilience_support import (
    CANCEL_ORDER,
    PLACE_ORDER,
    RESTING_BUY,
    engine_orders,
    force_fill,
    make_spread,
    mark_requests,
    new_requests,
    requests_matching,
    run_with_timeout,
    timed_call,
    wait_for,
)

from src.brokers import errors as broker_errors

pytestmark = pytest.mark.integration

scenarios("safety.feature")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@given(parsers.parse('a simulated IB gateway on port {port:d} for account "{account}"'))
def gateway_on_port(ctx: SimpleNamespace, gateways: Callable[..., Any], port: int,
                    account: str) -> None:
    if not port_free(port):
        pytest.skip(f"port {port} is in use on this machine")
    ctx.gw = gateways(accounts=[account], port=port)


@when("the read-only adapter places a limit order for 1 AAPL bull call spread")
def read_only_places(ctx: SimpleNamespace) -> None:
    ro = ctx.extra["second"]
    spread = make_spread(ctx.gw)
    mark_requests(ctx)
    ctx.outcome = timed_call(
        lambda: ro.place_order("AAPL", "LONG", 1, spread, "LIMIT", RESTING_BUY,
                               order_ref="read-only-1"), 15, "place_order")


@then(parsers.parse('the error is a ValueError naming "{text}"'))
def value_error_naming(ctx: SimpleNamespace, text: str) -> None:
    err = ctx.outcome.error
    assert isinstance(err, ValueError), repr(err)
    assert text in str(err).lower(), str(err)


@when("the read-only adapter cancels an order")
def read_only_cancels(ctx: SimpleNamespace) -> None:
    ro = ctx.extra["second"]
    oid = ctx.resting[0]
    ctx.outcome = timed_call(lambda: ro.cancel_order(oid), 15, "cancel_order")


@then("the cancel was refused")
def cancel_refused(ctx: SimpleNamespace) -> None:
    out = ctx.outcome
    if out.error is not None:
        assert isinstance(out.error, broker_errors.ReadOnlyViolation), repr(out.error)
    else:
        assert out.value is False, out.value


@then("the gateway received no cancel from the read-only adapter")
def no_cancel_from_ro(ctx: SimpleNamespace) -> None:
    sent = requests_matching(new_requests(ctx), CANCEL_ORDER)
    assert not sent, f"cancelOrder reached the gateway: {sent}"
    live = [o for o in engine_orders(ctx.gw) if o.status in ("PreSubmitted", "Submitted")]
    assert live, "the resting order should still be live"


@then(parsers.parse("the order is {outcome}"))
def order_outcome(ctx: SimpleNamespace, outcome: str) -> None:
    out = ctx.outcome
    placed = requests_matching(new_requests(ctx), PLACE_ORDER)
    if outcome == "placed":
        assert out.error is None, f"refused: {out.error!r}"
        assert isinstance(out.value, str) and out.value
        assert placed, "no placeOrder reached the gateway"
    else:
        assert isinstance(out.error, broker_errors.LiveTradingNotAllowed), repr(out.error)
        assert isinstance(out.error, ValueError)
        assert not placed, f"placeOrder reached the gateway: {placed}"


@given("the application logs at INFO")
def app_logs_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # the root logger, as src.utils.logger.setup_logging does
    caplog.set_level(logging.DEBUG, logger="ibkr")


@given("the gateway fills it")
def gateway_fills(ctx: SimpleNamespace) -> None:
    oid = ctx.resting[0]
    perm = next(o.perm_id for o in engine_orders(ctx.gw) if o.order_id == int(oid))
    force_fill(ctx.gw, perm)
    wait_for(lambda: ctx.api.get_order_status(oid).get("commissions"), 5, "the fill")


@when("I read the account summary and the positions")
def read_account(ctx: SimpleNamespace) -> None:
    summary = run_with_timeout(ctx.api.get_account_summary, 15, "get_account_summary")
    assert "error" not in summary, summary
    run_with_timeout(ctx.api.get_positions, 15, "get_positions")
    ctx.extra["summary"] = summary


@then(parsers.parse('no log record shows the account id "{account}" unmasked'))
def masked(ctx: SimpleNamespace, account: str, caplog: pytest.LogCaptureFixture) -> None:
    records = caplog.records
    ours = [r for r in records if r.name == "ibkr" or r.name.startswith("ibkr.")]
    assert ours, "the adapter logged nothing: the check would be vacuous"
    leaks = [f"{r.name}: {r.getMessage()}" for r in records if account in r.getMessage()]
    assert not leaks, "unmasked account id in logs:\n" + "\n".join(leaks[:10])
