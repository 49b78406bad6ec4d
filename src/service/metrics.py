"""``/metrics``: the broker's ``ib_*`` metrics plus the service's own request metrics.

* The real adapter keeps seed 003's metrics in its own registry (``broker.metrics``:
  ``ib_connection_status``, ``ib_orders_total``, ``ib_order_errors_total``,
  ``ib_market_data_subscriptions``, ``ib_reconnects_total``); the exposition serves it as is.
* A broker without metrics (the placeholder) gets the same names from :class:`BrokerCollector`,
  read from the broker at scrape time (orders = orders it holds; errors = those the service saw).
* ``ibkr_service_requests_total{method,route,status}`` and
  ``ibkr_service_request_duration_seconds{method,route}`` count and time every request by its
  route template (``/quotes/{symbol}``, never the raw path: bounded label values).

No label carries an account id or a token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.service.health import health_of

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)


class BrokerCollector(Collector):
    """Seed 003's metrics for a broker that keeps none itself."""

    def __init__(self, broker: Any, order_errors: float) -> None:
        self._broker = broker
        self._order_errors = order_errors

    def collect(self) -> Iterator[Metric]:
        broker = self._broker
        view = health_of(broker)
        with broker.lock:
            orders = len(broker.orders)
        yield GaugeMetricFamily("ib_connection_status", "1 when connected to the IB gateway",
                                value=1.0 if view.connected else 0.0)
        yield CounterMetricFamily("ib_orders", "Orders placed", value=float(orders))
        yield CounterMetricFamily("ib_order_errors", "Orders refused or failed",
                                  value=self._order_errors)
        yield GaugeMetricFamily("ib_market_data_subscriptions",
                                "Streaming market data lines held", value=0.0)
        yield CounterMetricFamily("ib_reconnects", "Automatic reconnects",
                                  value=float(view.reconnect_count))


def _own_registry(broker: Any) -> CollectorRegistry | None:
    registry = getattr(getattr(broker, "metrics", None), "registry", None)
    return registry if isinstance(registry, CollectorRegistry) else None


class ServiceMetrics:
    """The service's registry and the exposition of both registries."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ibkr_service_requests", "HTTP requests by route template and status",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "ibkr_service_request_duration_seconds", "HTTP request latency by route template",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.order_errors = Counter(
            "ibkr_service_order_errors", "Order requests the broker refused or failed",
            registry=self.registry)

    def exposition(self, broker: Any) -> bytes:
        """The broker's ``ib_*`` metrics (its registry, else derived) and the service's."""
        own = _own_registry(broker)
        if own is None:
            own = CollectorRegistry(auto_describe=False)
            own.register(BrokerCollector(broker, self.value("ibkr_service_order_errors_total")))
        return bytes(generate_latest(own)) + bytes(generate_latest(self.registry))

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        v = self.registry.get_sample_value(name, labels or {})
        return 0.0 if v is None else float(v)


class RequestMetricsMiddleware:
    """Pure ASGI middleware (no per-request task, unlike ``BaseHTTPMiddleware``)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", "GET"))
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
