"""concurrency.feature: the lock discipline under load — handlers firing while callers hold the
lock, many threads mixing every public call, no torn reads, final state = the gateway's."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pytest_bdd import parsers, scenarios, then, when
from resilience_support import (
    CANCEL_ORDER,
    CROSSING_BUY,
    RESTING_BUY,
    adapter_orders,
    assert_orders_agree,
    assert_positions_agree,
    engine_orders,
    force_fill,
    make_spread,
    mark_requests,
    new_requests,
    record,
    req_fields,
    requests_matching,
    resolve_count,
    round_trip,
    run_with_timeout,
    wait_for,
)

from src.brokers import errors as broker_errors
from src.brokers.base import ORDER_FIELDS, ORDER_STATUSES
from src.brokers.compat import OrderStatus

# The contract's statuses plus IB's transient ones (ib_insync sets PendingCancel itself when it
# sends a cancel; ApiPending comes from the gateway).
IB_STATUSES = (frozenset(ORDER_STATUSES) | OrderStatus.ActiveStates | OrderStatus.DoneStates
               | {"PendingCancel"})

pytestmark = pytest.mark.integration

scenarios("concurrency.feature")

CALL_LIMIT = 30.0  # one public call taking longer than this is a deadlock


def torn(entry: dict[str, Any]) -> str | None:
    """Why ``entry`` (one order's dict) is inconsistent, or None."""
    if not entry:
        return None
    missing = set(ORDER_FIELDS) - set(entry)
    if missing:
        return f"missing fields {sorted(missing)}"
    status = entry["status"]
    if status not in IB_STATUSES:
        return f"unknown status {status!r}"
    contracts = entry["contracts"]
    filled = float(entry.get("filled") or 0)
    if not 0 <= filled <= contracts:
        return f"filled {filled} outside 0..{contracts}"
    if status == "Filled":
        if filled != contracts or float(entry.get("remaining") or 0) != 0:
            return f"Filled with filled={filled} remaining={entry.get('remaining')}"
        if entry.get("filled_price") is None:
            return "Filled without filled_price"
    return None


def live_perm_ids(ctx: SimpleNamespace) -> list[int]:
    return [o.perm_id for o in engine_orders(ctx.gw, ctx.client_id)
            if o.status in ("PreSubmitted", "Submitted")]


# ----------------------------------------------------------------------------- lock held


@when("a caller holds the adapter's lock while the gateway fills a resting order")
def hold_lock_during_fill(ctx: SimpleNamespace) -> None:
    api, gw = ctx.api, ctx.gw
    victim = ctx.resting[0]
    perm = next(o.perm_id for o in engine_orders(gw, ctx.client_id)
                if o.order_id == int(victim))
    seen_inside: list[dict[str, Any]] = []

    def holder() -> None:
        with api.lock:
            force_fill(gw, perm)  # the gateway sends status/executions now
            time.sleep(0.5)  # the loop thread's handlers fire while we hold the lock
            started = time.monotonic()
            seen_inside.append(api.get_order_status(victim))  # re-entrant read
            api.get_positions()
            api.handle_callbacks()
            inside_seconds.append(time.monotonic() - started)

    inside_seconds: list[float] = []
    run_with_timeout(holder, 15, "the lock holder")
    # a read under the caller's own lock must not wait for the loop thread, which is itself
    # waiting for that lock: ending only at the request timeout is a deadlock with a fuse
    assert inside_seconds and inside_seconds[0] < 2.0, (
        f"get_order_status + get_positions under the caller's lock took "
        f"{inside_seconds[0]:.1f}s")
    ctx.extra["victim"] = victim
    ctx.extra["seen_inside"] = seen_inside


@then("the caller released the lock and nothing deadlocked")
def released(ctx: SimpleNamespace) -> None:
    acquired = ctx.api.lock.acquire(timeout=5)
    assert acquired, "the adapter's lock is still held"
    ctx.api.lock.release()
    assert ctx.extra["seen_inside"], "the holder never read the order"
    assert torn(ctx.extra["seen_inside"][0]) is None


@then("the fill shows in the order's status once the lock is free")
def fill_shows(ctx: SimpleNamespace) -> None:
    victim = ctx.extra["victim"]
    wait_for(lambda: ctx.api.get_order_status(victim).get("status") == "Filled", 5,
             f"order {victim} to show Filled")
    assert torn(ctx.api.get_order_status(victim)) is None


@then("a cancel sent while fills arrive returns without deadlock")
def cancel_during_fills(ctx: SimpleNamespace) -> None:
    api, gw = ctx.api, ctx.gw
    to_cancel = ctx.resting[1]
    other = ctx.resting[2]
    perm = next(o.perm_id for o in engine_orders(gw, ctx.client_id) if o.order_id == int(other))
    results: dict[str, Any] = {}

    def cancel() -> None:
        results["cancel"] = api.cancel_order(to_cancel)

    t = threading.Thread(target=cancel, daemon=True)
    t.start()
    force_fill(gw, perm)
    t.join(15)
    assert not t.is_alive(), "cancel_order deadlocked while fills arrived"
    assert results["cancel"] is True
    wait_for(lambda: api.get_order_status(to_cancel).get("status") in
             ("Cancelled", "ApiCancelled"), 5, "the cancel to be confirmed")
    wait_for(lambda: api.get_order_status(other).get("status") == "Filled", 5, "the fill")


# ----------------------------------------------------------------------------- same order


@when(parsers.parse("{n:d} threads cancel the same resting order at once"))
def cancel_same(ctx: SimpleNamespace, n: int) -> None:
    oid = ctx.resting[0]
    mark_requests(ctx)
    barrier = threading.Barrier(n)
    results: list[tuple[Any, float]] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait(5)
        started = time.monotonic()
        value: Any
        try:
            value = ctx.api.cancel_order(oid)
        except Exception as e:  # noqa: BLE001 - reported by the Then steps
            value = e
        with lock:
            results.append((value, time.monotonic() - started))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads), "a cancel_order never returned"
    ctx.extra["cancels"] = results
    ctx.extra["cancelled"] = oid


