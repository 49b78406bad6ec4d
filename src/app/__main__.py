"""``python -m src.app``: run the Trader, or the demo.

    python -m src.app --demo [--broker sim|placeholder]   # the demo (default: simulated gateway)
    python -m src.app --roundtrip [--broker gateway|sim]  # paper round-trip: quote AAPL, place
                                                          # and cancel a 1-lot spread (config.yaml)
    python -m src.app [--config config.yaml]              # the Trader until Ctrl-C
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from src.app.config import ConfigError
from src.brokers.errors import ClientLibraryError
from src.utils.logger import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", help="run the demo and exit")
    parser.add_argument("--roundtrip", action="store_true",
                        help="paper round-trip: connect, quote AAPL, place and cancel a 1-lot "
                             "LIMIT spread (default broker: gateway)")
    parser.add_argument("--broker", choices=("sim", "placeholder", "gateway"), default=None,
                        help="sim: the embedded simulated gateway + ib_insync adapter (demo "
                             "default); placeholder: the in-memory IBKRApi; gateway: the TWS/IB "
                             "Gateway of config.yaml (round-trip default)")
    parser.add_argument("--config", default=None, help="config file (default: config.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    args = parser.parse_args(argv)
    quiet = args.demo or args.roundtrip
    setup_logging(logging.INFO if args.verbose or not quiet else logging.WARNING)
    try:
        if args.demo or args.roundtrip:
            from src.app.demo import run_demo

            broker = args.broker or ("gateway" if args.roundtrip else "sim")
            return run_demo(broker, args.config, roundtrip=args.roundtrip)
        return run_trader(args.config or "config.yaml")
    except (ConfigError, ClientLibraryError) as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2


def run_trader(config_file: str) -> int:
    """Run the Trader until SIGINT/SIGTERM."""
    from src.app.trader import Trader

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    trader = Trader(config_file)
    trader.start()
    try:
        while not done.wait(1.0):
            pass
    finally:
        trader.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
