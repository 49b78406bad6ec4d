"""resilience.feature: kill / restart / drop / flap — reconnect, reconcile, no order lost or
duplicated, idempotent retries — the real ib_insync client against the simulated gateway."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from resilience_support import (
    ACCOUNT,
    LIVE,
    PLACE_ORDER,
    REQ_CONTRACT_DATA,
    RESTING_BUY,
    START_API,
    Timed,
    adapter_orders,
    assert_orders_agree,
    assert_ticks,
    compare_orders,
    connect_adapter,
    engine_fills,
    engine_orders,
    force_fill,
    gateway_cancel,
    make_spread,
    mark_requests,
    new_requests,
    order_ref_of,
    perm_id_of,
    place_resting,
    record,
    req_fields,
    requests_matching,
    resolve_count,
    round_trip,
    run_with_timeout,
    status_of,
    summarize,
    timed_call,
    wait_for,
)

from src.brokers import errors as broker_errors

pytestmark = pytest.mark.integration

scenarios("resilience.feature")



# ----------------------------------------------------------------------------- helpers


def ensure_resting(ctx: SimpleNamespace, want: int, tag: str) -> list[str]:
    live = [o for o in ctx.resting if status_of(ctx.api, o) in LIVE]
    k = 0
    while len(live) < want:
        oid = place_resting(ctx, ctx.api, f"{tag}-{k}", offset=k % 3)
        ctx.resting.append(oid)
        live.append(oid)
        k += 1
    wait_for(lambda: all(status_of(ctx.api, o) in ("PreSubmitted", "Submitted") for o in live),
             5, "resting orders to be acknowledged")
    return live


# ----------------------------------------------------------------------------- the gauntlet


@when(parsers.re(r"the gateway is killed and restarted (?P<count>.+?) times, "
                 r"one resting order filling during each outage"))
def gauntlet(ctx: SimpleNamespace, count: str) -> None:
    n = resolve_count(count)
    api, gw = ctx.api, ctx.gw
    cycles: list[dict[str, Any]] = []
    ctx.extra["outage_fills"] = []
    ctx.extra["cycles"] = cycles
    ctx.extra["planned"] = n
    for cycle in range(n):
        live = ensure_resting(ctx, 2, f"cycle{cycle}")
        tracked_before = set(adapter_orders(api))
        victim = live[0]
        perm = perm_id_of(ctx, victim)
        reconnects_before = getattr(api, "reconnect_count", None)

        gw.kill()
        wait_for(lambda: api.connected is False, 5, f"cycle {cycle}: connected to turn False")
        force_fill(gw, perm)  # the fill happens while the adapter is away
        wait_for(lambda p=perm: any(f.perm_id == p for f in engine_fills(gw)), 3,
                 f"cycle {cycle}: the gateway to fill the victim")
        down_until = time.monotonic() + 0.2  # connected must say False all through the outage
        while time.monotonic() < down_until:
            assert api.connected is False, "connected said True while the gateway was down"
            time.sleep(0.005)

        t0 = time.monotonic()
        gw.restart()
        wait_for(lambda: api.connected is True, 20, f"cycle {cycle}: reconnect")
        seconds = time.monotonic() - t0
        wait_for(lambda v=victim: status_of(api, v) == "Filled", 5,
                 f"cycle {cycle}: order {victim} filled during the outage to show Filled")
        missing = tracked_before - set(adapter_orders(api))
        assert not missing, f"cycle {cycle}: orders no longer tracked: {missing}"
        c = compare_orders(api, gw, ctx.client_id)
        assert not c["lost"] and not c["duplicated_refs"] and not c["duplicated_entries"], (
            f"cycle {cycle}: lost {c['lost']}, duplicated {c['duplicated_refs']} "
            f"{c['duplicated_entries']}")
        assert_ticks(api, "AAPL")  # the stream came back with the connection
        ctx.extra["outage_fills"].append(victim)
        cycles.append({
            "cycle": cycle, "reconnect_seconds": round(seconds, 4),
            "adapter_last_connect_seconds": getattr(api, "last_connect_seconds", None),
            "reconnect_count": getattr(api, "reconnect_count", None),
            "reconnect_count_before": reconnects_before,
        })


@then("the adapter reconnected after every restart")
def reconnected_every_time(ctx: SimpleNamespace) -> None:
    cycles = ctx.extra["cycles"]
    n = ctx.extra["planned"]
    assert len(cycles) == n
    counts = [c["reconnect_count"] for c in cycles]
    if all(isinstance(c, int) for c in counts) and counts:
        first_before = cycles[0]["reconnect_count_before"] or 0
        assert counts[-1] - first_before >= n, f"reconnect_count went {first_before}→{counts}"
    times = [c["reconnect_seconds"] for c in cycles]
    stats = summarize(times)
    comparison = compare_orders(ctx.api, ctx.gw, ctx.client_id)
    lost = len(comparison["lost"])
    duplicated = (sum(len(v) - 1 for v in comparison["duplicated_refs"].values())
                  + sum(len(v) - 1 for v in comparison["duplicated_entries"].values()))
    record(f"gauntlet_{n}_restarts",
           cycles_planned=n, cycles_survived=len(cycles),
           reconnect_seconds_median=stats["median"], reconnect_seconds_max=stats["max"],
           reconnect_seconds_min=stats["min"],
           connect_and_sync_seconds=summarize(
               [c["adapter_last_connect_seconds"] for c in cycles
                if isinstance(c["adapter_last_connect_seconds"], float)]),
           backoff_cap_seconds=ctx.api.reconnect_cap,
           orders_tracked=len(comparison["adapter"]), orders_at_gateway=len(comparison["gateway"]),
           orders_lost=lost, orders_duplicated=duplicated,
           outage_fills=len(ctx.extra["outage_fills"]),
           reconnect_seconds=times)
    print(f"\n[resilience] {len(cycles)}/{n} restarts survived; reconnect median "
          f"{statistics.median(times):.3f}s max {max(times):.3f}s; lost {lost}, "
          f"duplicated {duplicated}")


@then("every fill made during an outage appears in the adapter's orders with its commission")
def outage_fills_visible(ctx: SimpleNamespace) -> None:
    fills = ctx.extra["outage_fills"]
    assert fills, "no fill was made during an outage"

    def complete(oid: str) -> bool:
        st = ctx.api.get_order_status(oid)
        assert st.get("status") == "Filled", st
        assert st.get("filled") == st.get("contracts") == 1, st
        assert st.get("remaining") in (0, 0.0), st
        assert st.get("filled_price") is not None, st
        assert st.get("executions"), f"order {oid} has no executions: {st}"
        assert st.get("commissions"), f"order {oid} has no commissions: {st}"
        executions = {e.get("execution_id") for e in st["executions"]}
        commissions = {c.get("execution_id") for c in st["commissions"]}
        assert executions <= commissions, f"fills without commission: {executions - commissions}"
        return True

    for oid in fills:
        wait_for(lambda oid=oid: complete(oid), 5, f"order {oid}'s fill and commission")


# ----------------------------------------------------------------------------- kill / restart


@then("the error is retryable")
def error_retryable(ctx: SimpleNamespace) -> None:
    err = ctx.outcome.error
    assert isinstance(err, broker_errors.RetryableError), repr(err)
    assert isinstance(err, broker_errors.BrokerError)


@given(parsers.parse("the gateway answers with a latency of {ms:d} ms"))
@when(parsers.parse("the gateway answers with a latency of {ms:d} ms"))
def latency(ctx: SimpleNamespace, ms: int) -> None:
    ctx.gw.set_latency(ms)


@when(parsers.parse("the gateway is killed and restarted, then killed again as soon as the "
                    "adapter logs on, {times:d} times"))
def flap(ctx: SimpleNamespace, times: int) -> None:
    api, gw = ctx.api, ctx.gw
    for cycle in range(times):
        gw.kill()
        wait_for(lambda: api.connected is False, 5, f"flap {cycle}: connected to turn False")
        mark_requests(ctx)
        gw.restart()
        wait_for(lambda: requests_matching(new_requests(ctx), START_API, ctx.client_id), 10,
                 f"flap {cycle}: the adapter to log on", interval=0.002)
        gw.kill()  # in the middle of ib_insync's start-up synchronisation
        time.sleep(0.1)
        assert api.connected is False, f"flap {cycle}: connected while the gateway is down"


# ----------------------------------------------------------------------------- during the outage


@then(parsers.parse("every public method answers within {seconds:g} second in the contract's "
                    "offline shape"))
def offline_shapes(ctx: SimpleNamespace, seconds: float) -> None:
    api = ctx.api
    oid = ctx.resting[0]
    spread = make_spread(ctx.gw)
    checks: list[tuple[str, Callable[[], Any], Callable[[Timed], bool]]] = [
        ("get_market_data", lambda: api.get_market_data("AAPL"),
         lambda t: t.error is None and t.value.get("symbol") == "AAPL" and "error" in t.value),
        ("get_option_chain", lambda: api.get_option_chain("AAPL"),
         lambda t: t.error is None and t.value == []),
        ("get_account_summary", api.get_account_summary,
         lambda t: t.error is None and "error" in t.value and "timestamp" in t.value),
        ("get_positions", api.get_positions,
         lambda t: t.error is None and isinstance(t.value, dict)),
        ("get_order_status", lambda: api.get_order_status(oid),
         lambda t: t.error is None and t.value.get("id") == oid),
        ("cancel_order", lambda: api.cancel_order(oid),
         lambda t: t.error is None and t.value is False),
        ("place_order", lambda: api.place_order("AAPL", "LONG", 1, spread, "LIMIT",
                                                RESTING_BUY, order_ref="offline-1"),
         lambda t: isinstance(t.error, broker_errors.NotConnected)),
        ("get_next_order_id", api.get_next_order_id,
         lambda t: t.error is None and isinstance(t.value, int)),
        ("handle_callbacks", api.handle_callbacks, lambda t: t.error is None),
    ]
    problems = []
    took: dict[str, float] = {}
    for name, fn, ok in checks:
        out = timed_call(fn, 30, name)
        took[name] = round(out.seconds, 3)
        if not ok(out):
            problems.append(f"{name}: {out.value!r} / {out.error!r}")
        if out.seconds > seconds:
            problems.append(f"{name} took {out.seconds:.2f}s")
    record("offline_call_seconds", **took)
    assert not problems, "\n".join(problems)


@when(parsers.parse("during the outage the gateway fills the first order, cancels the second "
                    "and books a position of {qty:d} {symbol}"))
def outage_events(ctx: SimpleNamespace, qty: int, symbol: str) -> None:
    gw = ctx.gw
    first, second = (perm_id_of(ctx, o) for o in ctx.resting[:2])
    force_fill(gw, first)
    gateway_cancel(gw, second)
    con_id = gw.call(lambda: gw.market.stocks[symbol].contract.con_id)
    gw.call(gw.engine.inject_position, ACCOUNT, con_id, float(qty), 400.0)


@given(parsers.parse("the gateway books a position of {qty:d} {symbol}"))
def book_position(ctx: SimpleNamespace, qty: int, symbol: str) -> None:
    gw = ctx.gw
    con_id = gw.call(lambda: gw.market.stocks[symbol].contract.con_id)
    gw.call(gw.engine.inject_position, ACCOUNT, con_id, float(qty), 400.0)
    wait_for(lambda: float(ctx.api.get_positions().get(symbol, {}).get("quantity") or 0) == qty,
             5, f"the adapter to see {qty} {symbol}")


@when("I disconnect the adapter")
def user_disconnect(ctx: SimpleNamespace) -> None:
    run_with_timeout(ctx.api.disconnect, 10, "disconnect()")
    assert ctx.api.connected is False


@when("I connect the adapter again")
def user_connect(ctx: SimpleNamespace) -> None:
    assert run_with_timeout(ctx.api.connect, 20, "connect()") is True


@then("the first order is Filled, the second Cancelled and the third still live in the adapter")
def outage_outcome(ctx: SimpleNamespace) -> None:
    first, second, third = ctx.resting[:3]

    def shows() -> bool:
        got = [status_of(ctx.api, o) for o in (first, second, third)]
        assert got[0] == "Filled" and got[1] == "Cancelled" and got[2] in LIVE, got
        return True

    wait_for(shows, 5, "the outage's events to show in the adapter")


@when(parsers.parse("I call {call} and the gateway drops every client while it waits"))
def call_then_drop(ctx: SimpleNamespace, call: str) -> None:
    fn = {
        "get_market_data": lambda: ctx.api.get_market_data("MSFT"),
        "get_option_chain": lambda: ctx.api.get_option_chain("SPY"),
        "get_account_summary": ctx.api.get_account_summary,
    }[call]
    result: dict[str, Any] = {}

    def body() -> None:
        result["out"] = timed_call(fn, 60, call)
        result["ended"] = time.monotonic()

    t = threading.Thread(target=body, name=f"in-flight:{call}", daemon=True)
    t.start()
    time.sleep(0.5)  # the request is out; its answer is held back by the latency
    assert t.is_alive(), f"{call} answered before the drop: {result}"
    ctx.extra["lost_at_reconnects"] = ctx.api.reconnect_count
    dropped = time.monotonic()
    ctx.gw.drop_clients()
    t.join(60)
    assert not t.is_alive(), f"{call} never returned"
    ctx.gw.set_latency(0)
    ctx.extra["in_flight"] = (call, result["out"], result["ended"] - dropped)


@then(parsers.parse("the call ended within {seconds:g} second of the drop, in the contract's "
                    "error shape"))
def ended_at_once(ctx: SimpleNamespace, seconds: float) -> None:
    call, out, after = ctx.extra["in_flight"]
    assert out.error is None, f"{call} raised {out.error!r}"
    if call == "get_option_chain":
        assert out.value == [], out.value
    else:
        assert "error" in out.value, out.value
    record("in_flight_drop_seconds", **{call: round(after, 3)})
    assert after <= seconds, f"{call} ended {after:.2f}s after the drop"


# ----------------------------------------------------------------------------- mid-flight drop


@when(parsers.parse('I place a limit order with order_ref "{ref}" and the connection drops '
                    "{moment}"))
def place_and_drop(ctx: SimpleNamespace, ref: str, moment: str) -> None:
    spread = make_spread(ctx.gw)
    mark_requests(ctx)
    wanted = REQ_CONTRACT_DATA if "qualified" in moment else PLACE_ORDER
    result: dict[str, Any] = {}

    def call() -> None:
        result["out"] = timed_call(
            lambda: ctx.api.place_order("AAPL", "LONG", 1, spread, "LIMIT", RESTING_BUY,
                                        order_ref=ref), 30, "place_order")

    t = threading.Thread(target=call, name="mid-flight", daemon=True)
    t.start()

    def arrived() -> bool:
        reqs = requests_matching(new_requests(ctx), wanted, ctx.client_id)
        if wanted == PLACE_ORDER:
            reqs = [r for r in reqs if ref in req_fields(r)]
        return bool(reqs)

    wait_for(arrived, 10, f"message {wanted} to reach the gateway", interval=0.005)
    ctx.extra["lost_at_reconnects"] = ctx.api.reconnect_count
    ctx.gw.drop_clients()
    t.join(30)
    assert not t.is_alive(), "place_order did not return after the connection dropped"
    ctx.outcome = result["out"]
    ctx.extra["first"] = ctx.outcome


@when(parsers.parse('I place a limit order with order_ref "{ref}"'))
def place_with_ref(ctx: SimpleNamespace, ref: str) -> None:
    spread = make_spread(ctx.gw)
    mark_requests(ctx)
    ctx.outcome = timed_call(
        lambda: ctx.api.place_order("AAPL", "LONG", 1, spread, "LIMIT", RESTING_BUY,
                                    order_ref=ref), 30, "place_order")
    ctx.extra["first"] = ctx.outcome


@then(parsers.parse('the adapter does not report the order with order_ref "{ref}" as live'))
def not_live(ctx: SimpleNamespace, ref: str) -> None:
    def settled() -> bool:
        ours = adapter_orders(ctx.api)
        with_ref = {k: v.get("status") for k, v in ours.items() if order_ref_of(v) == ref}
        assert all(st not in LIVE for st in with_ref.values()), (
            f"the adapter reports {with_ref} live; the gateway has "
            f"{[o for o in engine_orders(ctx.gw) if o.order_ref == ref]}")
        return True

    wait_for(settled, 3, f"order_ref {ref} not to be reported live")


@then(parsers.parse('the adapter tracks exactly one live order with order_ref "{ref}"'))
def one_live_in_adapter(ctx: SimpleNamespace, ref: str) -> None:
    ours = adapter_orders(ctx.api)
    live = [k for k, v in ours.items() if order_ref_of(v) == ref and v.get("status") in LIVE]
    assert live == [ctx.outcome.value], (live, {k: v.get("status") for k, v in ours.items()})


@then("the call returned an order id or raised a retryable error")
def id_or_retryable(ctx: SimpleNamespace) -> None:
    out = ctx.outcome
    if out.error is None:
        assert isinstance(out.value, str) and out.value, repr(out.value)
    else:
        assert isinstance(out.error, broker_errors.RetryableError), repr(out.error)


@when(parsers.parse('I retry the order with order_ref "{ref}"'))
def retry_order(ctx: SimpleNamespace, ref: str) -> None:
    spread = make_spread(ctx.gw)
    ctx.outcome = timed_call(
        lambda: ctx.api.place_order("AAPL", "LONG", 1, spread, "LIMIT", RESTING_BUY,
                                    order_ref=ref), 20, "place_order retry")
    assert ctx.outcome.error is None, f"the retry raised {ctx.outcome.error!r}"


@then("the retry returned the same order id as a successful first call")
def same_id(ctx: SimpleNamespace) -> None:
    first = ctx.extra["first"]
    if first.error is None:
        assert ctx.outcome.value == first.value


@then(parsers.parse('the gateway holds exactly one order with order_ref "{ref}"'))
def one_at_gateway(ctx: SimpleNamespace, ref: str) -> None:
    round_trip(ctx)  # a wrongly sent second order has reached the gateway by now
    mine = [o for o in engine_orders(ctx.gw) if o.order_ref == ref]
    assert len(mine) == 1, f"gateway orders with ref {ref}: {mine}"
    assert str(mine[0].order_id) == ctx.outcome.value


@then(parsers.parse('the adapter tracks exactly one order with order_ref "{ref}"'))
def one_in_adapter(ctx: SimpleNamespace, ref: str) -> None:
    ours = adapter_orders(ctx.api)
    with_ref = [k for k, v in ours.items() if order_ref_of(v) == ref]
    if with_ref:
        assert with_ref == [ctx.outcome.value], with_ref
    assert ctx.outcome.value in ours


@given(parsers.parse('a resting order with order_ref "{ref}" placed by the adapter'))
def resting_with_ref(ctx: SimpleNamespace, ref: str) -> None:
    ctx.extra["persisted"] = place_resting(ctx, ctx.api, ref)


@when("the adapter is replaced by a new one with the same client id")
def replace_adapter(ctx: SimpleNamespace, adapters: Callable[..., Any]) -> None:
    run_with_timeout(ctx.api.close, 15, "close()")
    ctx.api = connect_adapter(ctx, adapters, ctx.client_id)


@when(parsers.parse('the new adapter places the same order with order_ref "{ref}"'))
def new_adapter_places(ctx: SimpleNamespace, ref: str) -> None:
    spread = make_spread(ctx.gw)
    mark_requests(ctx)
    ctx.outcome = timed_call(
        lambda: ctx.api.place_order("AAPL", "LONG", 1, spread, "LIMIT", RESTING_BUY,
                                    order_ref=ref), 20, "place_order")
    assert ctx.outcome.error is None, f"place_order raised {ctx.outcome.error!r}"


@then("the new adapter returned that order's id and reports its status")
def adopted(ctx: SimpleNamespace) -> None:
    assert ctx.outcome.value == ctx.extra["persisted"]
    st = ctx.api.get_order_status(ctx.outcome.value)
    assert st.get("status") in LIVE, st


# ----------------------------------------------------------------------------- auto_reconnect off


@then(parsers.parse("the second adapter reports it is not connected within {seconds:g} seconds"))
def second_not_connected(ctx: SimpleNamespace, seconds: float) -> None:
    wait_for(lambda: ctx.extra["second"].connected is False, seconds, "second adapter down")


@then(parsers.parse("the second adapter is still not connected after {seconds:g} second"))
def second_stays_down(ctx: SimpleNamespace, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert ctx.extra["second"].connected is False, "reconnected although auto_reconnect off"
        time.sleep(0.05)


@when("the second adapter calls connect()")
def second_connects(ctx: SimpleNamespace) -> None:
    ctx.extra["second_ok"] = run_with_timeout(ctx.extra["second"].connect, 20, "connect()")


@then("the second adapter is connected")
def second_connected(ctx: SimpleNamespace) -> None:
    assert ctx.extra["second_ok"] is True
    assert ctx.extra["second"].connected is True


@given(parsers.parse("the second adapter has {count:d} resting orders"))
def second_resting(ctx: SimpleNamespace, count: int) -> None:
    second = ctx.extra["second"]
    ctx.extra["second_orders"] = [place_resting(ctx, second, f"second-{i}", offset=i)
                                  for i in range(count)]


@then(parsers.parse("the second adapter is connected again within {seconds:g} seconds"))
def second_up(ctx: SimpleNamespace, seconds: float) -> None:
    wait_for(lambda: ctx.extra["second"].connected is True, seconds, "second adapter up")


@then("each adapter tracks exactly its own orders")
def own_orders(ctx: SimpleNamespace) -> None:
    second = ctx.extra["second"]
    for api, client_id in ((ctx.api, ctx.client_id), (second, 12)):
        final = assert_orders_agree(api, ctx.gw, client_id)
        mine = {str(o.order_id) for o in final["gateway"]}
        perms = {o.perm_id for o in final["gateway"]}
        extra = {k: v.get("perm_id") for k, v in adapter_orders(api).items()
                 if k not in mine or (v.get("perm_id") and v["perm_id"] not in perms)}
        assert not extra, f"client {client_id} tracks orders that are not its own: {extra}"


@when(parsers.parse("I call {call}() on the reconnecting adapter"))
def stop_while_reconnecting(ctx: SimpleNamespace, call: str) -> None:
    time.sleep(0.3)  # a few failed attempts: the supervisor is in its backoff loop
    ctx.outcome = timed_call(getattr(ctx.api, call), 30, f"{call}()")


@then(parsers.parse("it returned within {seconds:g} seconds"))
def returned_within(ctx: SimpleNamespace, seconds: float) -> None:
    assert ctx.outcome.error is None, repr(ctx.outcome.error)
    assert ctx.outcome.seconds <= seconds, f"took {ctx.outcome.seconds:.2f}s"
    assert ctx.api.connected is False


@then("after the gateway restarts the adapter does not log on again")
def stays_off(ctx: SimpleNamespace) -> None:
    mark_requests(ctx)
    ctx.gw.restart()
    time.sleep(1.5)  # three times the backoff cap: a live supervisor would have logged on
    again = requests_matching(new_requests(ctx), START_API, ctx.client_id)
    assert not again, f"the adapter logged on again after being stopped: {again}"
    assert ctx.api.connected is False


# ----------------------------------------------------------------------------- max attempts


@then(parsers.parse("the second adapter gives up reconnecting after {attempts:d} attempts"))
def gives_up(ctx: SimpleNamespace, attempts: int) -> None:
    second = ctx.extra["second"]
    wait_for(lambda: second.connected is False, 3, "the second adapter to notice the loss")
    wait_for(lambda: not second.connection.reconnecting, 10, "the supervisor to give up")
    assert second.connected is False
    assert len(second.connection.delays) == attempts, second.connection.delays



# ----------------------------------------------------------------------------- late gateway


@when(parsers.parse("a second adapter with client id {cid:d} starts and calls connect() while "
                    "the gateway is down"))
def second_starts_early(ctx: SimpleNamespace, adapters: Callable[..., Any], cid: int,
                        caplog: pytest.LogCaptureFixture) -> None:
    second = adapters(ctx.gw, cid)
    ctx.extra["second"] = second
    ctx.extra["second_cid"] = cid
    ctx.extra["log_from"] = len(caplog.records)
    ctx.outcome = timed_call(second.connect, 20, "connect()")


@then(parsers.parse('that connect() returned False at once and logged "{text}"'))
def connect_failed_at_once(ctx: SimpleNamespace, caplog: pytest.LogCaptureFixture,
                           text: str) -> None:
    assert ctx.outcome.error is None and ctx.outcome.value is False, ctx.outcome
    assert ctx.outcome.seconds < 5.0, f"connect() took {ctx.outcome.seconds:.2f}s"
    messages = [r.getMessage() for r in caplog.records[ctx.extra["log_from"]:]]
    assert any(text in m for m in messages), messages
    assert ctx.extra["second"].connected is False


@then("the second adapter keeps trying to connect")
def keeps_trying(ctx: SimpleNamespace) -> None:
    second = ctx.extra["second"]
    assert second.connection.reconnecting, "no reconnect supervisor after a failed first connect"
    wait_for(lambda: len(second.connection.delays) >= 2, 5, "two reconnect attempts")
    assert second.connected is False


@then(parsers.parse("the second adapter is connected within {seconds:g} seconds"))
def second_connected_within(ctx: SimpleNamespace, seconds: float) -> None:
    wait_for(lambda: ctx.extra["second"].connected, seconds, "the second adapter to connect")
    assert ctx.extra["second"].account_id == ACCOUNT


@then("the second adapter places a resting order that the gateway holds")
def second_places(ctx: SimpleNamespace) -> None:
    second = ctx.extra["second"]
    oid = place_resting(ctx, second, "late-gateway-1")
    wait_for(lambda: second.get_order_status(oid).get("status") in ("Submitted", "PreSubmitted"),
             5, "the order to be working")
    held = [o for o in engine_orders(ctx.gw) if o.order_ref == "late-gateway-1"]
    assert len(held) == 1 and str(held[0].order_id) == oid, held
