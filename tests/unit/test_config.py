"""Config: every validation path, the environment overrides, ``setting()`` and the shipped file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from src.app.config import DEFAULTS, SCHEMA, Config, ConfigError, setting

REPO = Path(__file__).resolve().parents[2]
NO_ENV: dict[str, str] = {}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    return Config.from_yaml(write(tmp_path, text), env=NO_ENV if env is None else env)


# -- the shipped file and the defaults --------------------------------------------------------


def test_shipped_config_yaml_loads_with_the_contract_defaults() -> None:
    config = Config.from_yaml(REPO / "config.yaml", env=NO_ENV)
    assert config.IBKR_HOST == "127.0.0.1"
    assert config.IBKR_PORT == 7497
    assert config.IBKR_CLIENT_ID == 1
    assert config.IBKR_ACCOUNT_ID == ""
    assert config.IBKR_READ_ONLY is False
    assert config.USE_IB_INSYNC is True
    assert config.IBKR_TIMEOUT == 20.0 and isinstance(config.IBKR_TIMEOUT, float)
    assert config.IBKR_AUTO_RECONNECT is True
    assert config.IBKR_MAX_RATE == 45
    assert config.TRADING_MODE == "paper"
    assert config.IBKR_METRICS_PORT is None
    assert config.SYMBOLS == ("AAPL",)


def test_every_schema_key_appears_in_the_shipped_file() -> None:
    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    missing = [k.key for k in SCHEMA if f"{k.key}:" not in text]
    assert missing == []


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "") == Config() == DEFAULTS


def test_empty_section_gives_the_defaults(tmp_path: Path) -> None:
    assert load(tmp_path, "ibkr:\n") == Config()


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.IBKR_PORT = 1  # type: ignore[misc]


# -- file-level errors -------------------------------------------------------------------------


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml: config file not found"):
        Config.from_yaml(path, env=NO_ENV)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_unreadable_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        Config.from_yaml(tmp_path, env=NO_ENV)  # a directory


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml: malformed YAML"):
        load(tmp_path, "ibkr: [unclosed\n")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping, got list"):
        load(tmp_path, "- a\n- b\n")


def test_section_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'ibkr' must be a mapping"):
        load(tmp_path, "ibkr: 5\n")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml: unknown key 'scanner_host'"):
        load(tmp_path, "scanner_host: x\n")


def test_unknown_nested_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'ibkr.prot'"):
        load(tmp_path, "ibkr:\n  prot: 4002\n")


def test_unknown_key_in_other_sections(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'risk.max_loss'"):
        load(tmp_path, "risk:\n  max_loss: 5\n")


# -- types -------------------------------------------------------------------------------------


def test_wrong_type_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'ibkr:\n  port: "abc"\n')
    with pytest.raises(ConfigError) as info:
        Config.from_yaml(path, env=NO_ENV)
    message = str(info.value)
    assert str(path) in message
    assert "'ibkr.port' must be int" in message
    assert "'abc'" in message


@pytest.mark.parametrize("text, key", [
    ("ibkr:\n  port: true\n", "ibkr.port"),          # a bool is not an int
    ("ibkr:\n  client_id: false\n", "ibkr.client_id"),
    ("ibkr:\n  read_only: 1\n", "ibkr.read_only"),   # an int is not a bool
    ("ibkr:\n  use_ib_insync: 'yes'\n", "ibkr.use_ib_insync"),
    ("ibkr:\n  auto_reconnect: 0\n", "ibkr.auto_reconnect"),
    ("ibkr:\n  timeout: true\n", "ibkr.timeout"),    # nor a float
    ("ibkr:\n  timeout: '20'\n", "ibkr.timeout"),
    ("ibkr:\n  port: 4002.0\n", "ibkr.port"),        # a float is not an int
    ("ibkr:\n  host: 127\n", "ibkr.host"),
    ("allow_live: 'no'\n", "allow_live"),
    ("trader:\n  symbols: AAPL\n", "trader.symbols"),
])
def test_wrong_types_are_rejected(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"'{key}' must be"):
        load(tmp_path, text)


def test_int_is_accepted_for_a_float_and_coerced(tmp_path: Path) -> None:
    config = load(tmp_path, "ibkr:\n  timeout: 5\n  reconnect_cap: 7\n")
    assert config.IBKR_TIMEOUT == 5.0 and isinstance(config.IBKR_TIMEOUT, float)
    assert isinstance(config.IBKR_RECONNECT_CAP, float)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_floats_are_rejected(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="'ibkr.timeout' must be"):
        load(tmp_path, f"ibkr:\n  timeout: {value}\n")


# -- ranges and choices ------------------------------------------------------------------------


@pytest.mark.parametrize("text, fragment", [
    ("ibkr:\n  port: 0\n", "'ibkr.port' must be >= 1"),
    ("ibkr:\n  port: 65536\n", "'ibkr.port' must be <= 65535"),
    ("ibkr:\n  client_id: -1\n", "'ibkr.client_id' must be >= 0"),
    ("ibkr:\n  max_rate: 51\n", "'ibkr.max_rate' must be <= 50"),
    ("ibkr:\n  max_rate: 0\n", "'ibkr.max_rate' must be >= 1"),
    ("ibkr:\n  timeout: 0.01\n", "'ibkr.timeout' must be >= 0.1"),
    ("ibkr:\n  market_data_type: 5\n", "'ibkr.market_data_type' must be one of [1, 2, 3, 4]"),
    ("trading_mode: demo\n", "'trading_mode' must be one of ['paper', 'live']"),
    ("log_level: TRACE\n", "'log_level' must be one of"),
    ("risk:\n  max_contracts_per_order: 0\n", "'risk.max_contracts_per_order' must be >= 1"),
    ("trader:\n  loop_interval: 0\n", "'trader.loop_interval' must be >= 0.001"),
    ("trader:\n  symbols: []\n", "'trader.symbols' must be a non-empty list of strings"),
    ("trader:\n  symbols: ['AAPL', '']\n", "'trader.symbols' must be a non-empty list"),
    ("trader:\n  symbols: ['AAPL', 5]\n", "'trader.symbols' must be a non-empty list"),
])
def test_out_of_range_values_are_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, text)


def test_range_bounds_are_inclusive(tmp_path: Path) -> None:
    config = load(tmp_path, "ibkr:\n  port: 65535\n  max_rate: 50\n  client_id: 0\n")
    assert (config.IBKR_PORT, config.IBKR_MAX_RATE, config.IBKR_CLIENT_ID) == (65535, 50, 0)


def test_metrics_port_is_nullable(tmp_path: Path) -> None:
    assert load(tmp_path, "ibkr:\n  metrics_port: null\n").IBKR_METRICS_PORT is None
    assert load(tmp_path, "ibkr:\n  metrics_port: 9108\n").IBKR_METRICS_PORT == 9108
    with pytest.raises(ConfigError, match="'ibkr.metrics_port' must be int"):
        load(tmp_path, "ibkr:\n  metrics_port: 'x'\n")


def test_non_nullable_key_rejects_null(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'ibkr.port' must be int, got NoneType"):
        load(tmp_path, "ibkr:\n  port: null\n")


def test_valid_values_are_read(tmp_path: Path) -> None:
    config = load(tmp_path, (
        "trading_mode: live\nallow_live: true\nlog_level: DEBUG\n"
        "ibkr:\n  host: gw.local\n  port: 4002\n  client_id: 7\n  read_only: true\n"
        "  account: DU1234567\n  use_ib_insync: false\n  timeout: 2.5\n"
        "risk:\n  max_contracts_per_order: 3\n  max_open_orders: 2\n"
        "trader:\n  symbols: [AAPL, SPY]\n  loop_interval: 0.5\n"))
    assert config.TRADING_MODE == "live" and config.ALLOW_LIVE is True
    assert config.LOG_LEVEL == "DEBUG"
    assert (config.IBKR_HOST, config.IBKR_PORT, config.IBKR_CLIENT_ID) == ("gw.local", 4002, 7)
    assert config.IBKR_READ_ONLY is True and config.USE_IB_INSYNC is False
    assert config.IBKR_ACCOUNT_ID == "DU1234567"
    assert config.IBKR_TIMEOUT == 2.5
    assert (config.MAX_CONTRACTS_PER_ORDER, config.MAX_OPEN_ORDERS) == (3, 2)
    assert config.SYMBOLS == ("AAPL", "SPY")
    assert config.LOOP_INTERVAL == 0.5


# -- environment overrides ---------------------------------------------------------------------


def test_env_overrides_win_over_the_file(tmp_path: Path) -> None:
    env = {"IBKR_HOST": "10.0.0.5", "IBKR_PORT": "4002", "IBKR_CLIENT_ID": "9",
           "IBKR_ACCOUNT": "DU7654321"}
    config = load(tmp_path, "ibkr:\n  host: 127.0.0.1\n  port: 7497\n", env=env)
    assert config.IBKR_HOST == "10.0.0.5"
    assert config.IBKR_PORT == 4002 and isinstance(config.IBKR_PORT, int)
    assert config.IBKR_CLIENT_ID == 9
    assert config.IBKR_ACCOUNT_ID == "DU7654321"


def test_blank_env_values_are_ignored(tmp_path: Path) -> None:
    config = load(tmp_path, "ibkr:\n  port: 4001\n", env={"IBKR_PORT": "", "IBKR_HOST": ""})
    assert config.IBKR_PORT == 4001 and config.IBKR_HOST == "127.0.0.1"


def test_bad_env_port_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment IBKR_PORT: must be an int, got 'abc'"):
        load(tmp_path, "", env={"IBKR_PORT": "abc"})


def test_env_port_out_of_range_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"environment IBKR_PORT: 'ibkr.port' must be <= 65535"):
        load(tmp_path, "", env={"IBKR_PORT": "70000"})


def test_process_environment_is_the_default(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IBKR_PORT", "4002")
    monkeypatch.delenv("IBKR_HOST", raising=False)
    assert Config.from_yaml(write(tmp_path, "")).IBKR_PORT == 4002


def test_from_dict_rejects_like_the_file() -> None:
    with pytest.raises(ConfigError, match=r"<dict>: unknown key 'ibkr.nope'"):
        Config.from_dict({"ibkr": {"nope": 1}}, env=NO_ENV)


# -- replace -----------------------------------------------------------------------------------


def test_replace_validates_and_copies() -> None:
    changed = DEFAULTS.replace(IBKR_PORT=4002, SYMBOLS=["SPY"])
    assert changed.IBKR_PORT == 4002 and changed.SYMBOLS == ("SPY",)
    assert DEFAULTS.IBKR_PORT == 7497
    with pytest.raises(ConfigError, match="unknown setting 'IBKR_PROT'"):
        DEFAULTS.replace(IBKR_PROT=1)
    with pytest.raises(ConfigError, match="'ibkr.port' must be int"):
        DEFAULTS.replace(IBKR_PORT="4002")
    with pytest.raises(ConfigError, match="'ibkr.port' must be <= 65535"):
        DEFAULTS.replace(IBKR_PORT=10**6)


# -- setting() ---------------------------------------------------------------------------------


def test_setting_reads_a_real_config() -> None:
    config = DEFAULTS.replace(IBKR_PORT=4002, IBKR_TIMEOUT=3.0)
    assert setting(config, "IBKR_PORT", 7497) == 4002
    assert setting(config, "IBKR_TIMEOUT", 20.0) == 3.0


def test_setting_falls_back_for_a_magicmock_spec_config() -> None:
    config = MagicMock(spec=Config)
    config.IBKR_HOST = "10.1.1.1"
    config.IBKR_PORT = 4002
    assert setting(config, "IBKR_HOST", "127.0.0.1") == "10.1.1.1"
    assert setting(config, "IBKR_PORT", 7497) == 4002
    # attributes the test left unset are MagicMocks: the defaults win
    assert setting(config, "IBKR_CLIENT_ID", 1) == 1
    assert setting(config, "IBKR_READ_ONLY", False) is False
    assert setting(config, "IBKR_TIMEOUT", 20.0) == 20.0
    assert setting(config, "IBKR_ACCOUNT_ID", "") == ""
    assert setting(config, "SYMBOLS", ("AAPL",)) == ("AAPL",)
    assert setting(config, "IBKR_METRICS_PORT", None) is None


def test_setting_falls_back_for_missing_attributes_and_objects() -> None:
    assert setting(None, "IBKR_PORT", 7497) == 7497
    assert setting(object(), "IBKR_HOST", "127.0.0.1") == "127.0.0.1"
    spec_only = MagicMock(spec=["IBKR_PORT"])
    assert setting(spec_only, "NOT_THERE", 5) == 5


class _Obj:
    IBKR_PORT = True  # a bool is not an int
    IBKR_READ_ONLY = 1  # an int is not a bool
    IBKR_TIMEOUT = 5  # an int is fine for a float
    LOOP_INTERVAL = float("nan")  # a non-finite float is not
    SYMBOLS = ["SPY", "QQQ"]
    IBKR_METRICS_PORT = 9108
    IBKR_HOST = 42


def test_setting_type_rules() -> None:
    """A present value is converted when unambiguous, refused otherwise (never the default)."""
    obj = _Obj()
    with pytest.raises(ConfigError, match="IBKR_PORT"):
        setting(obj, "IBKR_PORT", 7497)  # a bool is not an int
    assert setting(obj, "IBKR_READ_ONLY", False) is True  # 1 is unambiguous
    timeout = setting(obj, "IBKR_TIMEOUT", 20.0)
    assert timeout == 5.0 and isinstance(timeout, float)
    with pytest.raises(ConfigError, match="LOOP_INTERVAL"):
        setting(obj, "LOOP_INTERVAL", 0.1)  # not finite
    assert setting(obj, "SYMBOLS", ("AAPL",)) == ("SPY", "QQQ")
    assert setting(obj, "IBKR_METRICS_PORT", None) == 9108
    with pytest.raises(ConfigError, match="IBKR_HOST"):
        setting(obj, "IBKR_HOST", "127.0.0.1")


def test_setting_returns_other_values_as_is() -> None:
    marker = object()

    class Holder:
        THING = marker

    assert setting(Holder(), "THING", []) is marker


def test_setting_refuses_a_raising_property() -> None:
    class Broken:
        @property
        def IBKR_PORT(self) -> int:  # noqa: N802 - the config attribute's name
            raise RuntimeError("boom")

    with pytest.raises(ConfigError, match="IBKR_PORT.*boom"):  # present, unreadable: no default
        setting(Broken(), "IBKR_PORT", 7497)
