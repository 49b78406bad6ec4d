"""Retention (src/brokers/retention.py): finished-and-old records are released from the
adapter's and ib_insync's tables; open ones and today's stay; idle tickers age out."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from src.brokers.compat import Contract, Execution, Fill, Order, OrderStatus, Ticker, Trade
from src.brokers.retention import (
    RetentionHook,
    RetentionPolicy,
    expired,
    expired_legs,
    idle_tickers,
    stamp_finished,
    table_sizes,
)
from src.utils.clock import FixedClock

MON = date(2026, 12, 7)


def test_stamp_finished_stamps_once_and_forgets_reopened_or_gone() -> None:
    stamps: dict[str, date] = {}
    stamp_finished({"1": "Filled", "2": "Submitted", "3": "Cancelled"}, stamps, MON)
    assert stamps == {"1": MON, "3": MON}
    later = MON + timedelta(days=2)
    stamp_finished({"1": "Filled", "2": "Inactive", "3": "Submitted"}, stamps, later)
    assert stamps == {"1": MON, "2": later}  # 1 keeps its first stamp; 3 reopened
    stamp_finished({"2": "Inactive"}, stamps, later)
    assert stamps == {"2": later}


@pytest.mark.parametrize(("days", "released"), [(0, ["a", "b"]), (1, ["a"]), (2, [])])
def test_expired_never_releases_today(days: int, released: list[str]) -> None:
    today = MON + timedelta(days=2)
    stamps = {"a": MON, "b": MON + timedelta(days=1), "c": today}
    assert sorted(expired(stamps, today, days)) == released


def test_idle_tickers_age_from_first_idle_sweep() -> None:
    live_t, idle_t = Ticker(), Ticker()
    tickers = {1: live_t, 2: idle_t}
    since: dict[int, datetime] = {}
    t0 = datetime(2026, 12, 7, 15, tzinfo=UTC)
    assert idle_tickers(tickers, [live_t], since, t0, 60) == []
    assert since == {2: t0}
    assert idle_tickers(tickers, [live_t], since, t0 + timedelta(seconds=59), 60) == []
    assert idle_tickers(tickers, [live_t], since, t0 + timedelta(seconds=60), 60) == [2]
    # a ticker that is live again is forgotten; it ages from scratch when idle again
    assert idle_tickers(tickers, [live_t, idle_t], since, t0 + timedelta(hours=1), 60) == []
    assert since == {}


def test_expired_legs_are_options_expired_before_today() -> None:
    con_ids = {("AAPL", "20261204", 230.0, "C"): 1, ("AAPL", "20261207", 230.0, "C"): 2,
               ("AAPL", "20261211", 235.0, "P"): 3}
    assert expired_legs(con_ids, MON) == [("AAPL", "20261204", 230.0, "C")]


def test_policy_rejects_bad_settings_naming_the_key() -> None:
    with pytest.raises(ValueError, match="order_retention_days"):
        RetentionPolicy(order_days=-1)
    with pytest.raises(ValueError, match="ticker_retention"):
        RetentionPolicy(ticker_seconds=-1.0)
    with pytest.raises(ValueError, match="retention_sweep"):
        RetentionPolicy(sweep_seconds=0.0)


# ---------------------------------------------------------------- the hook on real tables


def _trade(order_id: int, perm: int, status: str) -> Trade:
    order = Order(orderId=order_id, clientId=7, permId=perm, orderRef=f"ref-{order_id}")
    return Trade(contract=Contract(secType="BAG", symbol="AAPL"), order=order,
                 orderStatus=OrderStatus(orderId=order_id, status=status))


def _fill(order_id: int, perm: int) -> Fill:
    ex = Execution(execId=f"e{order_id}", orderId=order_id, clientId=7, permId=perm)
    return Fill(Contract(), ex, None, datetime(2026, 12, 7, tzinfo=UTC))  # type: ignore[arg-type]


def _api(clock: FixedClock, statuses: dict[str, str]) -> Any:
    trades = {oid: _trade(int(oid), 1000 + int(oid), st) for oid, st in statuses.items()}
    wrapper = SimpleNamespace(
        trades={(7, int(oid)): t for oid, t in trades.items()},
        permId2Trade={t.order.permId: t for t in trades.values()},
        fills={f"e{oid}": _fill(int(oid), 1000 + int(oid)) for oid in statuses},
        tickers={}, reqId2Ticker={}, pendingTickers=set())
    service = SimpleNamespace(
        trades=dict(trades), _by_trade={id(t): oid for oid, t in trades.items()},
        refs={f"ref-{oid}": oid for oid in statuses}, errors={oid: [] for oid in statuses},
        con_ids={})
    orders = {oid: {"id": oid, "status": st, "order_ref": f"ref-{oid}"}
              for oid, st in statuses.items()}
    return SimpleNamespace(clock=clock, lock=threading.RLock(), orders=orders,
                           order_service=service, ib=SimpleNamespace(wrapper=wrapper),
                           closing=False)


def test_hook_releases_finished_and_old_keeps_open_and_today() -> None:
    clock = FixedClock.new_york(MON)
    api = _api(clock, {"1": "Filled", "2": "Submitted", "3": "Cancelled"})
    hook = RetentionHook(api, RetentionPolicy(order_days=1))
    assert hook.sweep().orders == 0  # day 0: stamped, nothing released
    clock.advance(timedelta(days=1))
    api.orders["4"] = {"id": "4", "status": "Filled", "order_ref": "ref-4"}  # finished today
    api.order_service.refs["ref-4"] = "4"
    day1 = hook.sweep()
    assert day1.orders == 0  # yesterday's are within the 1-day retention ...
    assert day1.unlinked == 2  # ... kept as records, without ib_insync's Trade objects
    assert sorted(api.orders) == ["1", "2", "3", "4"]
    assert sorted(api.order_service.trades) == ["2"]  # the open one keeps its live Trade
    clock.advance(timedelta(days=1))
    released = hook.sweep()
    assert released.orders == 2 and released.ib_trades == 2 and released.ib_fills == 2
    assert sorted(api.orders) == ["2", "4"]  # the open one and the one finished yesterday
    svc, w = api.order_service, api.ib.wrapper
    assert sorted(svc.trades) == ["2"] and len(svc._by_trade) == 1  # 4's stays unlinked
    assert sorted(svc.refs) == ["ref-2", "ref-4"] and sorted(svc.errors) == ["2"]
    assert sorted(w.trades) == [(7, 2)] and sorted(w.permId2Trade) == [1002]
    assert sorted(w.fills) == ["e2"]
    assert sorted(hook.order_stamps) == ["4"]


def test_hook_keeps_ib_trades_an_adapter_order_still_holds() -> None:
    clock = FixedClock.new_york(MON)
    api = _api(clock, {"1": "Filled"})
    hook = RetentionHook(api, RetentionPolicy(order_days=5))
    hook.sweep()
    # an ib_insync trade of another order (not the adapter's), done: it ages on its own
    other = _trade(9, 1009, "Cancelled")
    api.ib.wrapper.trades[(7, 9)] = other
    hook.sweep()
    clock.advance(timedelta(days=6))
    api.orders["1"]["status"] = "Submitted"  # (a modified order reopened: kept)
    released = hook.sweep()
    assert released.orders == 0
    assert (7, 1) in api.ib.wrapper.trades  # held by the adapter's order 1
    assert (7, 9) not in api.ib.wrapper.trades


def test_hook_releases_idle_tickers_and_expired_legs() -> None:
    clock = FixedClock.new_york(MON)
    api = _api(clock, {})
    live, idle = Ticker(), Ticker()
    api.ib.wrapper.tickers.update({1: live, 2: idle})
    api.ib.wrapper.reqId2Ticker[42] = live
    api.ib.wrapper.pendingTickers.add(idle)
    api.order_service.con_ids.update({("AAPL", "20261204", 230.0, "C"): 1,
                                      ("AAPL", "20261211", 230.0, "C"): 2})
    hook = RetentionHook(api, RetentionPolicy(ticker_seconds=300))
    first = hook.sweep()
    assert first.tickers == 0 and first.legs == 1
    clock.advance(timedelta(seconds=300))
    assert hook.sweep().tickers == 1
    assert list(api.ib.wrapper.tickers) == [1] and not api.ib.wrapper.pendingTickers
    assert list(api.order_service.con_ids) == [("AAPL", "20261211", 230.0, "C")]


def test_hook_caps_the_backoff_delays_list() -> None:
    api = _api(FixedClock.new_york(MON), {})
    api.connection = SimpleNamespace(delays=[float(i) for i in range(250)])
    RetentionHook(api, RetentionPolicy()).sweep()
    assert api.connection.delays == [float(i) for i in range(150, 250)]


def test_hook_sweeps_on_connect_and_then_periodically() -> None:
    clock = FixedClock.new_york(MON)
    api = _api(clock, {"1": "Filled"})
    hook = RetentionHook(api, RetentionPolicy(order_days=0, sweep_seconds=0.01))

    async def scenario() -> None:
        hook.after_connect()  # stamps order 1 today
        clock.advance(timedelta(days=1))
        for _ in range(200):
            if not api.orders:
                break
            await asyncio.sleep(0.01)  # the periodic sweep runs on this loop
        hook.stop()

    asyncio.run(scenario())
    assert api.orders == {}


def test_table_sizes_covers_adapter_and_ib_tables() -> None:
    clock = FixedClock.new_york(MON)
    api = _api(clock, {"1": "Filled", "2": "Submitted"})
    sizes = table_sizes(api)
    assert sizes["adapter.orders"] == 2
    assert sizes["orders_service.trades"] == 2
    assert sizes["ib.trades"] == 2 and sizes["ib.fills"] == 2 and sizes["ib.tickers"] == 0


def test_adapter_takes_its_policy_from_the_config() -> None:
    from src.app.config import Config
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

    api = IBKRIBInsyncApi(Config().replace(IBKR_ORDER_RETENTION_DAYS=3,
                                           IBKR_TICKER_RETENTION=120.0,
                                           IBKR_RETENTION_SWEEP=30.0))
    try:
        assert api.retention.policy == RetentionPolicy(3, 120.0, 30.0)
        # the hook works on this adapter's own tables and session, not on the facade
        assert api.retention.api is not api
        assert api.retention.api.orders is api.orders and api.retention.api.ib is api.ib
    finally:
        api.close()