@then(parsers.parse("every cancel returned within {seconds:g} seconds"))
def cancels_prompt(ctx: SimpleNamespace, seconds: float) -> None:
    results = ctx.extra["cancels"]
    assert all(not isinstance(v, Exception) for v, _ in results), results
    slow = [round(t, 2) for _, t in results if t > seconds]
    assert not slow, f"cancel_order calls took {slow}s (all: {results})"


@then("at least one cancel returned True")
def one_true(ctx: SimpleNamespace) -> None:
    assert any(v is True for v, _ in ctx.extra["cancels"]), ctx.extra["cancels"]


@then("the order is Cancelled at the gateway and in the adapter")
def is_cancelled(ctx: SimpleNamespace) -> None:
    oid = ctx.extra["cancelled"]
    wait_for(lambda: ctx.api.get_order_status(oid).get("status") == "Cancelled", 5,
             "the adapter to show Cancelled")
    theirs = [o for o in engine_orders(ctx.gw, ctx.client_id) if o.order_id == int(oid)]
    assert theirs and theirs[0].status == "Cancelled", theirs


@then("the gateway received at most one cancel for it")
def one_cancel(ctx: SimpleNamespace) -> None:
    oid = ctx.extra["cancelled"]
    sent = [r for r in requests_matching(new_requests(ctx), CANCEL_ORDER, ctx.client_id)
            if oid in req_fields(r)]
    assert len(sent) <= 1, f"{len(sent)} cancelOrder messages for order {oid}"


# ----------------------------------------------------------------------------- same order_ref


