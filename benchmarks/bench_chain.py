"""Option chain of AAPL: the adapter vs the seeds' serial approach vs the pacing floor.

Per latency, one gateway. Sizes: 4 expirations × 6 strikes × (C, P) = 48 options (adapter,
seeds' approach, floor) and 12 × 20 × 2 = 480 (adapter and floor only — the seeds' approach
would take minutes: one qualification + 0.1 s poll per option). The adapter's first call on a
fresh connection ("cold": it qualifies everything) is reported alone; the warm figure is the
median of the following calls. Every run is separated by > 1 s so no pacing window (ib_insync's
or the gateway's) carries over. For each run the gateway counts that client's messages, the
pacing violations and the peak of concurrent market-data lines; the floor is computed from the
messages the run actually sent and the phases it actually went through (benchmarks/floor.py).
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import (
    OpStats,
    Probe,
    close_adapter,
    gateway,
    link_legs,
    new_adapter,
    raw_ib,
    timed,
    wait_window,
)
from benchmarks.floor import chain_min_messages, chain_round_trips, floor
from benchmarks.report import Section, Target, median, ratio
from benchmarks.seeds_approach import SeedsApproach

SYMBOL = "AAPL"
SMALL = (4, 6)
LARGE = (12, 20)
FLOOR_RATIO = 1.2
SEEDS_SPEEDUP = 5.0
MAX_LINES = 100


FRESH_MIN = 0.9
#: Local processing allowed on top of the floor (5 ms + 0.1 ms per option returned): an
#: operation that sends nothing (every quote read from live streaming lines) has a floor of 0
#: and no meaningful ratio; against a floor of 1 s and more the allowance is negligible.
SLACK_S = 0.005
SLACK_PER_OPTION_S = 0.0001

class Market:
    """Judges quote freshness: the gateway's underlying price is sampled around the call and
    after every market step during it (one float per step, recorded on the gateway's loop, so
    recording costs the gateway nothing measurable); each returned option's quote is then
    recomputed at those prices on a private copy of the gateway's market (same universe, same
    day) — an option is fresh if its bid/ask is the gateway's quote at one of those instants."""

    def __init__(self, gw: Any) -> None:
        from src.simulator.market import Market as SimMarket
        from src.simulator.market import load_universe

        self.gw = gw
        live = gw.market
        self.scratch = SimMarket(load_universe(), seed=0, clock=live.clock)  # same instant
        self.by_local = {c.local_symbol.replace(" ", ""): c.con_id
                         for c in self.scratch.contracts.values()
                         if c.sec_type == "OPT" and c.symbol == SYMBOL}

    def price(self) -> float:
        live = self.gw.market
        result: float = self.gw.call(lambda: live.stocks[SYMBOL].price)
        return result

    def start_recording(self) -> list[float]:
        live = self.gw.market
        recorded: list[float] = []
        step = live.step

        def recording_step() -> None:
            step()
            recorded.append(live.stocks[SYMBOL].price)

        self.gw.call(setattr, live, "step", recording_step)
        return recorded

    def stop_recording(self) -> None:
        self.gw.call(delattr, self.gw.market, "step")

    def fresh_count(self, options: list[Any], prices: list[float]) -> int:
        scratch = self.scratch
        quotes: list[dict[int, tuple[float, float]]] = []
        for p in prices:
            scratch.set_price(SYMBOL, p)
            quotes.append({})
            for o in options:
                con_id = self.by_local.get(o.symbol.replace(" ", ""))
                if con_id is not None:
                    quotes[-1][con_id] = scratch.quote(con_id)[:2]
        n = 0
        for o in options:
            con_id = self.by_local.get(o.symbol.replace(" ", ""))
            if con_id is not None and any(q.get(con_id) == (o.bid, o.ask) for q in quotes):
                n += 1
        return n


class Run:
    def __init__(self, seconds: float, options: int, stats: OpStats, lat: float, legs: int,
                 fresh: int | None = None):
        self.seconds = seconds
        self.options = options
        self.fresh = fresh
        self.stats = stats
        self.round_trips = chain_round_trips(stats.chain_phases)
        self.floor = floor(stats.messages, self.round_trips, lat, legs)

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "options": self.options,
                "messages": self.stats.messages, "by_kind": self.stats.by_kind,
                "pacing_violations": self.stats.pacing_violations,
                "max_lines": self.stats.max_lines, "round_trips": self.round_trips,
                "floor_s": self.floor.seconds, "fresh": self.fresh}


