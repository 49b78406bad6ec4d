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

from src.app.config import Config, ConfigError
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
    try:
        if args.demo or args.roundtrip:
            from src.app.demo import base_config, run_demo

            # the demo prints its own report: it logs from WARNING (or log_level if higher)
            # unless -v or log_level DEBUG asks for more
            level = log_level(base_config(args.config).LOG_LEVEL, args.verbose)
            setup_logging(level if args.verbose or level < logging.INFO
                          else max(level, logging.WARNING))
            broker = args.broker or ("gateway" if args.roundtrip else "sim")
            return run_demo(broker, args.config, roundtrip=args.roundtrip)
        config = Config.from_yaml(args.config or "config.yaml")
        setup_logging(log_level(config.LOG_LEVEL, args.verbose))
        return run_trader(config)
    except ConfigError as e:  # also src.brokers.errors.ClientLibraryError (ibkr.client_library)
        print(f"configuration error: {e}", file=sys.stderr)
        return 2


def log_level(name: str, verbose: bool = False) -> int:
    """config.yaml's ``log_level`` as a ``logging`` level; ``-v`` lowers it to INFO at most."""
    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise ConfigError(f"log_level must be DEBUG, INFO, WARNING or ERROR, got {name!r}")
    return min(level, logging.INFO) if verbose else level


def run_trader(config: Config) -> int:
    """Run the Trader until SIGINT/SIGTERM."""
    from src.app.trader import Trader

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    trader = Trader(config=config)
    trader.start()
    try:
        while not done.wait(1.0):
            pass
    finally:
        trader.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