@when(parsers.parse('{n:d} threads place the same order with order_ref "{ref}" at once'))
def place_same_ref(ctx: SimpleNamespace, n: int, ref: str) -> None:
    spread = make_spread(ctx.gw, "SPY", "BEAR_PUT")  # legs not qualified yet: the calls overlap
    barrier = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def place() -> Any:
        return ctx.api.place_order("SPY", "LONG", 1, spread, "LIMIT", RESTING_BUY,
                                   order_ref=ref)

    def one() -> None:
        barrier.wait(5)
        try:
            value: Any = place()
        except Exception as e:  # noqa: BLE001 - judged by the Then steps
            value = e
        retried: Any = None
        if isinstance(value, broker_errors.RetryableError):
            try:
                retried = place()
            except Exception as e:  # noqa: BLE001
                retried = e
        with lock:
            results.append((value, retried))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a place_order never returned"
    ctx.extra["same_ref"] = results


@then(parsers.parse('the gateway holds exactly one order with order_ref "{ref}"'))
def one_order(ctx: SimpleNamespace, ref: str) -> None:
    round_trip(ctx)  # a wrongly sent second order has reached the gateway by now
    mine = [o for o in engine_orders(ctx.gw) if o.order_ref == ref]
    assert len(mine) == 1, mine
    ctx.extra["the_order"] = str(mine[0].order_id)


@then("no caller was told the order failed")
def none_failed(ctx: SimpleNamespace) -> None:
    told_failed = [v for v, _ in ctx.extra["same_ref"]
                   if isinstance(v, Exception) and not isinstance(v, broker_errors.RetryableError)]
    assert not told_failed, f"callers told the live order failed: {told_failed}"


@then("every caller ends up with the same order id, retrying a retryable error once")
def same_id_for_all(ctx: SimpleNamespace) -> None:
    ids = [r if isinstance(v, Exception) else v for v, r in ctx.extra["same_ref"]]
    assert ids == [ctx.extra["the_order"]] * len(ids), ctx.extra["same_ref"]


# ----------------------------------------------------------------------------- the soak


