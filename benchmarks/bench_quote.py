"""get_market_data latency: the adapter vs the seeds' polling approach vs the floor.

Per latency, on one gateway: the adapter (its own client) and the seeds' approach (a plain
synchronous ``IB``, qualify → reqMktData → poll in 0.1 s sleeps → cancel, per call) are called
in interleaved blocks; every call is timed alone. Freshness is checked, not assumed: each
adapter answer's bid/ask is compared with the quotes the gateway had from ``latency + 5 ms``
before the call to its end (:class:`QuoteHistory`; a cached, stale quote fails this).
Floor: 0 pacing (a call sends 1-3 messages) + round trips × link RTT, 1 round trip when the
call sends no contract-details request (conId cached), else 2.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import (
    Probe,
    close_adapter,
    gateway,
    link_legs,
    new_adapter,
    raw_ib,
    wait_window,
)
from benchmarks.floor import floor, quote_round_trips, quote_target_seconds
from benchmarks.report import Section, Target, median, percentile, ratio
from benchmarks.seeds_approach import SeedsApproach

SYMBOL = "AAPL"
BLOCK = 10
SLACK_MS = 5.0
FRESH_MIN = 0.9


class QuoteHistory:
    """The gateway's bid/ask of one contract over a block of calls: sampled ``latency + 5 ms``
    before the block, at its start and at every market step during it (recorded on the
    gateway's loop, stamped just before the step, so a quote is never stamped later than a
    client could have seen it). A result is fresh if it is a quote in effect at some instant
    between ``latency + 5 ms`` before its call and the call's end: a live line lags the gateway
    by the link latency (a block of ten 0.1 ms calls that starts 3 ms after a step at 10 ms
    latency legitimately shows the quote before the step); a cached stale one matches none."""

    def __init__(self, gw: Any, con_id: int, latency_ms: float) -> None:
        self.gw, self.con_id, self.lag = gw, con_id, (latency_ms + 5.0) / 1000
        self.points: list[tuple[float, tuple[float, float]]] = []

    def _now(self) -> tuple[float, tuple[float, float]]:
        at = time.perf_counter()  # stamped before the read, as a step is: never late
        bid, ask, _last = self.gw.call(self.gw.market.quote, self.con_id)
        return at, (bid, ask)

    def start(self) -> None:
        live, con_id = self.gw.market, self.con_id
        self.points = [self._now()]
        time.sleep(self.lag)
        step = live.step

        def recording_step() -> None:
            at = time.perf_counter()
            step()
            self.points.append((at, live.quote(con_id)[:2]))

        self.gw.call(setattr, live, "step", recording_step)
        self.points.append(self._now())

    def stop(self) -> None:
        """Stop recording, with one more sample: the quote right after the block."""
        self.gw.call(delattr, self.gw.market, "step")
        self.points.append(self._now())

    def fresh(self, result: dict[str, Any], started: float, ended: float) -> bool:
        quote, since, points = (result.get("bid"), result.get("ask")), started - self.lag, \
            sorted(self.points)  # a step may land between a sample's stamp and its read
        for i, (at, q) in enumerate(points):
            until = points[i + 1][0] if i + 1 < len(points) else float("inf")
            if q == quote and until >= since and at <= ended:
                return True
        return False


def run(latencies: list[float], calls: int, seeds_calls: int) -> tuple[list[Section], list[Target]]:
    rows: list[list[Any]] = []
    targets: list[Target] = []
    data: dict[str, Any] = {}
    for lat in latencies:
        with gateway(lat) as gw:
            legs, ping_ms = link_legs(gw, lat)
            con_id = gw.market.stocks[SYMBOL].contract.con_id
            api = new_adapter(gw)
            ib = raw_ib(gw)
            seeds = SeedsApproach(ib)
            probe = Probe(gw)
            history = QuoteHistory(gw, con_id, lat)
            try:
                for _ in range(3):  # warm-up (first call may qualify and cache the conId)
                    api.get_market_data(SYMBOL)
                seeds.get_market_data(SYMBOL)
                wait_window()
                a_times: list[float] = []
                s_times: list[float] = []
                errors = fresh = 0
                a_msgs = s_msgs = 0
                a_details = 0
                cid_a = int(api.ib.client.clientId)
                cid_s = int(ib.client.clientId)
                block = 0
                while len(a_times) < calls or len(s_times) < seeds_calls:
                    sides = ["a", "s"] if block % 2 == 0 else ["s", "a"]
                    block += 1
                    for side in sides:
                        if side == "a" and len(a_times) < calls:
                            history.start()
                            probe.start()
                            answers = []
                            for _ in range(min(BLOCK, calls - len(a_times))):
                                t0 = time.perf_counter()
                                res = api.get_market_data(SYMBOL)
                                t1 = time.perf_counter()
                                a_times.append(t1 - t0)
                                answers.append((res, t0, t1))
                            st = probe.stop(cid_a)
                            history.stop()
                            for res, t0, t1 in answers:
                                if "error" in res or res.get("bid") is None:
                                    errors += 1
                                elif history.fresh(res, t0, t1):
                                    fresh += 1
                            a_msgs += st.messages
                            a_details += st.by_kind.get("details_STK", 0)
                        elif side == "s" and len(s_times) < seeds_calls:
                            probe.start()
                            for _ in range(min(BLOCK, seeds_calls - len(s_times))):
                                t0 = time.perf_counter()
                                seeds.get_market_data(SYMBOL)
                                s_times.append(time.perf_counter() - t0)
                            s_msgs += probe.stop(cid_s).messages
            finally:
                ib.disconnect()
                close_adapter(api)
        # a live streaming line answers from memory: no message, no round trip
        rts = 0 if a_msgs == 0 else quote_round_trips(qualified=a_details == 0)
        rtt_ms = legs * lat
        floor_s = floor(round(a_msgs / calls), rts, lat, legs).seconds
        a_med, a_p95 = median(a_times), percentile(a_times, 95)
        s_med, s_p95 = median(s_times), percentile(s_times, 95)
        target_s = quote_target_seconds(lat, legs, 2, SLACK_MS)
        rows.append([f"{lat:g} ms", "adapter", calls, a_msgs / calls, a_med * 1000,
                     a_p95 * 1000, ratio(a_med, floor_s) if floor_s else "n/a",
                     ratio(s_med, a_med), f"{fresh}/{calls - errors}", errors])
        rows.append([f"{lat:g} ms", "seeds' polling", seeds_calls, s_msgs / seeds_calls,
                     s_med * 1000, s_p95 * 1000, ratio(s_med, floor_s) if floor_s else "n/a",
                     1.0, "", ""])
        rows.append([f"{lat:g} ms", f"floor ({rts} RT x {rtt_ms:g} ms)", "", "",
                     floor_s * 1000, "", 1.0, "", "", ""])
        data[f"{lat:g}"] = {"adapter_s": a_times, "seeds_s": s_times, "rtt_ms": rtt_ms,
                            "ping_ms": ping_ms, "legs": legs, "floor_s": floor_s,
                            "round_trips": rts,
                            "errors": errors, "fresh": fresh,
                            "adapter_messages_per_call": a_msgs / calls,
                            "seeds_messages_per_call": s_msgs / seeds_calls}
        targets.append(Target(f"quote @{lat:g}ms: median <= 2 RT + 5 ms (ms)", a_med * 1000,
                              "<=", target_s * 1000,
                              f"p95 {a_p95 * 1000:.2f} ms; link RTT {rtt_ms:g} ms"))
        valid = (calls - errors) / calls
        targets.append(Target(f"quote @{lat:g}ms: calls answered", valid, ">=", 1.0,
                              f"{errors} error(s) of {calls}"))
        targets.append(Target(f"quote @{lat:g}ms: fresh (a gateway quote of the call's window)",
                              fresh / max(1, calls - errors), ">=", FRESH_MIN,
                              f"{fresh} of {calls - errors}"))
    section = Section(
        name="quote: get_market_data latency",
        headers=["latency", "approach", "calls", "msgs/call", "median ms", "p95 ms", "x floor",
                 "seeds/this", "fresh", "errors"],
        rows=rows,
        notes=["interleaved blocks of 10 calls (order alternates), 3 adapter warm-ups and 1 "
               "seeds warm-up first; every call timed alone",
               "link RTT = the gateway's simulated round-trip delay (measured: it delays only "
               "its outgoing messages, so 1 x latency per round trip)",
               "fresh: bid and ask equal a quote the gateway had at some instant between "
               "latency + 5 ms before the call and its end (sampled before and after each "
               "block and at every market step during it: a live line lags the gateway by "
               "the link latency, a cached stale quote matches none; >= 90% required)"],
        data=data,
    )
    return [section], targets
