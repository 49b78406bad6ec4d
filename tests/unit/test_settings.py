"""BrokerSettings: parsed once from any config-like object, frozen, validated; its errors name
the config key; the app's ConfigError belongs to the same family."""

from __future__ import annotations

import dataclasses
from typing import Any
from unittest.mock import MagicMock

import pytest

from src.app.config import Config, ConfigError
from src.brokers.settings import CONFIG_ATTRS, BrokerSettings, SettingsError


def test_every_field_is_read_from_the_config() -> None:
    config = Config(IBKR_HOST="10.0.0.5", IBKR_PORT=4002, IBKR_CLIENT_ID=7,
                    IBKR_ACCOUNT_ID="DU999", IBKR_READ_ONLY=True, IBKR_TIMEOUT=3.0,
                    IBKR_REQUEST_TIMEOUT=4.0, IBKR_AUTO_RECONNECT=False, IBKR_LINK_GRACE=5.0,
                    IBKR_RECONNECT_BASE=0.1, IBKR_RECONNECT_CAP=2.0,
                    IBKR_RECONNECT_MAX_ATTEMPTS=3, IBKR_MAX_RATE=40, IBKR_MARKET_DATA_TYPE=3,
                    IBKR_METRICS_PORT=9100, CHAIN_EXPIRATIONS=2, CHAIN_STRIKES=3,
                    IBKR_MAX_STREAMS=20, CHAIN_STREAM_LINES=10, CHAIN_STREAM_IDLE=60.0,
                    MAX_CONTRACTS_PER_ORDER=5, TRADING_MODE="live", ALLOW_LIVE=True)
    s = BrokerSettings.from_config(config)
    for name, attr in CONFIG_ATTRS.items():
        assert getattr(s, name) == getattr(config, attr), name
    assert {f.name for f in dataclasses.fields(BrokerSettings)} == set(CONFIG_ATTRS)


def test_a_mock_config_gets_the_defaults() -> None:
    assert BrokerSettings.from_config(MagicMock(spec=Config)) == BrokerSettings()
    assert BrokerSettings.from_config(None) == BrokerSettings()


def test_settings_are_frozen() -> None:
    s = BrokerSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.port = 1  # type: ignore[misc]
    assert s.replace(port=4002).port == 4002 and s.port == 7497


@pytest.mark.parametrize(("field", "value", "key"), [
    ("port", 0, "ibkr.port"),
    ("port", 70000, "ibkr.port"),
    ("request_timeout", -1.0, "ibkr.request_timeout"),
    ("market_data_type", 5, "ibkr.market_data_type"),
    ("trading_mode", "real", "trading_mode"),
    ("max_contracts", 0, "risk.max_contracts_per_order"),
    ("host", " ", "ibkr.host"),
])
def test_bad_values_raise_naming_the_config_key(field: str, value: Any, key: str) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        BrokerSettings().replace(**{field: value})


def test_the_coercion_hook_is_used_for_every_setting() -> None:
    seen: list[str] = []

    def coerce(config: object, attr: str, default: Any) -> Any:
        seen.append(attr)
        return 4002 if attr == "IBKR_PORT" else default

    assert BrokerSettings.from_config(object(), coerce_fn=coerce).port == 4002
    assert sorted(seen) == sorted(CONFIG_ATTRS.values())


def test_config_error_is_a_settings_error() -> None:
    assert issubclass(ConfigError, SettingsError) and issubclass(SettingsError, ValueError)
    with pytest.raises(SettingsError):
        Config().replace(IBKR_PORT=0)
    with pytest.raises(SettingsError, match="unknown broker settings"):
        BrokerSettings().replace(nope=1)
