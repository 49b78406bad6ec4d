"""Application configuration: the config.yaml schema, validated, with environment overrides.

``Config.from_yaml(path)`` reads the file, rejects unknown keys and wrong types with a message that
names the file and the key, applies the environment overrides (``IBKR_HOST``, ``IBKR_PORT``,
``IBKR_CLIENT_ID``, ``IBKR_ACCOUNT``) and exposes the values as the upper-case attributes the
host application and the brokers read (``config.IBKR_PORT`` …).

Brokers do not require a ``Config``: they read their settings through :func:`setting`,
which accepts any object with those attributes (the seeds' tests pass ``MagicMock(spec=Config)``),
converts unambiguous values and refuses the rest; only a missing setting takes the default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from src.brokers import settings_coerce
from src.brokers.validation import SYMBOL_RE

# config.yaml (or an environment override, or a setting read by setting()) is missing,
# malformed or invalid: one ValueError subclass for the app and the brokers.
ConfigError = settings_coerce.ConfigError


@dataclass(frozen=True)
class _Key:
    section: str  # "" for top level
    key: str
    attr: str
    type: type
    default: Any
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False


# The schema: one row a key. Sections and keys not listed here are rejected.
SCHEMA: tuple[_Key, ...] = (
    _Key("", "trading_mode", "TRADING_MODE", str, "paper", choices=("paper", "live")),
    _Key("", "allow_live", "ALLOW_LIVE", bool, False),
    _Key("", "log_level", "LOG_LEVEL", str, "INFO",
         choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    _Key("ibkr", "host", "IBKR_HOST", str, "127.0.0.1"),
    _Key("ibkr", "port", "IBKR_PORT", int, 7497, minimum=1, maximum=65535),
    _Key("ibkr", "client_id", "IBKR_CLIENT_ID", int, 1, minimum=0, maximum=2**31 - 1),
    _Key("ibkr", "read_only", "IBKR_READ_ONLY", bool, False),
    _Key("ibkr", "account", "IBKR_ACCOUNT_ID", str, ""),
    _Key("ibkr", "use_ib_insync", "USE_IB_INSYNC", bool, True),
    # the IB client library (src.brokers.compat.CHOICES; auto: the one installed)
    _Key("ibkr", "client_library", "IBKR_CLIENT_LIBRARY", str, "auto",
         choices=("auto", "ib_insync", "ib_async")),
    _Key("ibkr", "timeout", "IBKR_TIMEOUT", float, 20.0, minimum=0.1, maximum=600),
    _Key("ibkr", "request_timeout", "IBKR_REQUEST_TIMEOUT", float, 10.0,
         minimum=0.1, maximum=600),
    _Key("ibkr", "auto_reconnect", "IBKR_AUTO_RECONNECT", bool, True),
    _Key("ibkr", "reconnect_base", "IBKR_RECONNECT_BASE", float, 0.5, minimum=0.01, maximum=60),
    _Key("ibkr", "reconnect_cap", "IBKR_RECONNECT_CAP", float, 30.0, minimum=0.01, maximum=3600),
    _Key("ibkr", "reconnect_max_attempts", "IBKR_RECONNECT_MAX_ATTEMPTS", int, 0, minimum=0),
    _Key("ibkr", "link_grace", "IBKR_LINK_GRACE", float, 60.0, minimum=0.1, maximum=3600),
    _Key("ibkr", "max_rate", "IBKR_MAX_RATE", int, 45, minimum=1, maximum=50),
    _Key("ibkr", "market_data_type", "IBKR_MARKET_DATA_TYPE", int, 1, choices=(1, 2, 3, 4)),
    _Key("ibkr", "price_increment_policy", "IBKR_PRICE_INCREMENT_POLICY", str, "round",
         choices=("round", "refuse")),
    _Key("ibkr", "metrics_port", "IBKR_METRICS_PORT", int, None, minimum=0, maximum=65535,
         nullable=True),
    _Key("ibkr", "chain_expirations", "CHAIN_EXPIRATIONS", int, 4, minimum=1, maximum=52),
    _Key("ibkr", "chain_strikes", "CHAIN_STRIKES", int, 6, minimum=1, maximum=100),
    _Key("ibkr", "max_streams", "IBKR_MAX_STREAMS", int, 50, minimum=1, maximum=90),
    _Key("ibkr", "chain_stream_lines", "CHAIN_STREAM_LINES", int, 50, minimum=0, maximum=80),
    _Key("ibkr", "chain_stream_idle", "CHAIN_STREAM_IDLE", float, 300.0, minimum=1,
         maximum=86_400),
    _Key("ibkr", "order_retention_days", "IBKR_ORDER_RETENTION_DAYS", int, 1, minimum=0,
         maximum=3650),
    _Key("ibkr", "ticker_retention", "IBKR_TICKER_RETENTION", float, 3600.0, minimum=0,
         maximum=7 * 86_400),
    _Key("ibkr", "retention_sweep", "IBKR_RETENTION_SWEEP", float, 600.0, minimum=0.1,
         maximum=86_400),
    _Key("ibkr", "commission_wait_seconds", "IBKR_COMMISSION_WAIT", float, 5.0, minimum=0,
         maximum=3600),
    _Key("risk", "max_contracts_per_order", "MAX_CONTRACTS_PER_ORDER", int, 10,
         minimum=1, maximum=10_000),
    _Key("risk", "max_open_orders", "MAX_OPEN_ORDERS", int, 5, minimum=1, maximum=10_000),
    # refuse an order whose initial-margin change (IB's what-if) exceeds the available funds
    _Key("risk", "check_margin", "RISK_CHECK_MARGIN", str, "auto",
         choices=("auto", "true", "false")),
    _Key("trader", "symbols", "SYMBOLS", list, ["AAPL"]),
    _Key("trader", "loop_interval", "LOOP_INTERVAL", float, 0.1, minimum=0.001, maximum=60),
    _Key("trader", "max_attempts", "EXECUTOR_MAX_ATTEMPTS", int, 5, minimum=1, maximum=100),
    _Key("trader", "partial_fill_policy", "PARTIAL_FILL_POLICY", str, "keep",
         choices=("keep", "cancel_rest")),
    _Key("trader", "partial_fill_timeout_seconds", "PARTIAL_FILL_TIMEOUT", float, 60.0,
         minimum=0, maximum=86_400),
    _Key("service", "broker", "SERVICE_BROKER", str, "auto",
         choices=("auto", "adapter", "placeholder", "mock")),
    _Key("service", "host", "SERVICE_HOST", str, "127.0.0.1"),
    _Key("service", "port", "SERVICE_PORT", int, 8000, minimum=1, maximum=65535),
    _Key("service", "trader", "SERVICE_TRADER", bool, True),
)

# Environment overrides, as container deployments expect: variable -> (section, key).
ENV_OVERRIDES: Mapping[str, tuple[str, str]] = {
    "IBKR_HOST": ("ibkr", "host"),
    "IBKR_PORT": ("ibkr", "port"),
    "IBKR_CLIENT_ID": ("ibkr", "client_id"),
    "IBKR_ACCOUNT": ("ibkr", "account"),
    "IBKR_CLIENT_LIBRARY": ("ibkr", "client_library"),  # also read by src.brokers.compat
    "IBKR_SERVICE_BROKER": ("service", "broker"),
    "IBKR_SERVICE_HOST": ("service", "host"),
    "IBKR_SERVICE_PORT": ("service", "port"),
}

_BY_PLACE: dict[tuple[str, str], _Key] = {(k.section, k.key): k for k in SCHEMA}
_SECTIONS = {k.section for k in SCHEMA if k.section}
_BY_ATTR: dict[str, _Key] = {k.attr: k for k in SCHEMA}


def _check(spec: _Key, value: Any, where: str) -> Any:
    """Validate (and lightly coerce: int → float) one value; raise ConfigError naming ``where``."""
    name = f"{spec.section}.{spec.key}" if spec.section else spec.key
    if value is None and spec.nullable:
        return None
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if spec.type is str and isinstance(value, bool) and spec.choices and \
            str(value).lower() in spec.choices:  # YAML's true/false for an auto|true|false key
        value = str(value).lower()
    if spec.type is not bool and isinstance(value, bool) or not isinstance(value, spec.type):
        raise ConfigError(
            f"{where}: '{name}' must be {spec.type.__name__}, got {type(value).__name__} {value!r}"
        )
    value = _as_any(value)  # narrowed to `object` by the isinstance above; comparisons follow
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: '{name}' must be finite, got {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{where}: '{name}' must be one of {list(spec.choices)}, got {value!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise ConfigError(f"{where}: '{name}' must be >= {spec.minimum}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise ConfigError(f"{where}: '{name}' must be <= {spec.maximum}, got {value!r}")
    if spec.type is list and (
        not value or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise ConfigError(f"{where}: '{name}' must be a non-empty list of strings")
    if spec.attr == "SYMBOLS":
        bad = [v for v in value if not SYMBOL_RE.match(v)]
        if bad:
            raise ConfigError(f"{where}: '{name}' has invalid symbols {bad} (IB symbols are "
                              f"upper case, e.g. AAPL, BRK B)")
    return value


def _as_any(value: Any) -> Any:
    return value


def _env_value(spec: _Key, raw: str, var: str) -> Any:
    if spec.type is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"environment {var}: must be an int, got {raw!r}") from None
    return raw


@dataclass(frozen=True)
class Config:
    """The validated configuration (attribute names are the host application's)."""

    TRADING_MODE: str = "paper"
    ALLOW_LIVE: bool = False
    LOG_LEVEL: str = "INFO"
    IBKR_HOST: str = "127.0.0.1"
    IBKR_PORT: int = 7497
    IBKR_CLIENT_ID: int = 1
    IBKR_READ_ONLY: bool = False
    IBKR_ACCOUNT_ID: str = ""
    USE_IB_INSYNC: bool = True
    IBKR_CLIENT_LIBRARY: str = "auto"
    IBKR_TIMEOUT: float = 20.0
    IBKR_REQUEST_TIMEOUT: float = 10.0
    IBKR_AUTO_RECONNECT: bool = True
    IBKR_RECONNECT_BASE: float = 0.5
    IBKR_RECONNECT_CAP: float = 30.0
    IBKR_RECONNECT_MAX_ATTEMPTS: int = 0
    IBKR_LINK_GRACE: float = 60.0
    IBKR_MAX_RATE: int = 45
    IBKR_MARKET_DATA_TYPE: int = 1
    IBKR_PRICE_INCREMENT_POLICY: str = "round"
    IBKR_METRICS_PORT: int | None = None
    CHAIN_EXPIRATIONS: int = 4
    CHAIN_STRIKES: int = 6
    IBKR_MAX_STREAMS: int = 50
    CHAIN_STREAM_LINES: int = 50
    CHAIN_STREAM_IDLE: float = 300.0
    IBKR_ORDER_RETENTION_DAYS: int = 1
    IBKR_TICKER_RETENTION: float = 3600.0
    IBKR_RETENTION_SWEEP: float = 600.0
    IBKR_COMMISSION_WAIT: float = 5.0
    MAX_CONTRACTS_PER_ORDER: int = 10
    MAX_OPEN_ORDERS: int = 5
    RISK_CHECK_MARGIN: str = "auto"
    SYMBOLS: tuple[str, ...] = ("AAPL",)
    LOOP_INTERVAL: float = 0.1
    EXECUTOR_MAX_ATTEMPTS: int = 5
    PARTIAL_FILL_POLICY: str = "keep"
    PARTIAL_FILL_TIMEOUT: float = 60.0
    SERVICE_BROKER: str = "auto"
    SERVICE_HOST: str = "127.0.0.1"
    SERVICE_PORT: int = 8000
    SERVICE_TRADER: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>",
                  env: Mapping[str, str] | None = None) -> Config:
        """Validate a parsed config mapping; ``env`` (default ``os.environ``) overrides it."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for top_key, top_value in data.items():
            if top_key in _SECTIONS:
                if top_value is None:
                    continue
                if not isinstance(top_value, Mapping):
                    raise ConfigError(f"{source}: '{top_key}' must be a mapping")
                for key, value in top_value.items():
                    spec = _BY_PLACE.get((top_key, str(key)))
                    if spec is None:
                        raise ConfigError(f"{source}: unknown key '{top_key}.{key}'")
                    values[spec.attr] = _check(spec, value, source)
            else:
                spec = _BY_PLACE.get(("", str(top_key)))
                if spec is None:
                    raise ConfigError(f"{source}: unknown key '{top_key}'")
                values[spec.attr] = _check(spec, top_value, source)
        environ = os.environ if env is None else env
        for var, place in ENV_OVERRIDES.items():
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            spec = _BY_PLACE[place]
            values[spec.attr] = _check(spec, _env_value(spec, raw, var), f"environment {var}")
        if "SYMBOLS" in values:
            values["SYMBOLS"] = tuple(values["SYMBOLS"])
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str] = "config.yaml", *,
                  env: Mapping[str, str] | None = None) -> Config:
        """Read and validate ``path``; errors name the file and the key."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config file: {e}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: malformed YAML: {e}") from None
        return cls.from_dict(data or {}, source=str(p), env=env)

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (attribute names), validated like the file."""
        by_attr = {k.attr: k for k in SCHEMA}
        for attr, value in changes.items():
            if attr not in by_attr:
                raise ConfigError(f"unknown setting {attr!r}")
            _check(by_attr[attr], list(value) if attr == "SYMBOLS" else value, "replace()")
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        if "SYMBOLS" in changes:
            current["SYMBOLS"] = tuple(changes["SYMBOLS"])
        return Config(**current)


def setting(config: object, attr: str, default: Any) -> Any:
    """``config.attr`` converted to ``default``'s type; ``default`` only when it is missing.

    Lets brokers and the app take any object with the Config attributes. A present value is
    never replaced by the default: unambiguous values are converted (``"4002"`` → 4002,
    ``"2.5"`` → 2.5, ``1``/``"true"``/``"yes"`` → True, ``0``/``"false"``/``"no"`` → False),
    anything else raises :class:`ConfigError` naming the config key, the attribute and the
    value. Missing means: no such attribute, or a ``unittest.mock`` Mock value — a
    ``MagicMock(spec=Config)`` (the seeds' tests) answers every unset attribute with a
    MagicMock, which is treated as unset. The conversion lives in
    :mod:`src.brokers.settings_coerce` (the broker layer uses it without importing ``src.app``).
    """
    try:
        return settings_coerce.read(config, attr, default)
    except ConfigError as exc:
        spec = _BY_ATTR.get(attr)
        if spec is None:
            raise
        key = f"{spec.section}.{spec.key}" if spec.section else spec.key
        raise ConfigError(f"{key}: {exc}") from None


DEFAULTS: Config = Config()
