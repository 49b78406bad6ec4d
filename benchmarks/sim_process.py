"""The simulated gateway in a child process, for benchmarks that measure the adapter's memory.

``python -m benchmarks.sim_process --port 0 --today 2026-12-07 [--step-seconds 0.02]
[--next-order-id 7:1234] [--universe file.yaml] [--latency-ms 0]`` prints ``PORT <n>`` once it
listens and serves until SIGTERM/SIGINT. In a child process the gateway's own state (its order
book, its request log) is not counted in the benchmark process's RSS, and a restart is what a
real daily restart is: a new gateway process, nothing of yesterday's session but the API order
id sequence, which a real gateway keeps across restarts (``--next-order-id CLIENT:ID``; the
simulator's engine would otherwise start again at 1).

:class:`GatewayProcess` drives it from the benchmark (start / stop / restart on the same port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import select
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

START_TIMEOUT = 20.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sim_process")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--today", type=date.fromisoformat, required=True)
    p.add_argument("--step-seconds", type=float, default=None)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--universe", default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--next-order-id", action="append", default=[],
                   help="CLIENT:ID — the next valid order id of that client id")
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from src.simulator.harness import GatewayRuntime

    rt = GatewayRuntime(port=args.port, seed=args.seed, latency_ms=args.latency_ms,
                        pacing=True, universe=args.universe, step_seconds=args.step_seconds,
                        today=args.today)
    for item in args.next_order_id:
        client, _, next_id = item.partition(":")
        # the engine hands out max(used) + 1: continue the sequence the last gateway left
        rt.engine._max_order_id[int(client)] = int(next_id) - 1
    await rt.start()
    print(f"PORT {rt.server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    rt.stop()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


class GatewayProcess:
    """One simulated gateway process at a time, restarted on the same port."""

    host = "127.0.0.1"

    def __init__(self, *, step_seconds: float | None, universe: Path | None,
                 latency_ms: float = 0.0) -> None:
        self.step_seconds = step_seconds
        self.universe = universe
        self.latency_ms = latency_ms
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self, today: date, next_ids: dict[int, int] | None = None) -> int:
        if self.proc is not None:
            raise RuntimeError("gateway process already running")
        cmd = [sys.executable, "-m", "benchmarks.sim_process", "--port", str(self.port),
               "--today", today.isoformat(), "--latency-ms", str(self.latency_ms)]
        if self.step_seconds is not None:
            cmd += ["--step-seconds", str(self.step_seconds)]
        if self.universe is not None:
            cmd += ["--universe", str(self.universe)]
        for client, next_id in (next_ids or {}).items():
            cmd += ["--next-order-id", f"{client}:{next_id}"]
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline().strip() if ready else "(nothing: timed out)"
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"simulated gateway did not start (said {line!r})")
        self.port = int(line.split()[1])
        return self.port

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(START_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
