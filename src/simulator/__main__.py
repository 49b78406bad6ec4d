"""``ibkr-sim`` / ``python -m src.simulator``: run the simulated gateway in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

from src.simulator.harness import GatewayRuntime


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ibkr-sim", description="Simulated IB Gateway (TWS API)")
    p.add_argument("--port", type=int, default=4002, help="port on 127.0.0.1 (default 4002)")
    p.add_argument("--universe", default=None, help="universe YAML (default: packaged one)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="one-way outgoing latency")
    p.add_argument("--seed", type=int, default=0, help="random-walk seed")
    p.add_argument("--accounts", default="DU1234567", help="comma-separated managed accounts")
    p.add_argument("--step-seconds", type=float, default=None, help="random-walk step interval")
    p.add_argument("--no-pacing", action="store_true", help="disable the 50 msg/s limit")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error("--port must be 0..65535")
    if args.latency_ms < 0:
        p.error("--latency-ms must be >= 0")
    return args


async def serve(args: argparse.Namespace) -> None:
    rt = GatewayRuntime(
        port=args.port, seed=args.seed, latency_ms=args.latency_ms,
        accounts=[a for a in args.accounts.split(",") if a], pacing=not args.no_pacing,
        universe=args.universe, step_seconds=args.step_seconds)
    await rt.start()
    print(f"ibkr-sim listening on 127.0.0.1:{rt.server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    rt.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
