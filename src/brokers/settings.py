"""The broker layer's settings: parsed once from any config-like object, frozen, validated.

``BrokerSettings.from_config(config)`` reads the upper-case attributes the host application's
``Config`` has (``IBKR_PORT`` …) from *any* object — the seeds' tests pass
``MagicMock(spec=Config)`` — through one coercion hook (:func:`coerce`), then checks ranges and
choices. Every problem raises :class:`SettingsError` (a ``ValueError``) naming the config key a
user can change (``ibkr.port``). It is the application's ``ConfigError`` (one class, defined in
:mod:`~src.brokers.settings_coerce`), so both layers raise one family. Nothing here imports
``src.app``: the app layer may import the broker layer, never the reverse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Final

from src.brokers import settings_coerce

SettingsError = settings_coerce.ConfigError
"""A setting is missing, of the wrong type or out of range (the message names its key). The same
class as the app's ``ConfigError``: the two layers raise one family."""


#: attribute → the config.yaml key a user changes (messages name it)
CONFIG_KEYS: Final[dict[str, str]] = {
    "TRADING_MODE": "trading_mode",
    "ALLOW_LIVE": "allow_live",
    "IBKR_HOST": "ibkr.host",
    "IBKR_PORT": "ibkr.port",
    "IBKR_CLIENT_ID": "ibkr.client_id",
    "IBKR_READ_ONLY": "ibkr.read_only",
    "IBKR_ACCOUNT_ID": "ibkr.account",
    "IBKR_TIMEOUT": "ibkr.timeout",
    "IBKR_REQUEST_TIMEOUT": "ibkr.request_timeout",
    "IBKR_AUTO_RECONNECT": "ibkr.auto_reconnect",
    "IBKR_RECONNECT_BASE": "ibkr.reconnect_base",
    "IBKR_RECONNECT_CAP": "ibkr.reconnect_cap",
    "IBKR_RECONNECT_MAX_ATTEMPTS": "ibkr.reconnect_max_attempts",
    "IBKR_LINK_GRACE": "ibkr.link_grace",
    "IBKR_MAX_RATE": "ibkr.max_rate",
    "IBKR_MARKET_DATA_TYPE": "ibkr.market_data_type",
    "IBKR_METRICS_PORT": "ibkr.metrics_port",
    "CHAIN_EXPIRATIONS": "ibkr.chain_expirations",
    "CHAIN_STRIKES": "ibkr.chain_strikes",
    "IBKR_MAX_STREAMS": "ibkr.max_streams",
    "CHAIN_STREAM_LINES": "ibkr.chain_stream_lines",
    "CHAIN_STREAM_IDLE": "ibkr.chain_stream_idle",
    "MAX_CONTRACTS_PER_ORDER": "risk.max_contracts_per_order",
    "IBKR_CLIENT_LIBRARY": "ibkr.client_library",
    "IBKR_ORDER_RETENTION_DAYS": "ibkr.order_retention_days",
    "IBKR_TICKER_RETENTION": "ibkr.ticker_retention",
    "IBKR_RETENTION_SWEEP": "ibkr.retention_sweep",
    "IBKR_COMMISSION_WAIT": "ibkr.commission_wait_seconds",
}

LIVE_PORTS: Final = frozenset({7496, 4001})
"""TWS / IB Gateway ports of a live (real-money) login."""
PAPER_ACCOUNT_PREFIXES: Final = ("DU", "DF")
"""Paper account ids start with these."""

CLIENT_LIBRARIES: Final = ("auto", "ib_insync", "ib_async")
"""``ibkr.client_library`` choices (checked against the loaded library by ``compat.require``)."""

Coerce = Callable[[object, str, Any], Any]
"""``coerce(config, attr, default)``: the value of ``config.attr`` as ``default``'s type, or
``default`` when the attribute is absent (the hook every setting goes through)."""