def _measure(probe: Probe, client_id: int, fn: Any, lat: float, legs: int,
             market: Market | None = None) -> Run:
    """One timed call. With ``market``: freshness samples of the gateway's quotes taken
    ``latency + 5 ms`` before the call, right before it and right after it (a quote read from a
    live line may lag the gateway by the link latency; a cached stale one matches none) and
    after every market step during the call (a pacing-bound call spans several steps)."""
    wait_window()
    prices: list[float] = []
    if market is not None:
        prices.append(market.price())
        time.sleep((lat + 5) / 1000)
        prices.append(market.price())
    recorded = market.start_recording() if market is not None else None
    probe.start()
    try:
        seconds, result = timed(lambda: fn(SYMBOL))
    finally:
        if recorded is not None and market is not None:
            market.stop_recording()
    stats = probe.stop(client_id)
    fresh = None
    if market is not None:
        prices.append(market.price())
        fresh = market.fresh_count(result, prices + (recorded or []))
    return Run(seconds, len(result), stats, lat, legs, fresh)


def _row(lat: float, label: str, runs: list[Run], seeds_s: float | None) -> list[Any]:
    secs = median([r.seconds for r in runs])
    fl = median([r.floor.seconds for r in runs])
    msgs = median([float(r.stats.messages) for r in runs])
    return [f"{lat:g} ms", label, len(runs), min(r.options for r in runs), msgs,
            sum(r.stats.pacing_violations for r in runs), max(r.stats.max_lines for r in runs),
            runs[0].round_trips, secs, fl, ratio(secs, fl) if fl else "n/a",
            ratio(seeds_s, secs) if seeds_s is not None else "",
            (f"{sum(r.fresh for r in runs if r.fresh is not None)}/{sum(r.options for r in runs)}"
             if all(r.fresh is not None for r in runs) else "")]


