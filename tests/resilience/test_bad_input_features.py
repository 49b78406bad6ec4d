"""bad_input.feature: every public method refuses bad arguments with a ValueError naming the
field; nothing is sent and the adapter's state is unchanged."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pytest_bdd import parsers, scenarios, then, when
from resilience_support import (
    CANCEL_ORDER,
    REQ_CONTRACT_DATA,
    REQ_MKT_DATA,
    RESTING_BUY,
    adapter_orders,
    literal,
    make_spread,
    mark_requests,
    new_requests,
    requests_matching,
    timed_call,
)

from src.brokers import errors as broker_errors

pytestmark = pytest.mark.integration

scenarios("bad_input.feature")


def valid_order_args(ctx: SimpleNamespace) -> dict[str, Any]:
    return {"symbol": "AAPL", "direction": "LONG", "contracts": 1,
            "option_spread": make_spread(ctx.gw), "price_type": "LIMIT",
            "limit_price": RESTING_BUY, "order_ref": "valid-ref"}


def call_place(ctx: SimpleNamespace, overrides: dict[str, Any]) -> None:
    args = valid_order_args(ctx)
    args.update(overrides)
    ref = args.pop("order_ref")
    mark_requests(ctx)
    ctx.orders_before = adapter_orders(ctx.api)
    ctx.outcome = timed_call(lambda: ctx.api.place_order(**args, order_ref=ref), 15,
                             "place_order")


@when(parsers.re(r"I call place_order with (?P<field>\w+) = (?P<value>.+?)"
                 r"(?: and (?P<field2>\w+) = (?P<value2>.+))?"))
def place_with(ctx: SimpleNamespace, field: str, value: str, field2: str | None,
               value2: str | None) -> None:
    overrides = {field: literal(value)}
    if field2 is not None and value2 is not None:
        overrides[field2] = literal(value2)
    call_place(ctx, overrides)


@then("the error is an InvalidOrder")
def is_invalid_order(ctx: SimpleNamespace) -> None:
    assert isinstance(ctx.outcome.error, broker_errors.InvalidOrder), repr(ctx.outcome.error)
    assert isinstance(ctx.outcome.error, broker_errors.NonRetryableError)


@when(parsers.re(r"I call (?P<method>get_order_status|cancel_order) with order id (?P<value>.+)"))
def call_with_order_id(ctx: SimpleNamespace, method: str, value: str) -> None:
    mark_requests(ctx)
    ctx.orders_before = adapter_orders(ctx.api)
    fn = getattr(ctx.api, method)
    arg = literal(value)
    ctx.outcome = timed_call(lambda: fn(arg), 15, method)


@when(parsers.re(r"I call (?P<method>get_market_data|get_option_chain) with symbol (?P<value>.+)"))
def call_with_symbol(ctx: SimpleNamespace, method: str, value: str) -> None:
    mark_requests(ctx)
    ctx.orders_before = adapter_orders(ctx.api)
    fn = getattr(ctx.api, method)
    arg = literal(value)
    ctx.outcome = timed_call(lambda: fn(arg), 15, method)


@then("the gateway received no cancel")
def no_cancel(ctx: SimpleNamespace) -> None:
    sent = requests_matching(new_requests(ctx), CANCEL_ORDER)
    assert not sent, f"the gateway received cancelOrder: {sent}"


@then("the gateway received no market data request")
def no_market_data(ctx: SimpleNamespace) -> None:
    reqs = new_requests(ctx)
    sent = requests_matching(reqs, REQ_MKT_DATA) + requests_matching(reqs, REQ_CONTRACT_DATA)
    assert not sent, f"the gateway received market data / contract requests: {sent}"


@when(parsers.parse('I ask for the status of order "{oid}" and cancel it'))
def unknown_order(ctx: SimpleNamespace, oid: str) -> None:
    mark_requests(ctx)
    ctx.orders_before = adapter_orders(ctx.api)
    status = timed_call(lambda: ctx.api.get_order_status(oid), 15, "get_order_status")
    cancel = timed_call(lambda: ctx.api.cancel_order(oid), 15, "cancel_order")
    ctx.extra["unknown"] = (status, cancel)


@then("the status is an empty dict and the cancel returned False")
def empty_answers(ctx: SimpleNamespace) -> None:
    status, cancel = ctx.extra["unknown"]
    assert status.error is None and status.value == {}, (status.value, status.error)
    assert cancel.error is None and cancel.value is False, (cancel.value, cancel.error)