def coerce(config: object, attr: str, default: Any) -> Any:
    """The default coercion (:func:`src.brokers.settings_coerce.read`): ``config.attr``
    converted to ``default``'s type when unambiguous (``"4002"`` → 4002, ``"true"`` → True),
    ``default`` only when the attribute is missing (a ``unittest.mock`` value counts as missing),
    else ``SettingsError`` naming the config key."""
    try:
        return settings_coerce.read(config, attr, default)
    except SettingsError as exc:
        raise SettingsError(f"{CONFIG_KEYS.get(attr, attr)}: {exc}") from None


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Everything the brokers read from the configuration (attribute names in lower case)."""

    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 1
    account_id: str = ""
    read_only: bool = False
    timeout: float = 20.0
    request_timeout: float = 10.0
    auto_reconnect: bool = True
    link_grace: float = 60.0
    reconnect_base: float = 0.5
    reconnect_cap: float = 30.0
    reconnect_max_attempts: int = 0
    max_rate: int = 45
    market_data_type: int = 1
    metrics_port: int | None = None
    chain_expirations: int = 4
    chain_strikes: int = 6
    max_streams: int = 50
    chain_stream_lines: int = 50
    chain_stream_idle: float = 300.0
    max_contracts: int = 10
    trading_mode: str = "paper"
    allow_live: bool = False
    client_library: str = "auto"
    order_retention_days: int = 1
    ticker_retention: float = 3600.0
    retention_sweep: float = 600.0
    commission_wait: float = 5.0  # a fill is settled without its commission report after this

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def from_config(cls, config: object, *, coerce_fn: Coerce | None = None) -> BrokerSettings:
        """Read every setting of ``config`` through ``coerce_fn`` (default :func:`coerce`)."""
        read = coerce_fn or coerce
        values = {name: read(config, attr, getattr(_DEFAULTS, name))
                  for name, attr in CONFIG_ATTRS.items()}
        return cls(**values)

    def replace(self, **changes: Any) -> BrokerSettings:
        """A validated copy with ``changes`` (field names)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(current)
        if unknown:
            raise SettingsError(f"unknown broker settings: {sorted(unknown)}")
        current.update(changes)
        return BrokerSettings(**current)

    # --- validation -----------------------------------------------------------------------------

    def _validate(self) -> None:
        ranges: tuple[tuple[str, float, float], ...] = (
            ("port", 1, 65535), ("client_id", 0, 2**31 - 1), ("timeout", 0.01, 3600),
            ("request_timeout", 0.01, 3600), ("link_grace", 0.01, 86_400),
            ("reconnect_base", 0.0, 3600), ("reconnect_cap", 0.0, 86_400),
            ("reconnect_max_attempts", 0, 10**9), ("max_rate", 1, 1000),
            ("chain_expirations", 1, 52), ("chain_strikes", 1, 100), ("max_streams", 1, 1000),
            ("chain_stream_lines", 0, 1000), ("chain_stream_idle", 0.01, 86_400 * 7),
            ("max_contracts", 1, 10**6), ("order_retention_days", 0, 3650),
            ("ticker_retention", 0, 7 * 86_400), ("retention_sweep", 0.1, 86_400),
            ("commission_wait", 0, 3600))
        for name, low, high in ranges:
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or not low <= value <= high:
                raise SettingsError(
                    f"{_key(name)} must be a number in [{low:g}, {high:g}], got {value!r}")
        if self.metrics_port is not None and not (
                isinstance(self.metrics_port, int) and 0 <= self.metrics_port <= 65535):
            raise SettingsError(
                f"{_key('metrics_port')} must be a port (0-65535) or unset, "
                f"got {self.metrics_port!r}")
        if self.market_data_type not in (1, 2, 3, 4):
            raise SettingsError(
                f"{_key('market_data_type')} must be 1, 2, 3 or 4, got {self.market_data_type!r}")
        if self.trading_mode not in ("paper", "live"):
            raise SettingsError(
                f"{_key('trading_mode')} must be 'paper' or 'live', got {self.trading_mode!r}")
        for name in ("host", "account_id"):
            if not isinstance(getattr(self, name), str):
                raise SettingsError(f"{_key(name)} must be a string")
        if self.client_library not in CLIENT_LIBRARIES:
            raise SettingsError(f"{_key('client_library')} must be one of "
                                f"{list(CLIENT_LIBRARIES)}, got {self.client_library!r}")
        if not self.host.strip():
            raise SettingsError(f"{_key('host')} must not be empty")


#: field name → the config attribute it is read from
CONFIG_ATTRS: Final[dict[str, str]] = {
    "host": "IBKR_HOST", "port": "IBKR_PORT", "client_id": "IBKR_CLIENT_ID",
    "account_id": "IBKR_ACCOUNT_ID", "read_only": "IBKR_READ_ONLY", "timeout": "IBKR_TIMEOUT",
    "request_timeout": "IBKR_REQUEST_TIMEOUT", "auto_reconnect": "IBKR_AUTO_RECONNECT",
    "link_grace": "IBKR_LINK_GRACE", "reconnect_base": "IBKR_RECONNECT_BASE",
    "reconnect_cap": "IBKR_RECONNECT_CAP", "reconnect_max_attempts": "IBKR_RECONNECT_MAX_ATTEMPTS",
    "max_rate": "IBKR_MAX_RATE", "market_data_type": "IBKR_MARKET_DATA_TYPE",
    "metrics_port": "IBKR_METRICS_PORT", "chain_expirations": "CHAIN_EXPIRATIONS",
    "chain_strikes": "CHAIN_STRIKES", "max_streams": "IBKR_MAX_STREAMS",
    "chain_stream_lines": "CHAIN_STREAM_LINES", "chain_stream_idle": "CHAIN_STREAM_IDLE",
    "max_contracts": "MAX_CONTRACTS_PER_ORDER", "trading_mode": "TRADING_MODE",
    "allow_live": "ALLOW_LIVE", "client_library": "IBKR_CLIENT_LIBRARY",
    "order_retention_days": "IBKR_ORDER_RETENTION_DAYS",
    "ticker_retention": "IBKR_TICKER_RETENTION", "retention_sweep": "IBKR_RETENTION_SWEEP",
    "commission_wait": "IBKR_COMMISSION_WAIT",
}


def _key(name: str) -> str:
    attr = CONFIG_ATTRS[name]
    return f"{CONFIG_KEYS.get(attr, attr)} ({attr})"


_DEFAULTS: Final = BrokerSettings()
