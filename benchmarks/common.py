"""What every benchmark shares: the gateway probe (messages, pacing, lines per operation),
client-id allocation, the measured link round trip, adapter construction, timing helpers."""

from __future__ import annotations

import gc
import itertools
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.floor import IB_REQUESTS_INTERVAL
from src.app.config import Config
from src.brokers.compat import IB
from src.simulator import SimulatedGateway

#: Wait between timed runs so that neither ib_insync's sliding throttle window nor the
#: gateway's pacing window carries messages of one run into the next (window = 1 s).
WINDOW_CLEAR_S = IB_REQUESTS_INTERVAL + 0.1

CONNECT_TIMEOUT = 10.0

_client_ids = itertools.count(100)

# incoming message ids
REQ_MKT_DATA, CANCEL_MKT_DATA, REQ_CONTRACT_DETAILS, REQ_SEC_DEF_OPT_PARAMS = 1, 2, 9, 78


def next_client_id() -> int:
    return next(_client_ids)


@contextmanager
def gateway(latency_ms: float, seed: int = 1) -> Iterator[SimulatedGateway]:
    """A fresh simulated gateway with pacing enforced at ``latency_ms`` one-way latency."""
    with SimulatedGateway(port=0, seed=seed, latency_ms=latency_ms, pacing=True) as gw:
        yield gw


@contextmanager
def gateway_with(latency_ms: float, seed: int = 1, **kwargs: Any) -> Iterator[SimulatedGateway]:
    """A fresh simulated gateway (pacing enforced) with extra options (universe, step …)."""
    with SimulatedGateway(port=0, seed=seed, latency_ms=latency_ms, pacing=True,
                          **kwargs) as gw:
        yield gw


def quiet_logging() -> None:
    """Benchmarks measure the code, not the log handlers: WARNING and above only."""
    logging.basicConfig(level=logging.WARNING)
    for name in ("ib_insync", "ib_async", "ibkr", "src"):
        logging.getLogger(name).setLevel(logging.ERROR)


def adapter_config(gw: SimulatedGateway, client_id: int, **changes: Any) -> Config:
    return Config().replace(IBKR_HOST=gw.host, IBKR_PORT=gw.port, IBKR_CLIENT_ID=client_id,
                            IBKR_AUTO_RECONNECT=False, **changes)


def new_adapter(gw: SimulatedGateway, client_id: int | None = None, *, connect: bool = True,
                **changes: Any) -> Any:
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

    api = IBKRIBInsyncApi(adapter_config(gw, client_id or next_client_id(), **changes))
    if connect and not api.connect():
        close_adapter(api)
        raise RuntimeError("adapter failed to connect to the simulated gateway")
    return api


def close_adapter(api: Any) -> None:
    try:
        api.disconnect()
    finally:
        close = getattr(api, "close", None)
        if callable(close):
            close()


def raw_ib(gw: SimulatedGateway, client_id: int | None = None) -> IB:
    ib = IB()
    ib.connect(gw.host, gw.port, clientId=client_id or next_client_id(), timeout=CONNECT_TIMEOUT)
    return ib


def wait_window() -> None:
    time.sleep(WINDOW_CLEAR_S)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


# ---------------------------------------------------------------- gateway probe


@dataclass
class OpStats:
    """What the gateway saw from one client during one operation."""

    messages: int
    pacing_violations: int
    max_lines: int
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def chain_phases(self) -> list[str]:
        phases = []
        if self.by_kind.get("details_STK"):
            phases.append("qualify_stock")
        if self.by_kind.get("secdef") or self.by_kind.get("mktdata_STK"):
            phases.append("secdef_and_quote")
        if self.by_kind.get("details_OPT"):
            phases.append("option_details")
        if self.by_kind.get("mktdata_OPT"):
            phases.append("option_quotes")
        return phases


