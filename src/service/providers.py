"""The one place the service chooses its broker backend (``service.broker`` in config.yaml).

``auto``         the adapter when ``ibkr.use_ib_insync`` is true, else the placeholder
``adapter``      :class:`~src.brokers.ibkr_ib_insync.IBKRIBInsyncApi` on the configured gateway
``placeholder``  the in-memory :class:`~src.brokers.ibkr_api.IBKRApi`
``mock``         :class:`~src.brokers.client_broker.ClientBroker` on ``MockIBKRClient`` (no
                 gateway; deterministic; connected; the placeholder's symbols quoted)
"""

from __future__ import annotations

from typing import Any

from src.app.config import setting
from src.brokers.base import BrokerApi
from src.brokers.ibkr_api import IBKRApi
from src.brokers.settings import BrokerSettings

BACKENDS = ("auto", "adapter", "placeholder", "mock")


def backend_name(config: Any) -> str:
    """The backend ``config`` selects, ``auto`` resolved."""
    name: str = setting(config, "SERVICE_BROKER", "auto")
    if name not in BACKENDS:
        raise ValueError(f"service.broker must be one of {list(BACKENDS)}, got {name!r}")
    if name == "auto":
        return "adapter" if setting(config, "USE_IB_INSYNC", True) else "placeholder"
    return name


def prepare(config: Any) -> None:
    """Import the client library now, on the calling thread, if ``config`` needs it (the
    adapter, the mock's ClientBroker).

    ib_insync's eventkit asks for the current event loop when it is first imported, which fails
    on a worker thread ("There is no current event loop in thread 'AnyIO worker thread'") —
    and the lifespan builds the broker on one. ``create_app`` calls this on its own thread
    (the main thread under ``ibkr-service``), as any script importing ib_insync at the top would.
    """
    name = backend_name(config)
    if name == "adapter":
        import src.brokers.ibkr_ib_insync  # noqa: F401 - the import is the point
    elif name == "mock":  # ClientBroker builds ib_insync contracts too
        import src.brokers.client_broker  # noqa: F401


def build_broker(config: Any) -> BrokerApi:
    """A new, unconnected broker for the service process (the lifespan connects it)."""
    name = backend_name(config)
    if name == "adapter":
        from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

        return IBKRIBInsyncApi(config)
    if name == "mock":
        return mock_broker(config)
    return IBKRApi(config)


def mock_broker(config: Any) -> BrokerApi:
    """``ClientBroker`` on a connected ``MockIBKRClient`` with the ``ibkr.*`` settings of
    ``config``, quoting the placeholder's symbols (so quotes and chains answer) and their
    options; MARKET orders fill at once, LIMIT orders rest unless scripted. Tests reach the
    mock as ``broker.client`` (``script``, ``inject_error``, ``set_state``)."""
    from src.brokers.client_broker import ClientBroker
    from src.brokers.mock_client import MockIBKRClient
    from src.brokers.mock_market import seed_universe

    mock = MockIBKRClient(BrokerSettings.from_config(config), fill_market_orders=True)
    seed_universe(mock)
    mock.connect()
    return ClientBroker(mock, config, serialize=True)
