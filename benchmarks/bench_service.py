"""The HTTP service under load: 16 concurrent clients on quotes and order status, against the
same work done by calling the adapter directly — in the same run, so the ratio is the service's
overhead (HTTP + JSON + validation + thread pool), not the machine's mood.

    python -m benchmarks --only service [--seconds 30]
    python -m benchmarks.bench_service --seconds 5         # a short run

Layout: the simulated gateway (``ibkr-sim``) and the service (``ibkr-service``, the real adapter,
one uvicorn worker) each run in their own process; the load generator (16 threads, one
``httpx.Client`` each, keep-alive) and the direct baseline (16 threads calling one adapter) run
in this one. Each client alternates ``GET /quotes/AAPL`` and ``GET /orders/{id}`` (a resting
LIMIT order); the baseline alternates ``get_market_data("AAPL")`` and ``get_order_status(id)``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from benchmarks.report import Section, Target, fmt, median, percentile, ratio, table

CLIENTS = 16
TOKEN = "bench-token-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _load(calls: Sequence[Callable[[Any], bool]], make: Callable[[], Any], seconds: float,
          clients: int = CLIENTS, *, close: bool = False) -> dict[str, Any]:
    """``clients`` threads, each with a ``make()`` session (closed at the end when ``close``),
    cycling through ``calls`` for ``seconds``; per call kind: latencies (s) and errors."""
    lat: list[list[float]] = [[] for _ in calls]
    errors = [0 for _ in calls]
    lock = threading.Lock()
    start = threading.Event()
    stop_at = [0.0]

    def worker() -> None:
        session = make()
        mine: list[list[float]] = [[] for _ in calls]
        bad = [0 for _ in calls]
        start.wait()
        i = 0
        try:
            while time.perf_counter() < stop_at[0]:
                k = i % len(calls)
                t0 = time.perf_counter()
                ok = calls[k](session)
                mine[k].append(time.perf_counter() - t0)
                bad[k] += not ok
                i += 1
        finally:
            if close:
                session.close()
        with lock:
            for k in range(len(calls)):
                lat[k].extend(mine[k])
                errors[k] += bad[k]

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + seconds
    t_start = time.perf_counter()
    start.set()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.perf_counter() - t_start
    return {"latencies": lat, "errors": errors, "elapsed": elapsed}


def run(seconds: float = 30.0, clients: int = CLIENTS) -> tuple[list[Section], list[Target]]:
    from src.app.config import Config
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi
    from src.models.option import OptionSpread

    gw_port, svc_port = _free_port(), _free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    env = {**os.environ, "IBKR_SERVICE_TOKEN": TOKEN, "IBKR_SERVICE_TOKEN_FILE": ""}
    sim = subprocess.Popen([str(BIN / "ibkr-sim"), "--port", str(gw_port), "--no-pacing",
                            "--log-level", "WARNING"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=ROOT)
    config_file = tmp / "config.yaml"
    config_file.write_text(f"log_level: WARNING\nibkr:\n  host: 127.0.0.1\n  port: {gw_port}\n"
                           "  client_id: 21\nservice:\n  broker: adapter\n  trader: false\n",
                           encoding="utf-8")
    service = subprocess.Popen([str(BIN / "ibkr-service"), "--config", str(config_file),
                                "--port", str(svc_port)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{svc_port}"
    api: Any = None
    try:
        _wait(lambda: _open(gw_port), 30, "the simulated gateway")
        _wait(lambda: _ready(url), 60, "the service")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        placed = httpx.post(url + "/orders", json={"symbol": "AAPL", "limit_price": 0.05},
                            headers=auth, timeout=30)
        placed.raise_for_status()
        http_order = placed.json()["id"]

        api = IBKRIBInsyncApi(Config().replace(IBKR_HOST="127.0.0.1", IBKR_PORT=gw_port,
                                               IBKR_CLIENT_ID=22))
        if not api.connect():
            raise RuntimeError("direct adapter failed to connect")
        from src.app.executor import select_spread

        spread: OptionSpread = select_spread(api.get_option_chain("AAPL"), "AAPL", "LONG")
        direct_order = api.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)

        def d_quote(a: Any) -> bool:
            return "error" not in a.get_market_data("AAPL")

        def d_status(a: Any) -> bool:
            return bool(a.get_order_status(direct_order))

        def h_quote(c: httpx.Client) -> bool:
            return c.get("/quotes/AAPL").status_code == 200

        def h_status(c: httpx.Client) -> bool:
            return c.get(f"/orders/{http_order}").status_code == 200

        def client() -> httpx.Client:
            return httpx.Client(base_url=url, headers=auth, timeout=30)

        for fn in (d_quote, d_status):  # warm-up: the quote line streams from here on
            fn(api)
        with client() as c:
            h_quote(c)
            h_status(c)
        direct = _load([d_quote, d_status], lambda: api, seconds, clients)
        http = _load([h_quote, h_status], client, seconds, clients, close=True)
    finally:
        if api is not None:
            api.close()
        for proc in (service, sim):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return _report(direct, http, seconds, clients)


def _report(direct: dict[str, Any], http: dict[str, Any], seconds: float,
            clients: int) -> tuple[list[Section], list[Target]]:
    rows: list[list[Any]] = []
    data: dict[str, Any] = {"seconds": seconds, "clients": clients}
    targets: list[Target] = []
    for k, name in enumerate(("quote AAPL", "order status")):
        d, h = direct["latencies"][k], http["latencies"][k]
        d_rps, h_rps = len(d) / direct["elapsed"], len(h) / http["elapsed"]
        d50, d99 = median(d) * 1000, percentile(d, 99) * 1000
        h50, h99 = median(h) * 1000, percentile(h, 99) * 1000
        rows.append([name, "adapter, direct", len(d), d_rps, d50, d99, "", direct["errors"][k]])
        rows.append([name, "service, HTTP", len(h), h_rps, h50, h99,
                     f"{ratio(h50, d50):.1f}x p50, {ratio(d_rps, h_rps):.1f}x req/s",
                     http["errors"][k]])
        data[name] = {"direct_rps": d_rps, "http_rps": h_rps, "direct_p50_ms": d50,
                      "direct_p99_ms": d99, "http_p50_ms": h50, "http_p99_ms": h99,
                      "p50_ratio": ratio(h50, d50), "rps_ratio": ratio(d_rps, h_rps)}
        total = len(h) or 1
        targets.append(Target(f"service {name}: requests answered 200", 1 - http["errors"][k]
                              / total, ">=", 1.0, f"{http['errors'][k]} error(s) of {len(h)}"))
    section = Section(
        name=f"service: {clients} concurrent clients for {seconds:g} s",
        headers=["call", "path", "requests", "req/s", "p50 ms", "p99 ms", "service overhead",
                 "errors"],
        rows=rows,
        notes=["overhead: the service's p50 over the direct call's, and the direct req/s over "
               "the service's (same gateway, same run, one after the other)",
               "gateway and service in their own processes; load generator and direct "
               "baseline in the benchmark's process (16 threads, keep-alive clients)"],
        data=data,
    )
    return [section], targets


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_service", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0, help="per phase (default 30)")
    p.add_argument("--clients", type=int, default=CLIENTS, help="concurrent clients (16)")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.clients <= 0:
        p.error("--seconds and --clients must be positive")
    from benchmarks.common import quiet_logging

    quiet_logging()
    sections, targets = run(args.seconds, args.clients)
    for s in sections:
        print(s.text())
    print(table(["target", "value", "verdict"], [[t.name, fmt(t.value), t.verdict]
                                                  for t in targets]))
    return 0 if all(t.passed for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
