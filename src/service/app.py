"""``create_app(config, ...)``: the FastAPI application over one broker for the process.

The lifespan builds the broker once (``broker_factory``, default
:func:`~src.service.providers.build_broker`), starts the connector (the service is up at once;
``/ready`` is 503 until the gateway answers) and the Trader's signal thread on that broker, and
on shutdown stops both and closes the broker. Routes take the broker through
``Depends(get_broker)``; tests swap it with ``app.dependency_overrides[get_broker]`` or pass a
``broker_factory``.

Every broker call is synchronous (the adapter hands the work to its own loop thread and waits):
routes are plain ``def`` functions, which FastAPI runs in its thread pool — uvicorn's event loop
never waits on the gateway, and no ib_insync code runs on uvicorn's loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from src.app.config import setting
from src.app.trader import Trader
from src.brokers.base import BrokerApi
from src.service import errors
from src.service.auth import load_token
from src.service.connector import Connector
from src.service.metrics import RequestMetricsMiddleware, ServiceMetrics
from src.service.providers import backend_name, build_broker, prepare
from src.service.routes_docs import router as docs_router
from src.service.routes_market import router as market_router
from src.service.routes_ops import VERSION
from src.service.routes_ops import router as ops_router
from src.service.routes_orders import router as orders_router
from src.service.routes_paper import router as paper_router
from src.service.routes_signals import router as signals_router
from src.service.state import ServiceState
from src.utils.clock import SYSTEM_CLOCK, Clock
from src.utils.logger import log_error, log_info

BrokerFactory = Callable[[Any], BrokerApi]


class _FromEnvironment:
    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


FROM_ENVIRONMENT: Any = _FromEnvironment()

DESCRIPTION = """Interactive Brokers (through the ib_insync adapter) over HTTP: quotes, option
chains, spread orders, positions, the account, trade signals for the Trader, and the paper
round trip. `/health`, `/ready` and `/metrics` are open; everything else needs
`Authorization: Bearer <token>` (IBKR_SERVICE_TOKEN or IBKR_SERVICE_TOKEN_FILE)."""


def create_app(config: Any, *, broker_factory: BrokerFactory | None = None,
               token: str | None = FROM_ENVIRONMENT, clock: Clock = SYSTEM_CLOCK,
               connect: bool = True, run_trader: bool | None = None) -> FastAPI:
    """The service app. ``token``: the bearer token (default: read from the environment;
    None: no token configured, protected endpoints answer 403). ``connect``: start the
    connector (False: the broker stays as built). ``run_trader``: default ``service.trader``."""
    factory = broker_factory or build_broker
    if broker_factory is None:
        prepare(config)  # the client library is imported here, not on the lifespan's worker
    backend = "custom" if broker_factory is not None else backend_name(config)
    api_token = load_token() if token is FROM_ENVIRONMENT else token
    trader_on = setting(config, "SERVICE_TRADER", True) if run_trader is None else run_trader
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = await run_in_threadpool(factory, config)
        trader = Trader(config=config, broker=broker, connect=False)
        connector = Connector(broker, config) if connect else None
        state = ServiceState(config=config, broker=broker, backend=backend, trader=trader,
                             connector=connector, clock=clock, metrics=metrics)
        app.state.service = state
        if connector is not None:
            connector.start()
        if trader_on:
            trader.start()
            state.trader_running = True
        log_info(f"Service started: broker {backend}, gateway {state.gateway}, "
                 f"token {'configured' if api_token else 'NOT configured (403)'}")
        try:
            yield
        finally:
            await run_in_threadpool(_shutdown, state)
            app.state.service = None

    app = FastAPI(title="IBKR adapter service", version=VERSION, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.token = api_token
    app.state.service = None
    app.state.metrics = metrics
    errors.install(app)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    for router in (ops_router, docs_router, market_router, orders_router, signals_router,
                   paper_router):
        app.include_router(router)
    return app


def _shutdown(state: ServiceState) -> None:
    """Stop the connector and the Trader, close the broker (each step bounded, never raises)."""
    if state.connector is not None:
        state.connector.stop()
    try:
        state.trader.stop(timeout=10.0)  # also disconnects the broker
    except Exception as e:  # noqa: BLE001 - shutdown goes on
        log_error(f"Error stopping the Trader: {e}")
    close = getattr(state.broker, "close", None)
    try:
        if callable(close):
            close()
        else:
            state.broker.disconnect()
    except Exception as e:  # noqa: BLE001
        log_error(f"Error closing the broker: {e}")
    log_info("Service stopped")
