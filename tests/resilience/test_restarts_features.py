"""Steps of restarts.feature: IB Gateway's daily restart and weekly token reset (simulated by
``gw.daily_restart`` / ``gw.token_reset`` / ``gw.release``, src/simulator/restarts.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pytest_bdd import parsers, scenarios, then, when
from resilience_support import (
    LIVE,
    adapter_orders,
    engine_orders,
    force_fill,
    perm_id_of,
    run_with_timeout,
    status_of,
    wait_for,
)

from src.service.health import health_of

scenarios("restarts.feature")

MODES = {"refused": "refuse", "dropped": "close"}
KEPT_FIELDS = ("id", "symbol", "direction", "contracts", "spread_type", "price_type",
               "limit_price", "submit_time", "order_ref")
#: Gateway-side spacing of two attempts = backoff delay (exactly within [base, cap]: checked on
#: the adapter's side too) + the attempt itself (connect, FIN, abort): a few ms on a quiet
#: machine, up to a few hundred on a loaded 2-core one. An attempt that waited for its connect
#: timeout instead (5 s here) is far beyond the slack.
SPACING_SLACK = 1.0


def _metric(ctx: SimpleNamespace, name: str) -> float:
    return float(ctx.api.metrics.value(name))


def _going_down(ctx: SimpleNamespace) -> None:
    ctx.extra["lost_at_reconnects"] = ctx.api.reconnect_count
    ctx.extra["reconnects_metric_before"] = _metric(ctx, "ib_reconnects_total")
    ctx.extra["records_before"] = adapter_orders(ctx.api)
    ctx.extra["attempts_mark"] = len(ctx.gw.connection_attempts())
    ctx.extra["delays_mark"] = len(ctx.api.connection.delays)


def _down_view(ctx: SimpleNamespace) -> list[str]:
    """What is untrue about the adapter's 'I am down' view right now (empty: all true)."""
    view = health_of(ctx.api)  # what the service's /ready answers from
    wrong = []
    if ctx.api.connected is not False:
        wrong.append(f"connected={ctx.api.connected!r}")
    if _metric(ctx, "ib_connection_status") != 0:
        wrong.append("ib_connection_status != 0")
    if view.connected or not view.reconnecting:
        wrong.append(f"health connected={view.connected} reconnecting={view.reconnecting}")
    if _metric(ctx, "ib_reconnects_total") != ctx.extra["reconnects_metric_before"]:
        wrong.append("a reconnect was counted while the gateway is down")
    return wrong


# ----------------------------------------------------------------------------- the faults


@when(parsers.parse("the gateway restarts for the day with a pause of {pause:g} seconds, "
                    "connections {mode}"))
def daily_restart(ctx: SimpleNamespace, pause: float, mode: str) -> None:
    _going_down(ctx)
    ctx.gw.daily_restart(pause=pause, mode=MODES[mode])


@when(parsers.parse("the gateway's token is reset, connections {mode}"))
def token_reset(ctx: SimpleNamespace, mode: str) -> None:
    _going_down(ctx)
    ctx.gw.token_reset(mode=MODES[mode])


@when("the gateway is released")
def released(ctx: SimpleNamespace) -> None:
    assert ctx.gw.restart_state == "logged_out", "the token reset ended before its release"
    ctx.gw.release()


@when("the gateway fills the first order during the pause")
def fill_during_pause(ctx: SimpleNamespace) -> None:
    assert ctx.gw.restart_state == "restarting", "the pause ended before the fill"
    oid = ctx.resting[0]
    force_fill(ctx.gw, perm_id_of(ctx, oid))
    assert ctx.gw.restart_state == "restarting", "the pause ended during the fill"
    assert ctx.api.connected is False
    ctx.extra["outage_fills"] = [oid]


# ----------------------------------------------------------------------------- while down


@then("the adapter's connection metric is 0 and its health says reconnecting")
def down_view(ctx: SimpleNamespace) -> None:
    wrong = _down_view(ctx)
    assert not wrong, f"while the gateway is down: {wrong}"


@then(parsers.parse("while the gateway drops {count:d} connection attempts the adapter says "
                    "it is down"))
def down_while_dropping(ctx: SimpleNamespace, count: int) -> None:
    mark = ctx.extra["attempts_mark"]
    violations: list[str] = []

    def dropped() -> bool:
        violations.extend(_down_view(ctx))
        attempts = ctx.gw.connection_attempts()[mark:]
        return sum(a.outcome == "dropped" for a in attempts) >= count

    # each attempt must end at once: without that, one waits its whole connect timeout (5 s)
    wait_for(dropped, count * 0.6 + 3, f"{count} dropped connection attempts", interval=0.05)
    assert not violations, f"while the gateway is down: {sorted(set(violations))}"
    assert ctx.gw.restart_state == "logged_out"


