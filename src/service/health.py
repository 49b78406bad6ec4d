"""The narrow view of a broker the service reads for ``/ready`` and ``/metrics``.

Any :class:`~src.brokers.base.BrokerApi` works: members the real adapter has and the placeholder
lacks (``reconnect_count``, ``last_error``, ``data_health``, ``is_live_account()``) are read with
``getattr`` and fall back to neutral values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from src.brokers.errors import BrokerError

LIVE_PORTS = frozenset({7496, 4001})
PAPER_ACCOUNT_PREFIXES = ("DU", "DF")


@dataclass(frozen=True)
class BrokerHealth:
    """What the service knows about the broker's link to the gateway, right now."""

    connected: bool
    reconnecting: bool = False
    reconnect_count: int = 0
    last_error: str | None = None
    last_error_code: int | None = None
    data_health: dict[str, str] = field(default_factory=dict)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def health_of(broker: Any) -> BrokerHealth:
    """Read the health view of ``broker`` (never raises)."""
    error = getattr(broker, "last_error", None)
    code = getattr(error, "code", None) if isinstance(error, BrokerError) else None
    raw_health = getattr(broker, "data_health", None)
    connection = getattr(broker, "connection", None)
    return BrokerHealth(
        connected=getattr(broker, "connected", False) is True,
        reconnecting=getattr(connection, "reconnecting", False) is True,
        reconnect_count=_int(getattr(broker, "reconnect_count", 0)),
        last_error=str(error) if isinstance(error, BaseException) else None,
        last_error_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        data_health={str(k): str(v) for k, v in raw_health.items()}
        if isinstance(raw_health, dict) else {},
    )


def is_live_account(broker: Any) -> bool:
    """The adapter's ``is_live_account()`` when it has one, else the same rule: a live port
    (7496/4001) or an account id that is not a paper one (``DU…``/``DF…``)."""
    method = getattr(broker, "is_live_account", None)
    if callable(method):
        return bool(method())
    account = getattr(broker, "account_id", "") or ""
    port = getattr(broker, "port", None)
    return port in LIVE_PORTS or bool(account) and not str(account).startswith(
        PAPER_ACCOUNT_PREFIXES)
