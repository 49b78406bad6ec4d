"""price_increments.feature: the adapter rounds (or refuses) a combo limit off its $0.01
increment before sending; a 110 from the gateway ends place_order at once (Inactive)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from pytest_bdd import given, parsers, then, when
from pytest_bdd import scenarios as load_scenarios
from resilience_support import (
    adapter_orders,
    engine_orders,
    error_code,
    make_spread,
    mark_requests,
    round_trip,
    status_of,
    timed_call,
)

pytestmark = pytest.mark.integration

load_scenarios("price_increments.feature")


@when(parsers.parse("I place a {direction} limit order at {price:g} for 1 AAPL bull call spread"))
def place_at(ctx: SimpleNamespace, direction: str, price: float) -> None:
    spread = make_spread(ctx.gw)
    mark_requests(ctx)
    ctx.orders_before = adapter_orders(ctx.api)
    ctx.outcome = timed_call(
        lambda: ctx.api.place_order("AAPL", direction, 1, spread, "LIMIT", price,
                                    order_ref=f"incr-{time.monotonic_ns()}"),
        15, "place_order")


@then(parsers.parse("the order is accepted and the gateway holds it at limit {price:g}"))
def gateway_limit(ctx: SimpleNamespace, price: float) -> None:
    out = ctx.outcome
    assert out.error is None, f"place_order raised {out.error!r}"
    oid = int(out.value)
    orders = {o.order_id: o for o in engine_orders(ctx.gw, ctx.client_id)}
    assert oid in orders and orders[oid].status == "Submitted", orders.get(oid)
    held = ctx.gw.call(lambda: ctx.gw.engine.orders[orders[oid].perm_id].request.lmt_price)
    assert held == pytest.approx(price, abs=1e-9), held


@then(parsers.parse("the adapter's record shows limit_price {price:g}"))
def record_limit(ctx: SimpleNamespace, price: float) -> None:
    record = ctx.api.get_order_status(str(ctx.outcome.value))
    assert record["limit_price"] == pytest.approx(price, abs=1e-9), record
    assert record["status"] == "Submitted", record


@then(parsers.parse('it raises {error} naming all of "{first}", "{second}" and "{third}"'))
def raises_naming_all(ctx: SimpleNamespace, error: str, first: str, second: str,
                      third: str) -> None:
    from src.brokers import errors as broker_errors

    out = ctx.outcome
    assert out.error is not None, f"expected {error}, the call returned {out.value!r}"
    assert isinstance(out.error, getattr(broker_errors, error)), repr(out.error)
    for name in (first, second, third):
        assert name in str(out.error), f"{out.error!s} does not name {name}"


@given("the gateway does not enforce price increments")
def no_enforcement(ctx: SimpleNamespace) -> None:
    ctx.gw.enforce_price_increments(False)


@given("the gateway answers the next order with error 110")
def forced_110(ctx: SimpleNamespace) -> None:
    ctx.gw.force_price_error(1)


@then(parsers.parse("the error carries IB code {code:d} and came back well before the "
                    "{seconds:g} second timeout"))
def code_at_once(ctx: SimpleNamespace, code: int, seconds: float) -> None:
    out = ctx.outcome
    assert error_code(out.error) == code, repr(out.error)
    assert str(out.error).startswith("Order placement failed: "), str(out.error)
    assert out.seconds < seconds / 2, f"place_order took {out.seconds:.2f}s"


@then("the rejected order stays Inactive with IB's reason")
def stays_inactive(ctx: SimpleNamespace) -> None:
    new = {k: v for k, v in adapter_orders(ctx.api).items() if k not in ctx.orders_before}
    assert len(new) == 1, new
    oid = next(iter(new))
    round_trip(ctx)  # whatever the gateway sent after the 110 has been handled
    for _ in range(3):  # every read: the library's PendingSubmit never revives it
        record = ctx.api.get_order_status(oid)
        assert record["status"] == "Inactive", record
        assert "minimum price variation" in str(record.get("error")), record
    assert status_of(ctx.api, oid) == "Inactive"
    assert not [o for o in engine_orders(ctx.gw, ctx.client_id) if o.order_id == int(oid)]
