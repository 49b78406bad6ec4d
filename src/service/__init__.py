"""The HTTP service: FastAPI over one broker per process (``create_app``, ``ibkr-service``).

============== ===================================================================
``app``        ``create_app(config, *, broker_factory=None, ...)``: lifespan, routers
``providers``  ``build_broker(config)``: the one place the backend is chosen
``health``     the narrow health view the service reads from any broker
``connector``  keeps the broker connected (first connect; the adapter reconnects itself)
``auth``       bearer token from ``IBKR_SERVICE_TOKEN`` / ``IBKR_SERVICE_TOKEN_FILE``
``errors``     the broker error tree → HTTP status codes
``metrics``    Prometheus: the broker's ``ib_*`` metrics plus per-endpoint requests
``models``     pydantic request/response models
``routes_*``   the endpoints
``cli``        ``ibkr-service --config config.yaml [--host] [--port]``
============== ===================================================================
"""

from src.service.app import create_app

__all__ = ["create_app"]
