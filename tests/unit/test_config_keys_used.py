"""Every config.yaml key is used: log_level configures logging at the entry points,
trader.symbols is what the Trader watches (and the demo trades), trader.max_attempts is settable."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from src.app.__main__ import log_level, main
from src.app.config import Config, ConfigError
from src.app.executor import TradeExecutor
from src.app.signals import Signal
from src.app.trader import Trader
from src.brokers.ibkr_api import IBKRApi


@pytest.fixture
def root_level() -> Iterator[None]:
    root = logging.getLogger()
    before = root.level
    yield
    root.setLevel(before)


@pytest.mark.parametrize(("name", "verbose", "expected"), [
    ("DEBUG", False, logging.DEBUG), ("info", False, logging.INFO),
    ("WARNING", False, logging.WARNING), ("ERROR", False, logging.ERROR),
    ("ERROR", True, logging.INFO), ("DEBUG", True, logging.DEBUG),
])
def test_log_level_names(name: str, verbose: bool, expected: int) -> None:
    assert log_level(name, verbose) == expected


def test_log_level_refuses_an_unknown_name() -> None:
    with pytest.raises(ConfigError, match="log_level"):
        log_level("LOUD")


@pytest.mark.parametrize(("level", "expected"), [("DEBUG", logging.DEBUG),
                                                 ("ERROR", logging.ERROR),
                                                 ("INFO", logging.WARNING)])
def test_the_demo_entry_point_applies_log_level(tmp_path: Path, root_level: None, level: str,
                                                expected: int,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"log_level: {level}\n", encoding="utf-8")
    assert main(["--demo", "--broker", "placeholder", "--config", str(cfg)]) == 0
    assert logging.getLogger().level == expected
    capsys.readouterr()


def test_trader_watches_trader_symbols() -> None:
    config = Config(SYMBOLS=("MSFT", "SPY"), USE_IB_INSYNC=False)
    broker = IBKRApi(config)
    trader = Trader(config=config, broker=broker)
    assert trader.symbols == ("MSFT", "SPY")
    status, reason = trader.process_signal(Signal("AAPL", "LONG", 1))
    assert status == "REJECTED" and "trader.symbols" in reason and "AAPL" in reason
    assert broker.orders == {}
    status, _ = trader.process_signal(Signal("MSFT", "LONG", 1, price_type="MARKET"))
    assert status != "REJECTED"


def test_the_demo_trades_the_first_of_trader_symbols(tmp_path: Path, root_level: None,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("trader:\n  symbols: [MSFT]\n", encoding="utf-8")
    assert main(["--demo", "--broker", "placeholder", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "Quote MSFT" in out and "Quote AAPL" not in out


def test_executor_max_attempts_is_a_config_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("trader:\n  max_attempts: 2\n", encoding="utf-8")
    config = Config.from_yaml(cfg)
    assert config.EXECUTOR_MAX_ATTEMPTS == 2
    assert TradeExecutor(config, MagicMock()).max_attempts == 2
    with pytest.raises(ConfigError, match="trader.max_attempts"):
        Config.from_dict({"trader": {"max_attempts": 0}})


def test_every_setting_the_code_reads_is_a_config_key() -> None:
    """``setting(config, "X", …)`` anywhere in src/, and every attribute the broker layer's
    BrokerSettings reads (its CONFIG_ATTRS table), names an attribute of config.SCHEMA."""
    import re

    from src.app.config import SCHEMA
    from src.brokers.settings import CONFIG_ATTRS

    src = Path(__file__).resolve().parents[2] / "src"
    read = set()
    for path in src.rglob("*.py"):
        read |= set(re.findall(r'setting\(\s*[\w.]+,\s*"([A-Z_0-9]+)"',
                               path.read_text(encoding="utf-8")))
    read |= set(CONFIG_ATTRS.values())
    assert "EXECUTOR_MAX_ATTEMPTS" in read and "IBKR_PORT" in read  # the scan finds them
    assert read <= {k.attr for k in SCHEMA}, sorted(read - {k.attr for k in SCHEMA})


def test_trader_symbols_must_be_ib_symbols() -> None:
    with pytest.raises(ConfigError, match=r"trader\.symbols.*'aapl'"):
        Config.from_dict({"trader": {"symbols": ["MSFT", "aapl"]}})
    assert Config.from_dict({"trader": {"symbols": ["BRK B"]}}).SYMBOLS == ("BRK B",)