def _kind(msg_id: int, args: list[str]) -> str:
    if msg_id in (REQ_MKT_DATA, REQ_CONTRACT_DETAILS):
        sec_type = args[4] if len(args) > 4 else "?"
        return ("mktdata_" if msg_id == REQ_MKT_DATA else "details_") + sec_type
    return {CANCEL_MKT_DATA: "cancel_mktdata", REQ_SEC_DEF_OPT_PARAMS: "secdef"}.get(
        msg_id, f"msg_{msg_id}")


class Probe:
    """Counts one client's messages, pacing violations and peak market-data lines per op."""

    def __init__(self, gw: SimulatedGateway) -> None:
        self.gw = gw
        self._start_index = 0
        self._start_violations = 0

    def _reset_peak_lines(self) -> None:
        md = self.gw.runtime.marketdata

        def reset() -> None:
            md.max_lines_seen = len(md.lines)

        self.gw.call(reset)

    def start(self) -> None:
        self._reset_peak_lines()
        self._start_index = len(self.gw.requests)
        self._start_violations = int(self.gw.stats()["pacing_violations"])

    def stop(self, client_id: int) -> OpStats:
        stats = self.gw.stats()
        reqs = self.gw.requests[self._start_index:]
        kinds: dict[str, int] = {}
        n = 0
        for cid, msg_id, args in reqs:
            if cid != client_id:
                continue
            n += 1
            k = _kind(msg_id, args)
            kinds[k] = kinds.get(k, 0) + 1
        return OpStats(messages=n,
                       pacing_violations=int(stats["pacing_violations"]) - self._start_violations,
                       max_lines=int(stats["max_market_data_lines"]), by_kind=kinds)


def client_id_of(api: Any) -> int:
    ib = getattr(api, "ib", api)
    return int(ib.client.clientId)


# ---------------------------------------------------------------- link round trip


def measure_link_rtt_ms(gw: SimulatedGateway, samples: int = 15) -> float:
    """Median round trip of a trivial request (reqCurrentTime) on this link, in ms."""
    ib = raw_ib(gw)
    try:
        ib.reqCurrentTime()  # warm-up
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            ib.reqCurrentTime()
            times.append((time.perf_counter() - t0) * 1000)
        return float(statistics.median(times))
    finally:
        ib.disconnect()


def link_legs(gw: SimulatedGateway, latency_ms: float) -> tuple[int, float]:
    """(one-way delays per round trip, measured ping ms) of the gateway at ``latency_ms``.

    A round trip pays ``2 × latency`` when the gateway delays both directions, ``1 × latency``
    when it delays only its outgoing messages. Which one is measured: a ping at 0 ms and at
    ``latency_ms``, the difference rounded to whole one-way legs (1 or 2).
    """
    if latency_ms <= 0:
        return 2, measure_link_rtt_ms(gw)
    gw.set_latency(0)
    base = measure_link_rtt_ms(gw)
    gw.set_latency(latency_ms)
    loaded = measure_link_rtt_ms(gw)
    legs = max(1, min(2, round((loaded - base) / latency_ms)))
    return legs, loaded


# ---------------------------------------------------------------- wide universe, memory


def wide_universe(stocks: int) -> dict[str, Any]:
    """The packaged universe plus synthetic option-less stocks ``ZB01`` … so that ``stocks``
    symbols in all can stream (the packaged one has 3; a trader watches dozens)."""
    from src.simulator.market import load_universe

    uni = load_universe()
    have = len(uni["stocks"])
    extra = [{"symbol": f"ZB{i:02d}", "con_id": 9_000_000 + i, "primary_exchange": "NYSE",
              "long_name": f"BENCH STOCK {i}", "price": 40.0 + 3 * i, "volatility": 0.3,
              "spread": 0.02} for i in range(1, max(0, stocks - have) + 1)]
    uni["stocks"] = list(uni["stocks"]) + extra
    return uni


def stock_symbols(universe: dict[str, Any]) -> list[str]:
    return [str(s["symbol"]) for s in universe["stocks"]]


def rss_mb() -> float:
    """This process's resident set size (VmRSS of /proc/self/status), in MB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status")
