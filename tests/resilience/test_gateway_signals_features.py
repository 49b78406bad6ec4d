"""gateway_signals.feature: what the gateway says — 1100/1101/1102, data farm notices, 502/504,
326 (client id in use), silence, errors that answer a request — and what the adapter does."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from resilience_support import (
    REQ_MARKET_DATA_TYPE,
    REQ_MKT_DATA,
    START_API,
    error_code,
    mark_requests,
    new_requests,
    record,
    req_fields,
    requests_matching,
    round_trip,
    run_with_timeout,
    timed_call,
    wait_for,
)

from src.brokers import errors as broker_errors
from src.brokers.base import ACCOUNT_FIELDS, MARKET_DATA_FIELDS

pytestmark = pytest.mark.integration

scenarios("gateway_signals.feature")


# ----------------------------------------------------------------------------- broadcasts


@when(parsers.parse("the gateway broadcasts code {code:d}"))
def broadcast(ctx: SimpleNamespace, code: int) -> None:
    ctx.extra.setdefault("reconnects_before", getattr(ctx.api, "reconnect_count", None))
    mark_requests(ctx)
    ctx.gw.broadcast_error(code)


@then("no market data subscription was sent again")
def no_resubscribe(ctx: SimpleNamespace) -> None:
    round_trip(ctx)  # the adapter has handled the broadcast and sent what it would send
    again = requests_matching(new_requests(ctx), REQ_MKT_DATA, ctx.client_id)
    assert not again, f"re-subscribed although data was kept: {again}"


@then("every streaming subscription was requested again, with the market data type")
def resubscribed(ctx: SimpleNamespace) -> None:
    def done() -> bool:
        reqs = new_requests(ctx)
        types = requests_matching(reqs, REQ_MARKET_DATA_TYPE, ctx.client_id)
        assert types, "reqMarketDataType was not sent again"
        subs = requests_matching(reqs, REQ_MKT_DATA, ctx.client_id)
        for symbol in ctx.streams:
            assert any(symbol in req_fields(r) for r in subs), f"{symbol} not re-subscribed"
        return True

    wait_for(done, 3, "every stream to be re-subscribed")


@then(parsers.parse("the adapter's data health reports the farm {state}"))
def data_health(ctx: SimpleNamespace, state: str) -> None:
    def shows() -> bool:
        health = dict(ctx.api.data_health)
        assert health, "data_health is empty"
        text = repr(health).lower()
        if state == "down":
            assert any(v is False or str(v).lower() in ("down", "broken", "false")
                       for v in health.values()), f"no farm reported down: {health}"
        else:
            assert all(v is True or str(v).lower() in ("ok", "true") for v in health.values()
                       if not isinstance(v, (int, float)) or isinstance(v, bool)), (
                f"a farm is not ok: {health}")
        return bool(text)

    wait_for(shows, 2, f"data health to show the farm {state}")


@then("the adapter's data health does not report IB connectivity down")
def ib_not_down(ctx: SimpleNamespace) -> None:
    health = dict(ctx.api.data_health)
    assert health.get("ib") != "down", f"connected {ctx.api.connected} but data health {health}"


@then(parsers.parse("{seconds:g} seconds later the adapter has still not reconnected"))
def still_not_reconnected(ctx: SimpleNamespace, seconds: float) -> None:
    """Past the 1100 grace period: the watchdog stood down when 1101/1102 came."""
    time.sleep(seconds)
    stayed_connected(ctx)


@then("the adapter stayed connected without reconnecting")
def stayed_connected(ctx: SimpleNamespace) -> None:
    round_trip(ctx)  # the adapter has handled every message sent before the answer
    assert ctx.api.connected is True
    before = ctx.extra.get("reconnects_before")
    if isinstance(before, int):
        assert ctx.api.reconnect_count == before
    assert not requests_matching(new_requests(ctx), START_API, ctx.client_id)


# ----------------------------------------------------------------------------- 326


@when("a second adapter connects with the same client id")
def same_client_id(ctx: SimpleNamespace, adapters: Callable[..., Any],
                   caplog: pytest.LogCaptureFixture) -> None:
    other = adapters(ctx.gw, ctx.client_id, IBKR_AUTO_RECONNECT=False, IBKR_TIMEOUT=4.0)
    caplog.clear()
    ctx.extra["other"] = other
    ctx.outcome = timed_call(other.connect, 20, "connect() with a client id in use")


@then(parsers.parse('its connect() returned False and logged "{text}"'))
def connect_false(ctx: SimpleNamespace, text: str, caplog: pytest.LogCaptureFixture) -> None:
    assert ctx.outcome.error is None, f"connect() raised {ctx.outcome.error!r}"
    assert ctx.outcome.value is False
    assert ctx.extra["other"].connected is False
    errors = [r for r in caplog.records if r.levelname == "ERROR" and text in r.getMessage()]
    assert errors, f"no ERROR record with {text!r}"


@then(parsers.parse("its last error carries IB code {code:d}"))
def other_last_error(ctx: SimpleNamespace, code: int) -> None:
    err = ctx.extra["other"].last_error
    assert isinstance(err, broker_errors.BrokerError), repr(err)
    assert error_code(err) == code, repr(err)


@then("the adapter is still connected and answers requests")
def still_connected(ctx: SimpleNamespace) -> None:
    round_trip(ctx)
    assert ctx.api.connected is True
    data = run_with_timeout(lambda: ctx.api.get_market_data("AAPL"), 10, "get_market_data")
    assert "error" not in data, data


@when("the gateway restarts and another client takes the adapter's client id first")
def other_takes_id(ctx: SimpleNamespace, adapters: Callable[..., Any]) -> None:
    api, gw = ctx.api, ctx.gw
    for _attempt in range(4):
        gw.kill()
        wait_for(lambda: api.connected is False, 5, "connected to turn False")
        time.sleep(1.0)  # the adapter's backoff reaches its cap
        gw.restart()
        other = adapters(gw, ctx.client_id, IBKR_AUTO_RECONNECT=False, IBKR_TIMEOUT=4.0)
        if run_with_timeout(other.connect, 20, "the other client's connect()"):
            break
        run_with_timeout(other.disconnect, 10, "disconnect()")  # the adapter won the race
        wait_for(lambda: api.connected is True, 10, "the adapter to reconnect")
    else:
        pytest.fail("could not take the adapter's client id first in 4 tries")
    ctx.extra["other"] = other
    mark_requests(ctx)


@then(parsers.parse("the adapter keeps retrying with backoff, not hammering, for {seconds:g} "
                    "seconds"))
def keeps_retrying(ctx: SimpleNamespace, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert ctx.api.connected is False, "connected while another client holds the id"
        time.sleep(0.05)
    attempts = len(requests_matching(new_requests(ctx), START_API, ctx.client_id))
    # full jitter, cap 0.5 s: about 4 tries a second; hammering would be hundreds
    assert 1 <= attempts <= 20 * seconds, f"{attempts} attempts in {seconds}s"
    err = getattr(ctx.api, "last_error", None)
    assert error_code(err) == 326, f"last_error while the id is taken: {err!r}"
    record("client_id_in_use", attempts_while_taken=attempts, seconds=seconds)


@when("the other client disconnects")
def other_leaves(ctx: SimpleNamespace) -> None:
    run_with_timeout(ctx.extra["other"].disconnect, 10, "disconnect()")


# ----------------------------------------------------------------------------- silence


@when(parsers.parse("I call {call} on the adapter"))
def call_method(ctx: SimpleNamespace, call: str) -> None:
    fn = {
        "get_market_data": lambda: ctx.api.get_market_data("MSFT"),
        "get_account_summary": ctx.api.get_account_summary,
        "get_option_chain": lambda: ctx.api.get_option_chain("SPY"),
    }[call]
    ctx.outcome = timed_call(fn, 30, call)


@given(parsers.parse("the gateway allows only {rate:d} messages per second"))
def low_rate(ctx: SimpleNamespace, rate: int) -> None:
    ctx.extra["reconnects_before"] = ctx.api.reconnect_count
    ctx.gw.call(setattr, ctx.gw.runtime.server, "max_rate", rate)


@then(parsers.parse("it returned at once with the contract's shape for {call}"))
def at_once(ctx: SimpleNamespace, call: str) -> None:
    out = ctx.outcome
    assert out.error is None, repr(out.error)
    assert out.seconds < 1.0, f"{call} took {out.seconds:.2f}s after the session was dropped"
    assert isinstance(out.value, list), out.value


@then("the gateway logged a pacing violation and the adapter logged IB error 100")
def pacing_logged(ctx: SimpleNamespace, caplog: pytest.LogCaptureFixture) -> None:
    assert ctx.gw.stats()["pacing_violations"] >= 1
    ctx.gw.call(setattr, ctx.gw.runtime.server, "max_rate", 50)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("ibkr")
            and "100" in r.getMessage() and r.levelno >= logging.WARNING]
    assert ours, "the adapter did not log the pacing error"


@then(parsers.parse("it returned within the request timeout with the contract's shape for "
                    "{call}"))
def within_timeout(ctx: SimpleNamespace, call: str) -> None:
    out = ctx.outcome
    timeout = 2.0  # IBKR_REQUEST_TIMEOUT in the fast settings
    assert out.error is None, f"{call} raised {out.error!r}"
    assert out.seconds <= timeout * 1.5 + 1.0, f"{call} took {out.seconds:.2f}s"
    value = out.value
    if call == "get_market_data":
        assert value.get("symbol") == "MSFT", value
        assert "error" in value or set(MARKET_DATA_FIELDS) <= set(value), value
    elif call == "get_account_summary":
        assert "timestamp" in value, value
        assert "error" in value or set(ACCOUNT_FIELDS) <= set(value), value
    else:
        assert isinstance(value, list), value
    record("silent_gateway", **{f"{call}_seconds": round(out.seconds, 3)})


@then("once the gateway speaks again the adapter answers requests")
def speaks_again(ctx: SimpleNamespace) -> None:
    left = max(0.0, ctx.extra["silence_ends"] - time.monotonic())

    def answers() -> bool:
        if not ctx.api.connected:
            return False
        data = ctx.api.get_market_data("AAPL")
        assert "error" not in data, data
        return True

    wait_for(answers, left + 15, "the adapter to answer after the silence", interval=0.2)


@given("the market is closed at the gateway")
def market_closed(ctx: SimpleNamespace) -> None:
    ctx.gw.call(setattr, ctx.gw.engine, "market_open", False)


@then(parsers.parse('the error carries IB code {code:d} and starts with "{prefix}"'))
def carries_code(ctx: SimpleNamespace, code: int, prefix: str) -> None:
    err = ctx.outcome.error
    assert error_code(err) == code, repr(err)
    assert str(err).startswith(prefix), str(err)
    assert ctx.outcome.seconds < 1.0, f"the rejection took {ctx.outcome.seconds:.2f}s"


@then("the error is a RuntimeError and not retryable")
def runtime_not_retryable(ctx: SimpleNamespace) -> None:
    err = ctx.outcome.error
    assert isinstance(err, RuntimeError) and isinstance(err, broker_errors.NonRetryableError)
    assert err.retryable is False


@then("the order is tracked as Inactive")
def tracked_inactive(ctx: SimpleNamespace) -> None:
    placed = [r for r in new_requests(ctx) if r[1] == 3]
    assert len(placed) == 1, placed
    with ctx.api.lock:
        statuses = {k: v.get("status") for k, v in ctx.api.orders.items()}
    assert "Inactive" in statuses.values(), statuses


@when(parsers.parse('I request market data for the unknown symbol "{symbol}"'))
def unknown_symbol(ctx: SimpleNamespace, symbol: str) -> None:
    ctx.outcome = timed_call(lambda: ctx.api.get_market_data(symbol), 30, "get_market_data")


@then(parsers.parse("the result carries an error and came back well before the {seconds:d} "
                    "second timeout"))
def error_fast(ctx: SimpleNamespace, seconds: int) -> None:
    out = ctx.outcome
    assert out.error is None, repr(out.error)
    assert "error" in out.value, out.value
    assert out.seconds < seconds / 2, f"took {out.seconds:.2f}s: the error did not end the wait"
    record("error_ends_request", seconds=round(out.seconds, 3), timeout=seconds)


@then(parsers.parse("the adapter's last error is {name} with IB code {code:d}"))
def last_error_is(ctx: SimpleNamespace, name: str, code: int) -> None:
    err = ctx.api.last_error
    assert isinstance(err, getattr(broker_errors, name)), repr(err)
    assert error_code(err) == code, repr(err)
