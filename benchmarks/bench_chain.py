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


class Run:
    def __init__(self, seconds: float, options: int, stats: OpStats, lat: float, legs: int):
        self.seconds = seconds
        self.options = options
        self.stats = stats
        self.round_trips = chain_round_trips(stats.chain_phases)
        self.floor = floor(stats.messages, self.round_trips, lat, legs)

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "options": self.options,
                "messages": self.stats.messages, "by_kind": self.stats.by_kind,
                "pacing_violations": self.stats.pacing_violations,
                "max_lines": self.stats.max_lines, "round_trips": self.round_trips,
                "floor_s": self.floor.seconds}


def _measure(probe: Probe, client_id: int, fn: Any, lat: float, legs: int) -> Run:
    wait_window()
    probe.start()
    seconds, result = timed(lambda: fn(SYMBOL))
    stats = probe.stop(client_id)
    return Run(seconds, len(result), stats, lat, legs)


def _row(lat: float, label: str, runs: list[Run], seeds_s: float | None) -> list[Any]:
    secs = median([r.seconds for r in runs])
    fl = median([r.floor.seconds for r in runs])
    msgs = median([float(r.stats.messages) for r in runs])
    return [f"{lat:g} ms", label, len(runs), min(r.options for r in runs), msgs,
            sum(r.stats.pacing_violations for r in runs), max(r.stats.max_lines for r in runs),
            runs[0].round_trips, secs, fl, ratio(secs, fl),
            ratio(seeds_s, secs) if seeds_s is not None else ""]


def run(latencies: list[float], reps: int, seeds_reps: int,
        large_reps: int) -> tuple[list[Section], list[Target]]:
    rows: list[list[Any]] = []
    targets: list[Target] = []
    data: dict[str, Any] = {}
    for lat in latencies:
        with gateway(lat) as gw:
            legs, ping = link_legs(gw, lat)
            probe = Probe(gw)
            small = new_adapter(gw, CHAIN_EXPIRATIONS=SMALL[0], CHAIN_STRIKES=SMALL[1])
            ib = raw_ib(gw)
            seeds = SeedsApproach(ib, *SMALL)
            cid_small, cid_seeds = int(small.ib.client.clientId), int(ib.client.clientId)
            try:
                cold = _measure(probe, cid_small, small.get_option_chain,
                                lat, legs)
                warm: list[Run] = []
                seeds_runs: list[Run] = []
                for rep in range(max(reps, seeds_reps)):
                    order = ("a", "s") if rep % 2 == 0 else ("s", "a")
                    for side in order:
                        if side == "a" and rep < reps:
                            warm.append(_measure(probe, cid_small,
                                                 small.get_option_chain,
                                                 lat, legs))
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
                large_cold = _measure(probe, cid_large, large.get_option_chain,
                                      lat, legs)
                large_warm = [_measure(probe, cid_large, large.get_option_chain,
                                       lat, legs) for _ in range(large_reps)]
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
        targets.append(Target(f"chain48 @{lat:g}ms: adapter warm / floor", ratio(warm_s,
                              warm_floor), "<=", FLOOR_RATIO,
                              f"{warm_s:.3f} s vs floor {warm_floor:.3f} s "
                              f"(cold {cold.seconds:.3f} s = "
                              f"{ratio(cold.seconds, cold.floor.seconds):.2f} x its floor)"))
        targets.append(Target(f"chain48 @{lat:g}ms: seeds / adapter speed-up",
                              ratio(seeds_s, warm_s), ">=", SEEDS_SPEEDUP,
                              f"{seeds_s:.2f} s vs {warm_s:.3f} s "
                              f"(vs cold: {ratio(seeds_s, cold.seconds):.1f} x)"))
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
                 "RTs", "seconds", "floor s", "x floor", "seeds/this"],
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
               "(a snapshot occupies a line while it is served)"],
        data=data,
    )
    return [section], targets
