"""Prometheus metrics of one adapter (its own ``CollectorRegistry``: adapters never collide).

* ``ib_connection_status``          gauge, 1 connected / 0 not
* ``ib_orders_total``               counter, orders accepted by ``place_order``
* ``ib_order_errors_total``         counter, orders refused / failed (validation excluded)
* ``ib_market_data_subscriptions``  gauge, streaming market-data lines held
* ``ib_reconnects_total``           counter, successful automatic reconnects

``serve(port)`` exposes them over HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server

from src.utils.logger import log_info


class AdapterMetrics:
    """The adapter's metrics; read values with ``value(name)`` (tests, benchmarks)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.connection_status = Gauge(
            "ib_connection_status", "1 when connected to the IB gateway", registry=self.registry)
        self.orders_total = Counter(
            "ib_orders", "Orders placed", registry=self.registry)
        self.order_errors_total = Counter(
            "ib_order_errors", "Orders refused or failed", registry=self.registry)
        self.market_data_subscriptions = Gauge(
            "ib_market_data_subscriptions", "Streaming market data lines held",
            registry=self.registry)
        self.reconnects_total = Counter(
            "ib_reconnects", "Automatic reconnects", registry=self.registry)
        self._server: Any = None

    def value(self, name: str) -> float:
        """Current value of a sample (``ib_orders_total``, ``ib_connection_status`` …)."""
        v = self.registry.get_sample_value(name)
        return 0.0 if v is None else float(v)

    def exposition(self) -> bytes:
        """The text exposition format (what ``/metrics`` serves)."""
        return bytes(generate_latest(self.registry))

    def serve(self, port: int) -> None:
        """Serve ``/metrics`` on 127.0.0.1:``port`` (0: any free port). Idempotent."""
        if self._server is not None:
            return
        self._server = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        log_info(f"Prometheus metrics on 127.0.0.1:{self.port}")

    @property
    def port(self) -> int | None:
        """The port actually served on (after ``serve``), else None."""
        if self._server is None:
            return None
        server = self._server[0] if isinstance(self._server, tuple) else self._server
        return int(server.server_address[1])

    def close(self) -> None:
        """Stop the HTTP server if one was started."""
        if self._server is None:
            return
        server = self._server[0] if isinstance(self._server, tuple) else self._server
        try:
            server.shutdown()
            server.server_close()
        finally:
            self._server = None
