"""Connect time: the adapter's ``connect()`` vs raw ib_insync ``IB.connect`` (same gateway).

Each sample is a fresh client id and a fresh object; the two sides alternate (A B B A …) so
drift hits both alike; medians are compared. The raw side is ``IB().connect(host, port,
clientId, timeout)`` with ib_insync's defaults — it already synchronises positions, open and
completed orders, account updates and executions before it returns.
"""

from __future__ import annotations

from typing import Any

from ib_insync import IB

from benchmarks.common import (
    CONNECT_TIMEOUT,
    close_adapter,
    gateway,
    new_adapter,
    next_client_id,
    timed,
)
from benchmarks.report import Section, Target, median, percentile, ratio

TARGET_RATIO = 1.2


def _raw_once(gw: Any) -> float:
    ib = IB()
    cid = next_client_id()
    try:
        seconds, _ = timed(lambda: ib.connect(gw.host, gw.port, clientId=cid,
                                              timeout=CONNECT_TIMEOUT))
        if not ib.isConnected():
            raise RuntimeError("raw IB.connect did not connect")
        return seconds
    finally:
        ib.disconnect()


def _adapter_once(gw: Any) -> tuple[float, float | None]:
    api = new_adapter(gw, connect=False)
    try:
        seconds, ok = timed(api.connect)
        if not ok:
            raise RuntimeError("adapter connect() returned False")
        return seconds, getattr(api, "last_connect_seconds", None)
    finally:
        close_adapter(api)


def run(latencies: list[float], samples: int) -> tuple[list[Section], list[Target]]:
    rows: list[list[Any]] = []
    targets: list[Target] = []
    data: dict[str, Any] = {}
    for lat in latencies:
        with gateway(lat) as gw:
            _raw_once(gw)  # warm-up both paths (imports, first-connection costs)
            _adapter_once(gw)
            raw: list[float] = []
            adapter: list[float] = []
            reported: list[float] = []
            for i in range(samples):
                first_adapter = i % 4 in (1, 2)  # A B B A pattern
                for side in (("adapter", "raw") if first_adapter else ("raw", "adapter")):
                    if side == "raw":
                        raw.append(_raw_once(gw))
                    else:
                        s, own = _adapter_once(gw)
                        adapter.append(s)
                        if own is not None:
                            reported.append(float(own))
        r, a = median(raw), median(adapter)
        rel = ratio(a, r)
        rows.append([f"{lat:g} ms", "raw IB.connect", samples, r * 1000,
                     percentile(raw, 95) * 1000, 1.0])
        rows.append([f"{lat:g} ms", "adapter connect()", samples, a * 1000,
                     percentile(adapter, 95) * 1000, rel])
        data[f"{lat:g}"] = {"raw_s": raw, "adapter_s": adapter,
                            "adapter_last_connect_seconds": reported}
        targets.append(Target(f"connect @{lat:g}ms: adapter / raw ib_insync", rel, "<=",
                              TARGET_RATIO, f"median {a * 1000:.1f} vs {r * 1000:.1f} ms"))
    section = Section(
        name="connect: adapter connect() vs raw ib_insync IB.connect",
        headers=["latency", "side", "samples", "median ms", "p95 ms", "x raw"],
        rows=rows,
        notes=["fresh client id and fresh object per sample; sides alternate A B B A; "
               "one warm-up each; wall time around the call (adapter: includes its loop hop)"],
        data=data,
    )
    return [section], targets
