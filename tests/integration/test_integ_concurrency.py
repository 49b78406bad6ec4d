"""Eight threads (none with an event loop) use one adapter at once; every result is right."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from integ_support import (
    AAPL_CON_ID,
    ACCOUNT,
    bear_put,
    bull_call,
    sim_status,
    wait_until,
)

NOT_MARKETABLE = 0.05


def _quote_ok(d: dict[str, Any], symbol: str) -> None:
    assert "error" not in d, d
    assert d["symbol"] == symbol
    assert 0 < d["bid"] < d["ask"], d


def _chain_ok(options: list[Any], symbol: str) -> None:
    assert len(options) == 48, len(options)
    assert {o.underlying for o in options} == {symbol}
    assert sum(o.option_type == "call" for o in options) == 24
    assert all(o.rho == 0.0 for o in options)
    assert all(o.implied_volatility > 0 and (o.delta >= 0) == (o.option_type == "call")
               for o in options)  # model-true for any inputs: call delta in [0, 1], put [-1, 0]


def test_eight_threads_call_the_api_concurrently(gateway: Any, api: Any) -> None:
    gateway.call(gateway.engine.inject_position, ACCOUNT, AAPL_CON_ID, 42, 200.0)
    wait_until(lambda: (r := api.get_positions().get("AAPL")) and r["quantity"] == 42,
               what="AAPL 42")
    call_spread = bull_call(gateway, expiry_index=1)
    put_spread = bear_put(gateway, expiry_index=2)
    cid = api.test_client_id

    def quotes_aapl() -> None:
        for _ in range(3):
            _quote_ok(api.get_market_data("AAPL"), "AAPL")

    def quotes_others() -> None:
        for sym in ("MSFT", "SPY", "MSFT"):
            _quote_ok(api.get_market_data(sym), sym)

    def chain_aapl() -> None:
        _chain_ok(api.get_option_chain("AAPL"), "AAPL")

    def chain_spy() -> None:
        _chain_ok(api.get_option_chain("SPY"), "SPY")

    def limit_order_and_cancel() -> None:
        oid = api.place_order("AAPL", "LONG", 1, call_spread, "LIMIT", NOT_MARKETABLE)
        st = api.get_order_status(oid)
        assert st["id"] == oid and st["spread_type"] == "BULL_CALL"
        wait_until(lambda: sim_status(gateway, cid, oid) in ("PreSubmitted", "Submitted"),
                   what="order working at the gateway")
        assert api.cancel_order(oid) is True
        wait_until(lambda: api.get_order_status(oid)["status"] == "Cancelled", what="Cancelled")

    def market_order_filled() -> None:
        oid = api.place_order("AAPL", "LONG", 1, put_spread, "MARKET")
        st = wait_until(lambda: (s := api.get_order_status(oid))["status"] == "Filled" and s,
                        what="Filled")
        assert st["filled"] == 1 and st["remaining"] == 0 and st["executions"]

    def summaries() -> None:
        for _ in range(3):
            s = api.get_account_summary()
            assert "error" not in s, s
            assert s["account_id"] == ACCOUNT
            assert isinstance(s["net_liquidation"], float)

    def positions_and_statuses() -> None:
        for _ in range(3):
            p = api.get_positions()
            assert p["AAPL"]["account"] == ACCOUNT
            assert api.get_order_status("987654") == {}
            api.handle_callbacks()

    jobs: list[Callable[[], None]] = [
        quotes_aapl, quotes_others, chain_aapl, chain_spy, limit_order_and_cancel,
        market_order_filled, summaries, positions_and_statuses,
    ]
    barrier = threading.Barrier(len(jobs))
    errors: dict[str, BaseException] = {}
    loops: dict[str, bool] = {}

    def runner(job: Callable[[], None]) -> None:
        try:
            try:
                asyncio.get_event_loop()
                loops[job.__name__] = True
            except RuntimeError:
                loops[job.__name__] = False
            barrier.wait(10)
            job()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors[job.__name__] = e

    threads = [threading.Thread(target=runner, args=(j,), name=j.__name__, daemon=True)
               for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(45)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads did not finish (deadlock?): {stuck}"
    assert not any(loops.values()), loops
    assert not errors, {k: repr(v) for k, v in errors.items()}
    # Two chains, quotes and orders at once stayed inside IB's 50 messages/s.
    assert gateway.stats()["pacing_violations"] == 0
    gateway.call(gateway.engine.inject_position, ACCOUNT, AAPL_CON_ID, 0, 0.0)
