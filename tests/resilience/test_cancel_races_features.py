"""cancel_races.feature: 10148 / 161 / 10147 and informational codes on live orders; the
adapter never reports a Cancelled IB did not send (src/brokers/order_cancel.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from resilience_support import (
    Timed,
    engine_orders,
    error_code,
    force_fill,
    gateway_cancel,
    perm_id_of,
    round_trip,
    status_of,
    timed_call,
    wait_for,
)

pytestmark = pytest.mark.integration

scenarios("cancel_races.feature")


def resting(ctx: SimpleNamespace) -> str:
    return str(ctx.resting[0])


def gateway_status(ctx: SimpleNamespace, oid: str) -> str:
    for order in engine_orders(ctx.gw, ctx.client_id):
        if order.order_id == int(oid):
            return order.status
    return ""


# ----------------------------------------------------------------------------- gateway switches


@given("the gateway holds its order reports back")
def hold_reports(ctx: SimpleNamespace) -> None:
    ctx.gw.hold_order_reports(True)


@given("the gateway fills the resting order")
def gateway_fills(ctx: SimpleNamespace) -> None:
    force_fill(ctx.gw, perm_id_of(ctx, resting(ctx)))
    assert gateway_status(ctx, resting(ctx)) == "Filled"
    round_trip(ctx)
    assert status_of(ctx.api, resting(ctx)) == "Submitted", "the fill was not held back"


@given("the gateway cancels the resting order itself")
def gateway_cancels(ctx: SimpleNamespace) -> None:
    gateway_cancel(ctx.gw, perm_id_of(ctx, resting(ctx)))
    round_trip(ctx)
    assert status_of(ctx.api, resting(ctx)) == "Submitted", "the cancel was not held back"


@given("the gateway lets the fill win every cancel race")
def race(ctx: SimpleNamespace) -> None:
    ctx.gw.race_cancels(True)


@given("the gateway has lost track of the resting order")
def lost(ctx: SimpleNamespace) -> None:
    key = (ctx.client_id, int(resting(ctx)))
    ctx.gw.call(lambda: ctx.gw.engine._by_key.pop(key))


@when(parsers.parse("the gateway sends code {code:d} on the resting order"))
def notice(ctx: SimpleNamespace, code: int) -> None:
    ctx.gw.send_order_notice(ctx.client_id, int(resting(ctx)), code)


@given(parsers.parse("the gateway sends code {code:d} on every order it accepts"))
def notices_on_place(ctx: SimpleNamespace, code: int) -> None:
    ctx.gw.order_notices_on_place([code])


# ----------------------------------------------------------------------------- the adapter


@when("I cancel the resting order")
def cancel(ctx: SimpleNamespace) -> None:
    ctx.outcome = timed_call(lambda: ctx.api.cancel_order(resting(ctx)), 15, "cancel_order")


@then(parsers.parse("cancel_order returned {value}"))
def cancel_returned(ctx: SimpleNamespace, value: str) -> None:
    assert ctx.outcome.error is None, f"cancel_order raised {ctx.outcome.error!r}"
    assert ctx.outcome.value is (value == "True"), (
        f"cancel_order returned {ctx.outcome.value!r}; the order is "
        f"{status_of(ctx.api, resting(ctx))}")


@then(parsers.parse("the adapter's last error carries IB code {code:d}"))
def last_error(ctx: SimpleNamespace, code: int) -> None:
    wait_for(lambda: error_code(ctx.api.last_error) == code, 5,
             f"the adapter's last error to carry {code} (it is {ctx.api.last_error!r})")


@then("the resting order is Filled in the adapter with its fill")
def filled(ctx: SimpleNamespace) -> None:
    oid = resting(ctx)

    def done() -> bool:
        record = ctx.api.get_order_status(oid)
        return record.get("status") == "Filled" and bool(record.get("executions"))

    wait_for(done, 5, f"order {oid} to be Filled with its executions")
    record = ctx.api.get_order_status(oid)
    assert record["filled"] == 1 and record["remaining"] == 0, record
    assert gateway_status(ctx, oid) == "Filled"
    round_trip(ctx)  # everything the gateway sent has been handled: it stays Filled
    assert status_of(ctx.api, oid) == "Filled"


@then("the resting order is Cancelled in the adapter and at the gateway")
def cancelled(ctx: SimpleNamespace) -> None:
    oid = resting(ctx)
    wait_for(lambda: status_of(ctx.api, oid) == "Cancelled", 5, f"order {oid} to be Cancelled")
    assert gateway_status(ctx, oid) == "Cancelled"


@then("the resting order is still Submitted in the adapter")
def still_submitted(ctx: SimpleNamespace) -> None:
    round_trip(ctx)  # the code has reached the adapter and been handled
    oid = resting(ctx)
    assert status_of(ctx.api, oid) == "Submitted", ctx.api.get_order_status(oid)
    assert gateway_status(ctx, oid) in ("Submitted", "")  # "" : the gateway lost it (10147)


@then("the resting order can still be cancelled")
def can_cancel(ctx: SimpleNamespace) -> None:
    cancel(ctx)
    cancel_returned(ctx, "True")
    cancelled(ctx)


@then("it returned an order id that is Submitted in the adapter and at the gateway")
def placed_submitted(ctx: SimpleNamespace) -> None:
    out = ctx.outcome
    assert out.error is None, f"place_order raised {out.error!r}"
    oid = str(out.value)
    round_trip(ctx)
    assert status_of(ctx.api, oid) == "Submitted", ctx.api.get_order_status(oid)
    assert gateway_status(ctx, oid) == "Submitted"


# ----------------------------------------------------------------------------- many at once


@given("the gateway fills every other resting order")
def fill_every_other(ctx: SimpleNamespace) -> None:
    ctx.extra["filled"] = [str(o) for o in ctx.resting[::2]]
    for oid in ctx.extra["filled"]:
        force_fill(ctx.gw, perm_id_of(ctx, oid))
    round_trip(ctx)
    assert all(status_of(ctx.api, str(o)) == "Submitted" for o in ctx.resting)


@when("I cancel every resting order, each from its own thread, at once")
def cancel_all(ctx: SimpleNamespace) -> None:
    barrier = threading.Barrier(len(ctx.resting))
    results: dict[str, Timed] = {}

    def one(oid: str) -> None:
        barrier.wait(5)
        results[oid] = timed_call(lambda: ctx.api.cancel_order(oid), 15, "cancel_order")

    threads = [threading.Thread(target=one, args=(str(o),)) for o in ctx.resting]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == len(ctx.resting), "a cancel_order call did not return"
    ctx.extra["results"] = results


@then("each filled order's cancel returned False and it is Filled with its fill")
def filled_ones(ctx: SimpleNamespace) -> None:
    results = ctx.extra["results"]
    for oid in ctx.extra["filled"]:
        out = results[oid]
        assert out.error is None and out.value is False, (oid, out)
        wait_for(lambda o=oid: status_of(ctx.api, o) == "Filled"
                 and bool(ctx.api.get_order_status(o).get("executions")), 5,
                 f"order {oid} to be Filled with its executions")
        assert gateway_status(ctx, oid) == "Filled"


@then("each other order's cancel returned True and it is Cancelled")
def cancelled_ones(ctx: SimpleNamespace) -> None:
    results = ctx.extra["results"]
    for oid in (str(o) for o in ctx.resting if str(o) not in ctx.extra["filled"]):
        out = results[oid]
        assert out.error is None and out.value is True, (oid, out)
        wait_for(lambda o=oid: status_of(ctx.api, o) == "Cancelled", 5,
                 f"order {oid} to be Cancelled")
        assert gateway_status(ctx, oid) == "Cancelled"