class Soak:
    """Worker threads calling every public method at random, plus a gateway driver."""

    def __init__(self, ctx: SimpleNamespace, threads: int, seconds: float,
                 restart_every: float | None = None, daily_restarts: int = 0) -> None:
        self.restart_every = restart_every
        self.daily_restarts = daily_restarts  # IB Gateway's daily restarts (no code, a pause)
        self.outages = bool(restart_every or daily_restarts)
        self.restarts = 0
        self.expected: Counter[str] = Counter()
        self.ctx = ctx
        self.api = ctx.api
        self.threads = threads
        self.seconds = seconds
        self.deadline = 0.0
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.slowest: dict[str, float] = {}
        self.chain_slot = threading.Semaphore(1)
        self.errors: list[str] = []
        self.torn: list[str] = []
        self.ids: list[str] = list(ctx.resting)
        self.in_call: dict[int, tuple[str, float]] = {}
        self.spreads = {
            ("AAPL", "BULL_CALL"): [make_spread(ctx.gw, "AAPL", "BULL_CALL", offset=k)
                                    for k in range(3)],
            ("SPY", "BEAR_PUT"): [make_spread(ctx.gw, "SPY", "BEAR_PUT", offset=k)
                                  for k in range(2)],
        }
        self.placed = 0
        self.max_orders = max(20, int(seconds * 4))
        self.fills_forced = 0

    # one action each; the weights keep heavy calls (chains) rare
    def actions(self) -> list[tuple[float, str, Callable[[random.Random], Any]]]:
        return [
            (12, "get_order_status", self.status),
            (10, "read_orders_under_lock", self.read_orders),
            (8, "get_market_data", lambda r: self.api.get_market_data(
                r.choice(("AAPL", "MSFT", "SPY")))),
            (5, "get_positions", lambda r: self.api.get_positions()),
            (5, "get_account_summary", lambda r: self.api.get_account_summary()),
            (5, "handle_callbacks", lambda r: self.api.handle_callbacks()),
            (3, "get_next_order_id", lambda r: self.api.get_next_order_id()),
            (4, "place_order", self.place),
            (3, "cancel_order", self.cancel),
            (0.4, "get_option_chain", self.chain),
        ]

    def chain(self, r: random.Random) -> None:
        """One chain at a time, as a trader refreshes it: a chain is ~100 messages, and IB's
        pacing (45/s here) is shared by every call — concurrent chains would starve the rest."""
        if not self.chain_slot.acquire(blocking=False):
            return
        try:
            symbol = r.choice(("AAPL", "SPY"))
            chain = self.api.get_option_chain(symbol)
            if not chain and not self.outages:  # the gateway is up all along: a chain
                with self.lock:
                    self.errors.append(f"get_option_chain({symbol}) returned []: "
                                       f"{self.api.last_error!r}")
        finally:
            self.chain_slot.release()

    def status(self, r: random.Random) -> None:
        with self.lock:
            oid = r.choice(self.ids) if self.ids else None
        if oid is None:
            return
        entry = self.api.get_order_status(oid)
        why = torn(entry)
        if why:
            with self.lock:
                self.torn.append(f"{oid}: {why}: {entry}")

    def read_orders(self, r: random.Random) -> None:
        with self.api.lock:
            snapshot = {k: dict(v) for k, v in self.api.orders.items()}
        for oid, entry in snapshot.items():
            why = torn({k: v for k, v in entry.items() if k != "trade"})
            if why:
                with self.lock:
                    self.torn.append(f"{oid} (orders dict): {why}")

    def place(self, r: random.Random) -> None:
        with self.lock:
            if self.placed >= self.max_orders:
                return
            self.placed += 1
            n = self.placed
        symbol, kind = r.choice(list(self.spreads))
        spread = r.choice(self.spreads[(symbol, kind)])
        price = CROSSING_BUY if r.random() < 0.4 else RESTING_BUY
        oid = self.api.place_order(symbol, "LONG", r.randint(1, 3), spread, "LIMIT", price,
                                   order_ref=f"soak-{n}")
        with self.lock:
            self.ids.append(oid)

    def cancel(self, r: random.Random) -> None:
        with self.lock:
            oid = r.choice(self.ids) if self.ids else None
        if oid is not None:
            result = self.api.cancel_order(oid)
            assert isinstance(result, bool), result

    def worker(self, seed: int) -> None:
        r = random.Random(seed)
        actions = self.actions()
        weights = [a[0] for a in actions]
        me = threading.get_ident()
        while time.monotonic() < self.deadline:
            _, name, fn = r.choices(actions, weights)[0]
            with self.lock:
                self.in_call[me] = (name, time.monotonic())
            try:
                fn(r)
            except broker_errors.RetryableError as e:
                # while the gateway is being restarted, place_order may say "not connected" or
                # "interrupted": retryable by design; anything else is a finding
                with self.lock:
                    if self.outages and name == "place_order":
                        self.expected[type(e).__name__] += 1
                    else:
                        self.errors.append(f"{name}: {type(e).__name__}: {e}")
            except Exception as e:  # noqa: BLE001 - every exception is a finding
                with self.lock:
                    self.errors.append(f"{name}: {type(e).__name__}: {e}")
            finally:
                with self.lock:
                    _, since = self.in_call.pop(me, (name, time.monotonic()))
                    self.calls[name] += 1
                    took = time.monotonic() - since
                    self.slowest[name] = max(self.slowest.get(name, 0.0), round(took, 3))
            time.sleep(r.uniform(0, 0.01))

    def driver(self) -> None:
        """Fill a resting order now and then, from the gateway side."""
        r = random.Random(99)
        while time.monotonic() < self.deadline:
            time.sleep(0.3)
            try:
                perms = live_perm_ids(self.ctx)
                if perms and r.random() < 0.5:
                    force_fill(self.ctx.gw, r.choice(perms))
                    self.fills_forced += 1
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.errors.append(f"driver: {type(e).__name__}: {e}")

    def restarter(self) -> None:
        """Kill the gateway every ``restart_every`` seconds; bring it back 0.3 s later."""
        assert self.restart_every
        while time.monotonic() + self.restart_every < self.deadline:
            time.sleep(self.restart_every)
            try:
                self.ctx.gw.kill()
                time.sleep(0.3)
                self.ctx.gw.restart()
                self.restarts += 1
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.errors.append(f"restarter: {type(e).__name__}: {e}")

    def daily_restarter(self) -> None:
        """``daily_restarts`` daily restarts (socket closed with no code, 1 s down, fresh
        sessions), spread evenly over the soak; each waits for the gateway to be back."""
        gap = self.seconds / (self.daily_restarts + 1)
        for k in range(1, self.daily_restarts + 1):
            time.sleep(max(0.0, self.deadline - self.seconds + k * gap - time.monotonic()))
            try:
                self.ctx.gw.daily_restart(pause=1.0)
                wait_for(lambda: self.ctx.gw.restart_state == "up", 10, "the gateway back")
                self.restarts += 1
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.errors.append(f"daily restarter: {type(e).__name__}: {e}")

    def run(self) -> list[str]:
        self.deadline = time.monotonic() + self.seconds
        workers = [threading.Thread(target=self.worker, args=(i,), name=f"soak-{i}",
                                    daemon=True) for i in range(self.threads)]
        workers.append(threading.Thread(target=self.driver, name="soak-driver", daemon=True))
        if self.restart_every:
            workers.append(threading.Thread(target=self.restarter, name="soak-restarter",
                                            daemon=True))
        if self.daily_restarts:
            workers.append(threading.Thread(target=self.daily_restarter, daemon=True,
                                            name="soak-daily-restarter"))
        for t in workers:
            t.start()
        stuck: list[str] = []
        for t in workers:
            t.join(max(0.0, self.deadline - time.monotonic()) + CALL_LIMIT)
            if t.is_alive():
                stuck.append(t.name)
        with self.lock:
            now = time.monotonic()
            stuck += [f"{name} for {now - since:.1f}s" for name, since in self.in_call.values()
                      if now - since > CALL_LIMIT]
        return stuck


