"""``ibkr-service --config config.yaml [--host 127.0.0.1] [--port 8000]``: the service (uvicorn).

Host and port: the flags, else ``service.host`` / ``service.port`` of the config (environment
``IBKR_SERVICE_HOST`` / ``IBKR_SERVICE_PORT`` override the file, like every ``IBKR_*``). One
worker: the process holds one gateway session (one client id); scale with one service per
gateway session, each with its own ``ibkr.client_id``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from src.app.config import Config, ConfigError
from src.service.auth import TokenError
from src.utils.logger import setup_logging


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ibkr-service", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config.yaml", help="config file (default config.yaml)")
    p.add_argument("--host", default=None, help="listen address (default service.host, "
                                                "127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default service.port, "
                                                          "8000)")
    args = p.parse_args(argv)
    if args.port is not None and not 1 <= args.port <= 65535:
        p.error("--port must be 1..65535")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = Config.from_yaml(args.config)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    setup_logging(getattr(logging, config.LOG_LEVEL, logging.INFO))
    host = args.host or config.SERVICE_HOST
    port = args.port or config.SERVICE_PORT
    import uvicorn

    from src.service.app import create_app

    try:
        app = create_app(config)
    except (TokenError, ConfigError, ValueError) as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    print(f"ibkr-service on http://{host}:{port} (docs: /docs)", flush=True)
    uvicorn.run(app, host=host, port=port, workers=1, log_level=config.LOG_LEVEL.lower(),
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