def run(latencies: list[float], reps: int, seeds_reps: int,
        large_reps: int) -> tuple[list[Section], list[Target]]:
    rows: list[list[Any]] = []
    targets: list[Target] = []
    data: dict[str, Any] = {}
    for lat in latencies:
        with gateway(lat) as gw:
            legs, ping = link_legs(gw, lat)
            probe = Probe(gw)
            market = Market(gw)
            small = new_adapter(gw, CHAIN_EXPIRATIONS=SMALL[0], CHAIN_STRIKES=SMALL[1])
            ib = raw_ib(gw)
            seeds = SeedsApproach(ib, *SMALL)
            cid_small, cid_seeds = int(small.ib.client.clientId), int(ib.client.clientId)
            try:
                cold = _measure(probe, cid_small, small.get_option_chain, lat, legs, market)
                warm: list[Run] = []
                seeds_runs: list[Run] = []
                for rep in range(max(reps, seeds_reps)):
                    order = ("a", "s") if rep % 2 == 0 else ("s", "a")
                    for side in order:
                        if side == "a" and rep < reps:
                            warm.append(_measure(probe, cid_small, small.get_option_chain,
                                                 lat, legs, market))
                        elif side == "s" and rep < seeds_reps:
                            seeds_runs.append(_measure(probe, cid_seeds,
                                                       seeds.get_option_chain,
                                                       lat, legs))
            finally:
                ib.disconnect()
                close_adapter(small)
            large = new_adapter(gw, CHAIN_EXPIRATIONS=LARGE[0], CHAIN_STRIKES=LARGE[1])
            cid_large = int(large.ib.client.clientId)
            try:
                large_cold = _measure(probe, cid_large, large.get_option_chain, lat, legs,
                                      market)
                large_warm = [_measure(probe, cid_large, large.get_option_chain, lat, legs,
                                       market) for _ in range(large_reps)]
            finally:
                close_adapter(large)

        seeds_s = median([r.seconds for r in seeds_runs])
        warm_s = median([r.seconds for r in warm])
        warm_floor = median([r.floor.seconds for r in warm])
        n_small = SMALL[0] * SMALL[1] * 2
        n_large = LARGE[0] * LARGE[1] * 2
        rows.append(_row(lat, "adapter 48, cold (1st call)", [cold], seeds_s))
        rows.append(_row(lat, "adapter 48, warm", warm, seeds_s))
        rows.append(_row(lat, "seeds' serial 48", seeds_runs, seeds_s))
        rows.append(_row(lat, "adapter 480, cold (1st call)", [large_cold], None))
        if large_warm:
            rows.append(_row(lat, "adapter 480, warm", large_warm, None))
        data[f"{lat:g}"] = {
            "legs": legs, "ping_ms": ping,
            "adapter48_cold": cold.as_dict(), "adapter48_warm": [r.as_dict() for r in warm],
            "seeds48": [r.as_dict() for r in seeds_runs],
            "adapter480_cold": large_cold.as_dict(),
            "adapter480_warm": [r.as_dict() for r in large_warm],
            "min_messages_48_cold": chain_min_messages(*SMALL),
            "min_messages_480_cold": chain_min_messages(*LARGE),
        }
        got48 = min(r.options for r in [cold, *warm])
        targets.append(Target(f"chain48 @{lat:g}ms: options returned", got48, "==", n_small,
                              "every adapter run, cold and warm"))
        targets.append(Target(f"chain48 @{lat:g}ms: adapter warm s <= 1.2 x floor (+slack)",
                              warm_s, "<=", FLOOR_RATIO * warm_floor + SLACK_S
                              + SLACK_PER_OPTION_S * n_small,
                              f"{ratio(warm_s, warm_floor):.3f} x floor {warm_floor:.3f} s "
                              f"(cold {cold.seconds:.3f} s = "
                              f"{ratio(cold.seconds, cold.floor.seconds):.2f} x its floor)"))
        targets.append(Target(f"chain48 @{lat:g}ms: seeds / adapter speed-up",
                              ratio(seeds_s, warm_s), ">=", SEEDS_SPEEDUP,
                              f"{seeds_s:.2f} s vs {warm_s:.3f} s "
                              f"(vs cold: {ratio(seeds_s, cold.seconds):.1f} x)"))
        adapter_runs = [cold, *warm, large_cold, *large_warm]
        returned = sum(r.options for r in adapter_runs)
        fresh = sum(r.fresh or 0 for r in adapter_runs)
        targets.append(Target(f"chain @{lat:g}ms: adapter quotes fresh", ratio(fresh, returned),
                              ">=", FRESH_MIN, f"{fresh} of {returned} options, all runs"))
        all_large = [large_cold, *large_warm]
        targets.append(Target(f"chain480 @{lat:g}ms: options returned",
                              min(r.options for r in all_large), "==", n_large, ""))
        targets.append(Target(f"chain480 @{lat:g}ms: pacing violations",
                              sum(r.stats.pacing_violations for r in all_large), "==", 0, ""))
        targets.append(Target(f"chain480 @{lat:g}ms: peak market-data lines",
                              max(r.stats.max_lines for r in all_large), "<=", MAX_LINES, ""))
    section = Section(
        name="chain: AAPL option chain",
        headers=["latency", "run", "n", "options", "messages", "violations", "max lines",
                 "RTs", "seconds", "floor s", "x floor", "seeds/this", "fresh"],
        rows=rows,
        notes=[f"warm = median of {reps} adapter runs after the cold one; seeds' approach: "
               f"median of {seeds_reps} runs, 48 options only (480 would take minutes: it "
               "qualifies and polls one option at a time, >= 0.1 s each); 480 warm: "
               f"{large_reps} run(s); A/B order alternates, > 1 s pause before every run",
               "messages: counted by the gateway for that client during the run; floor = "
               "ceil(max(0, messages - 45) / 45) x 1 s + RTs x link round trip "
               "(RTs from the phases the run went through: qualify stock, secdef+quote, "
               "option details, option quotes)",
               "max lines: gateway-wide peak of concurrent market-data lines during the run "
               "(a snapshot occupies a line while it is served)",
               "fresh: options whose bid/ask equal the gateway's quote at one of the instants "
               "latency + 5 ms before the call, just before it, after every market step "
               "during it (every 0.25 s) and just after it: a quote cached from an earlier "
               "call matches none; >= 90% required",
               "floor target: seconds <= 1.2 x floor + 5 ms + 0.1 ms per option (local "
               "processing; it matters only when a run sends nothing and its floor is 0)"],
        data=data,
    )
    return [section], targets