@when(parsers.re(r"(?P<threads>.+?) threads mix every public call for (?P<seconds>.+?) seconds "
                 r"while the gateway fills orders(?P<parts> in parts)?"
                 r"(?P<races>, races every other cancel against its fill,?)?"
                 r"(?: and restarts every (?P<every>[0-9.]+) seconds)?"
                 r"(?: and does (?P<daily>[0-9]+) daily restarts)?"))
def soak(ctx: SimpleNamespace, threads: str, seconds: str, every: str | None,
         parts: str | None = None, daily: str | None = None, races: str | None = None) -> None:
    n = resolve_count(threads)
    d = resolve_count(seconds, float)
    if parts:  # partial_fills.feature's switches: parts, executions first, corrections
        ctx.gw.set_fill_rules(partial=True, max_slice=2, exec_before_open_order=True,
                              corrections=True)
    if races:  # cancel_races.feature's race: the fill wins, 10148 after the executions
        ctx.gw.race_cancels(True, every=2)
    s = Soak(ctx, n, d, float(every) if every else None, int(daily or 0))
    sent_before = ctx.gw.stats()["messages_received"].get(ctx.client_id, 0)
    started = time.monotonic()
    stuck = s.run()
    sent = ctx.gw.stats()["messages_received"].get(ctx.client_id, 0) - sent_before
    if s.outages:
        wait_for(lambda: ctx.api.connected is True, 15, "the adapter to reconnect after the soak")
    key = f"soak_{int(d)}s" + ("_in_parts" if parts else "") + ("_racing" if races else "") \
        + (f"_restart_every_{every}s" if every else "") \
        + (f"_{daily}_daily_restarts" if daily else "")
    ctx.extra["soak"] = s
    ctx.extra["stuck"] = stuck
    ctx.extra["soak_key"] = key
    record(key, restarts=s.restarts, expected_retryable=dict(s.expected),
           messages_to_gateway_per_second=round(sent / max(time.monotonic() - started, 1e-9), 1),
           threads=n, seconds=d, wall_seconds=round(time.monotonic() - started, 2),
           calls=sum(s.calls.values()), calls_by_method=dict(s.calls),
           slowest_call_seconds=dict(s.slowest),
           exceptions=len(s.errors), exception_samples=s.errors[:10], torn_reads=len(s.torn),
           deadlocks=len(stuck), orders_placed=s.placed, fills_forced=s.fills_forced,
           orders_filled_in_parts=_filled_in_parts(ctx),
           cancels_lost_to_a_fill=int(ctx.gw.call(lambda: ctx.gw.engine.races.raced)))
    if races:
        ctx.extra["raced"] = ctx.gw.call(lambda: ctx.gw.engine.races.raced)