@then(parsers.parse("the gateway saw the attempts spaced at least {low:g} and at most {high:g} "
                    "seconds apart"))
def attempts_spaced(ctx: SimpleNamespace, low: float, high: float) -> None:
    attempts = ctx.gw.connection_attempts()[ctx.extra["attempts_mark"]:]
    times = [a.at for a in attempts if a.outcome == "dropped"]
    gaps = [round(b - a, 4) for a, b in zip(times, times[1:], strict=False)]
    assert len(gaps) >= 5, f"too few attempts to measure: {gaps}"
    assert min(gaps) >= low - 0.005, f"attempts faster than the backoff base {low}: {gaps}"
    assert max(gaps) <= high + SPACING_SLACK, f"attempts spaced beyond the cap {high}: {gaps}"
    delays = list(ctx.api.connection.delays)[ctx.extra["delays_mark"]:]
    assert delays and all(low <= d <= high for d in delays), f"backoff delays: {delays}"


@then(parsers.parse("the adapter has waited at least {count:d} backoff delays, each between "
                    "{low:g} and {high:g} seconds"))
def delays_within(ctx: SimpleNamespace, count: int, low: float, high: float) -> None:
    mark = ctx.extra["delays_mark"]
    wait_for(lambda: len(ctx.api.connection.delays) - mark >= count, count * high + 3,
             f"{count} reconnect attempts")
    delays = list(ctx.api.connection.delays)[mark:]
    assert all(low <= d <= high for d in delays), f"delays outside [{low}, {high}]: {delays}"
    assert ctx.api.connected is False and ctx.gw.restart_state == "logged_out"


# ----------------------------------------------------------------------------- after it


@then("the adapter kept its order records through the restart")
def records_kept(ctx: SimpleNamespace) -> None:
    before = ctx.extra["records_before"]
    after = adapter_orders(ctx.api)
    assert set(before) <= set(after), f"records lost: {set(before) - set(after)}"
    for oid, old in before.items():
        new = after[oid]
        changed = {k: (old.get(k), new.get(k)) for k in KEPT_FIELDS if old.get(k) != new.get(k)}
        assert not changed, f"order {oid}'s record changed across the restart: {changed}"


@then("the first order is Filled with its commission, the others still live")
def first_filled(ctx: SimpleNamespace) -> None:
    first, *others = ctx.resting

    def booked() -> bool:
        st = ctx.api.get_order_status(first)
        assert st.get("status") == "Filled" and st.get("filled") == 1, st
        assert st.get("filled_price") is not None and st.get("remaining") in (0, 0.0), st
        executions = {e.get("execution_id") for e in st.get("executions") or []}
        commissions = {c.get("execution_id") for c in st.get("commissions") or []}
        assert executions and executions <= commissions, f"fills without commission: {st}"
        return True

    wait_for(booked, 5, f"order {first}'s fill during the pause to be booked")
    for oid in others:
        assert status_of(ctx.api, oid) in LIVE, ctx.api.get_order_status(oid)


@then("the client library logged no error about the market-data lines the restart ended")
def no_stale_cancel(caplog: pytest.LogCaptureFixture) -> None:
    # after a restart the library has forgotten every line: cancelling one logs an ERROR
    # ("cancelMktData: No reqId found") on every daily restart unless the adapter knows better
    stale = [r.getMessage() for r in caplog.records
             if r.name.startswith(("ib_insync", "ib_async")) and "cancelMktData" in r.getMessage()]
    assert stale == [], stale


@then("the second order can be cancelled after the restart")
def cancel_after(ctx: SimpleNamespace) -> None:
    oid = ctx.resting[1]
    ok = run_with_timeout(lambda: ctx.api.cancel_order(oid), 10, "cancel_order")
    assert ok is True, f"cancel_order({oid}) returned {ok!r}: the order was not re-adopted"

    def cancelled() -> bool:
        at_gw = {o.order_id: o.status for o in engine_orders(ctx.gw, ctx.client_id)}
        assert at_gw.get(int(oid)) == "Cancelled", at_gw.get(int(oid))
        assert status_of(ctx.api, oid) == "Cancelled", ctx.api.get_order_status(oid)
        return True

    wait_for(cancelled, 5, f"order {oid} to be cancelled at the gateway and in the adapter")


@then(parsers.parse("the connection metric is 1 and the reconnect counter {count:d}"))
def metrics_after(ctx: SimpleNamespace, count: int) -> None:
    assert _metric(ctx, "ib_connection_status") == 1
    before = ctx.extra["reconnects_metric_before"]
    assert _metric(ctx, "ib_reconnects_total") == before + count
    view = health_of(ctx.api)
    assert view.connected and not view.reconnecting, view
