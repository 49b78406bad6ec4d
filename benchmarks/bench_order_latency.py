"""Order latency under load: ``place_order`` → acknowledged by the gateway, idle vs loaded.

``place_order`` returns when the adapter has seen the order's first gateway status
(PreSubmitted/Submitted: ``OrderService._await_ack`` waits on the orderStatus event), so the
wall time of the call is the latency a caller sees from "place" to "acknowledged" — it includes
the hop to the adapter's loop thread, ib_insync's throttle queue and the link. Every sample is
checked: the order's status is Submitted/PreSubmitted right after the call.

One adapter, one gateway per latency (pacing enforced, a universe of ``STREAMS`` stocks), the
gateway in a child process (``benchmarks/sim_process.py``) as a real one is: in this process it
would compete with the adapter for the GIL while it prices 480 snapshots and 50 streams.
Rounds alternate idle / loaded (I L L I I L …), ``rounds`` of each:

* **idle**: no stream, no chain — orders alone;
* **loaded**: ``STREAMS`` stock streams open and ticking (market step ``STEP`` s) and a
  480-option chain (12 expirations × 20 strikes × C/P, snapshots through the bulk pacer)
  running in another thread; orders are placed while the chain runs (a sample taken after
  the chain ended is not counted).

Orders are resting spread limits (never filled), ``SPACING`` s apart — fewer than the 5 slots
a second the bulk pacer leaves free (one at a time: this measures latency, not throughput);
each round cancels its orders afterwards, untimed. Goal: loaded p99 ≤ idle p99 + one pacing
slot of the bulk pacer (1 / 40 s = 25 ms), on the medians of the per-round p99s.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import (
    close_adapter,
    new_adapter,
    stock_symbols,
    wait_window,
    wide_universe,
)
from benchmarks.report import Section, Target, median, percentile
from benchmarks.sim_process import GatewayProcess
from src.utils.clock import trading_date

STREAMS = 50
LARGE = (12, 20)
STEP = 0.1
SPACING = 0.25
ACKED = frozenset({"PreSubmitted", "Submitted"})


def _spread() -> Any:
    from benchmarks.bench_events import _spread as spread

    return spread()


class Rounds:
    def __init__(self, api: Any, symbols: list[str], orders: int) -> None:
        self.api = api
        self.symbols = symbols
        self.orders = orders
        self.spread = _spread()
        self.idle: list[list[float]] = []
        self.loaded: list[list[float]] = []
        self.chain_seconds: list[float] = []
        self.chain_options: list[int] = []
        self.not_acked = 0

    def _place(self) -> tuple[float, str]:
        t0 = time.perf_counter()
        order_id = self.api.place_order("AAPL", "LONG", 1, self.spread, "LIMIT", 0.05)
        seconds = time.perf_counter() - t0
        if self.api.get_order_status(order_id).get("status") not in ACKED:
            self.not_acked += 1
        return seconds, order_id

    def _cancel(self, ids: list[str]) -> None:
        for order_id in ids:
            self.api.cancel_order(order_id)

    def _streams(self, on: bool) -> None:
        api = self.api
        if on:
            for sym in self.symbols:
                api.get_market_data(sym)
        else:
            for sym in self.symbols:
                api._loop.call(api.market_service.unsubscribe, sym)

    def quiet(self) -> None:
        """Wait until ib_insync's throttle queue is empty (the stream and cancel requests of
        the previous round sent), then one window: every round starts from a clear line."""
        client = self.api.ib.client
        deadline = time.perf_counter() + 30
        while self.api._loop.call(lambda: len(client._msgQ)) and time.perf_counter() < deadline:
            time.sleep(0.05)
        wait_window()

    def idle_round(self) -> None:
        self.quiet()
        samples, ids = [], []
        for _ in range(self.orders):
            s, oid = self._place()
            samples.append(s)
            ids.append(oid)
            time.sleep(SPACING)
        self.idle.append(samples)
        self._cancel(ids)

    def loaded_round(self) -> None:
        self.quiet()
        self._streams(True)
        self.quiet()  # the streams' requests out of the window: the chain starts clean
        result: list[Any] = []
        t_chain = time.perf_counter()

        def chain() -> None:
            result.extend(self.api.get_option_chain("AAPL"))
            self.chain_seconds.append(time.perf_counter() - t_chain)

        thread = threading.Thread(target=chain, daemon=True)
        thread.start()
        time.sleep(1.0)  # the chain's details are out; its quote requests fill the window
        samples, ids = [], []
        for _ in range(self.orders):
            if not thread.is_alive():
                break
            s, oid = self._place()
            ids.append(oid)
            if thread.is_alive():
                samples.append(s)
            time.sleep(SPACING)
        thread.join()
        self.chain_options.append(len(result))
        self.loaded.append(samples)
        self._streams(False)
        self._cancel(ids)


def _stats(rounds: list[list[float]]) -> dict[str, Any]:
    p50 = [percentile(r, 50) * 1000 for r in rounds if r]
    p99 = [percentile(r, 99) * 1000 for r in rounds if r]
    pooled = [s * 1000 for r in rounds for s in r]
    return {"p50_ms": p50, "p99_ms": p99, "samples": sum(len(r) for r in rounds),
            "median_p50_ms": median(p50), "median_p99_ms": median(p99),
            "pooled_p50_ms": percentile(pooled, 50), "pooled_p99_ms": percentile(pooled, 99),
            "all_ms": pooled}


def run(latencies: list[float], rounds: int, orders: int
        ) -> tuple[list[Section], list[Target]]:
    universe = wide_universe(STREAMS)
    symbols = stock_symbols(universe)[:STREAMS]
    rows: list[list[Any]] = []
    targets: list[Target] = []
    data: dict[str, Any] = {}
    for lat in latencies:
        with tempfile.TemporaryDirectory() as tmp, \
                GatewayProcess(step_seconds=STEP, universe=Path(tmp) / "u.yaml",
                               latency_ms=lat) as gw:
            assert gw.universe is not None
            gw.universe.write_text(yaml.safe_dump(universe), encoding="utf-8")
            gw.start(trading_date())
            api = new_adapter(gw, CHAIN_EXPIRATIONS=LARGE[0], CHAIN_STRIKES=LARGE[1],
                              IBKR_MAX_STREAMS=STREAMS)
            try:
                r = Rounds(api, symbols, orders)
                r._place()  # warm-up: the legs are qualified once, then cached
                for rep in range(rounds):
                    for side in (("idle", "loaded") if rep % 2 == 0 else ("loaded", "idle")):
                        (r.idle_round if side == "idle" else r.loaded_round)()
                slot_ms = 1000.0 / api.market_service.pacer.rate
            finally:
                close_adapter(api)
        idle, loaded = _stats(r.idle), _stats(r.loaded)
        for name, st in (("idle", idle), ("loaded: 480 chain + 50 streams", loaded)):
            rows.append([f"{lat:g} ms", name, len(st["p99_ms"]), st["samples"],
                         st["median_p50_ms"], f"{min(st['p50_ms']):.1f}..{max(st['p50_ms']):.1f}",
                         st["median_p99_ms"], f"{min(st['p99_ms']):.1f}..{max(st['p99_ms']):.1f}",
                         st["pooled_p99_ms"]])
        data[f"{lat:g}"] = {"idle": idle, "loaded": loaded, "slot_ms": slot_ms,
                            "chain_seconds": r.chain_seconds, "chain_options": r.chain_options,
                            "not_acked": r.not_acked}
        bound = idle["median_p99_ms"] + slot_ms
        targets.append(Target(f"order latency @{lat:g}ms: loaded p99 <= idle p99 + 1 slot (ms)",
                              loaded["median_p99_ms"], "<=", bound,
                              f"idle p99 {idle['median_p99_ms']:.1f} ms + slot {slot_ms:.0f} ms;"
                              f" p50 {idle['median_p50_ms']:.1f} vs "
                              f"{loaded['median_p50_ms']:.1f} ms; chains "
                              f"{min(r.chain_options)} options, "
                              f"{median(r.chain_seconds):.1f} s"))
        targets.append(Target(f"order latency @{lat:g}ms: orders acknowledged", r.not_acked,
                              "==", 0, "status Submitted/PreSubmitted right after place_order"))
    section = Section(
        name="order latency: place_order -> acknowledged, idle vs loaded",
        headers=["latency", "round", "rounds", "samples", "p50 ms (median)", "p50 spread",
                 "p99 ms (median)", "p99 spread", "p99 pooled"],
        rows=rows,
        notes=[f"{orders} orders a round, {SPACING:g} s apart; rounds interleaved I L L I ...; "
               "spread = min..max over rounds; latency = wall time of place_order(), which "
               "returns once the adapter has seen the gateway's first status (orderStatus "
               "event), verified Submitted after every call",
               f"loaded: {STREAMS} stock streams ticking every {STEP:g} s and a 480-option "
               "chain (snapshots, bulk pacer at max_rate - 5 = 40/s) running in another "
               "thread; samples only while the chain runs",
               "target: median of the loaded rounds' p99 <= median of the idle rounds' p99 "
               "+ one bulk-pacer slot (1/40 s)"],
        data=data,
    )
    return [section], targets