def _filled_in_parts(ctx: SimpleNamespace) -> int:
    """Gateway orders of the adapter's client with more than one BAG-level execution."""
    def count() -> int:
        parts = Counter(f.perm_id for f in ctx.gw.engine.fills
                        if f.contract.sec_type == "BAG" and f.client_id == ctx.client_id)
        return sum(1 for n in parts.values() if n > 1)

    return int(ctx.gw.call(count))


@then("some cancels lost the race to their fill")
def some_raced(ctx: SimpleNamespace) -> None:
    assert ctx.extra.get("raced", 0) > 0, "no cancel raced a fill: the soak did not test it"


@then("no call raised an unexpected exception and none deadlocked")
def no_errors(ctx: SimpleNamespace) -> None:
    s: Soak = ctx.extra["soak"]
    assert not ctx.extra["stuck"], f"deadlocked: {ctx.extra['stuck']}"
    assert not s.errors, f"{len(s.errors)} exceptions, e.g.:\n" + "\n".join(s.errors[:10])
    assert sum(s.calls.values()) > s.threads, "the soak made almost no calls"


@then("no reader saw a torn order")
def no_torn(ctx: SimpleNamespace) -> None:
    s: Soak = ctx.extra["soak"]
    assert not s.torn, "\n".join(s.torn[:10])


@then("the adapter's orders agree with the gateway's")
def orders_agree(ctx: SimpleNamespace) -> None:
    final = assert_orders_agree(ctx.api, ctx.gw, ctx.client_id, timeout=10)
    at_gateway = {str(o.order_id) for o in final["gateway"]}
    not_sent = Counter(str(e.get("status")) for oid, e in final["adapter"].items()
                       if oid not in at_gateway)
    record(ctx.extra["soak_key"], tracked_not_at_gateway=dict(not_sent))
    record(ctx.extra["soak_key"],
           orders_at_gateway=len(final["gateway"]), orders_tracked=len(adapter_orders(ctx.api)),
           orders_lost=len(final["lost"]),
           orders_duplicated=sum(len(v) - 1 for v in final["duplicated_refs"].values()))


@then("the gateway saw no pacing violation")
def no_pacing(ctx: SimpleNamespace) -> None:
    violations = ctx.gw.stats()["pacing_violations"]
    record(ctx.extra["soak_key"], pacing_violations=violations)
    assert violations == 0, f"{violations} pacing violations (IB disconnects a client for that)"


@then("the adapter's positions agree with the gateway's")
def positions_agree(ctx: SimpleNamespace) -> None:
    positions = assert_positions_agree(ctx.api, ctx.gw, timeout=10)
    record(ctx.extra["soak_key"], positions=len(positions))


@then(parsers.parse("the gateway restarted for the day {count:d} times"))
def daily_restarts_done(ctx: SimpleNamespace, count: int) -> None:
    s: Soak = ctx.extra["soak"]
    record(ctx.extra["soak_key"], daily_restarts=s.restarts)
    assert s.daily_restarts == count and s.restarts == count, (
        f"{s.restarts} of {count} daily restarts done")
