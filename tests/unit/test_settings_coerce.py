"""Settings are never silently replaced: unambiguous values are converted, the rest refused
(ConfigError naming the attribute and the value); only a missing setting takes the default."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock, patch

import pytest
import stubs

from src.app.config import Config, ConfigError, setting
from src.brokers.ibkr_api import IBKRApi
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi
from src.brokers.settings_coerce import read


@pytest.mark.parametrize(("value", "default", "expected"), [
    ("4002", 7497, 4002), (" 4002 ", 7497, 4002), (4002, 7497, 4002), (4002.0, 7497, 4002),
    ("2.5", 20.0, 2.5), (2, 20.0, 2.0), ("3", 20.0, 3.0), (2.5, 20.0, 2.5),
    (True, False, True), (False, True, False), (1, False, True), (0, True, False),
    ("1", False, True), ("0", True, False), ("true", False, True), ("TRUE", False, True),
    ("False", True, False), ("yes", False, True), ("No", True, False), (" yes ", False, True),
    ("paper", "live", "paper"), ("", "x", ""),
    (9100, None, 9100), ("9100", None, 9100), (None, None, None),
    (["AAPL", "MSFT"], ("AAPL",), ("AAPL", "MSFT")),
])
def test_unambiguous_values_are_converted(value: Any, default: Any, expected: Any) -> None:
    result = setting(SimpleNamespace(X=value), "X", default)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(("value", "default"), [
    ("abc", 7497), ("40.5", 7497), (4002.5, 7497), (True, 7497), ("", 7497), (None, 7497),
    ("fast", 20.0), (float("nan"), 20.0), ("inf", 20.0), (False, 20.0), (None, 20.0),
    (2, False), (-1, False), ("on", False), ("maybe", False), ("", False), (None, False),
    (1.0, False), (5, "paper"), (None, "paper"), ("x", None), (True, None),
    ("AAPL", ("AAPL",)), ([1, 2], ("AAPL",)),
])
def test_anything_else_is_refused_naming_the_attribute_and_value(value: Any,
                                                                 default: Any) -> None:
    with pytest.raises(ConfigError) as info:
        setting(SimpleNamespace(X=value), "X", default)
    assert isinstance(info.value, ValueError)
    assert "X" in str(info.value) and repr(value) in str(info.value)


def test_refusal_names_the_config_key_for_a_schema_attribute() -> None:
    with pytest.raises(ConfigError, match=r"^ibkr\.port: setting IBKR_PORT: .*'seven'"):
        setting(SimpleNamespace(IBKR_PORT="seven"), "IBKR_PORT", 7497)


def test_missing_attribute_and_mock_values_take_the_default() -> None:
    assert setting(object(), "IBKR_PORT", 7497) == 7497
    seed = MagicMock(spec=Config)  # unset attributes answer a MagicMock: unset
    assert setting(seed, "IBKR_PORT", 7497) == 7497
    assert setting(seed, "IBKR_READ_ONLY", False) is False
    seed.IBKR_PORT = 4002
    assert setting(seed, "IBKR_PORT", 7497) == 4002
    assert read(SimpleNamespace(), "X", 1.5) == 1.5


class Raising:
    @property
    def IBKR_PORT(self) -> int:  # noqa: N802 - the attribute's name
        raise AttributeError("not here")


def test_attribute_error_from_a_property_is_missing() -> None:
    assert setting(Raising(), "IBKR_PORT", 7497) == 7497


@pytest.fixture
def seed_ib() -> Iterator[MagicMock]:
    ib = stubs.mock_ib(stubs.StubState())
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        yield ib


def test_adapter_uses_the_converted_values(seed_ib: MagicMock) -> None:
    config = SimpleNamespace(IBKR_HOST="127.0.0.1", IBKR_PORT="4002", IBKR_CLIENT_ID="7",
                             IBKR_READ_ONLY=1, IBKR_TIMEOUT="2.5")
    api = IBKRIBInsyncApi(config)
    try:
        assert (api.port, api.client_id, api.read_only, api.timeout) == (4002, 7, True, 2.5)
        assert api.connect()
        assert seed_ib.connectAsync.await_args.args[:2] == ("127.0.0.1", 4002)
        assert seed_ib.connectAsync.await_args.kwargs["readonly"] is True
    finally:
        api.close()


def test_adapter_refuses_a_bad_setting_before_anything_starts(seed_ib: MagicMock) -> None:
    with pytest.raises(ConfigError, match="IBKR_READ_ONLY"):
        IBKRIBInsyncApi(SimpleNamespace(IBKR_READ_ONLY="sometimes"))
    seed_ib.connectAsync.assert_not_called()


def test_placeholder_uses_the_converted_values() -> None:
    api = IBKRApi(SimpleNamespace(IBKR_PORT="4002", IBKR_READ_ONLY="yes"))
    assert (api.port, api.read_only) == (4002, True)
