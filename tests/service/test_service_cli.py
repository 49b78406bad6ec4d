"""``ibkr-service``: arguments, and configuration errors that stop it before it listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.service.cli import main, parse_args


def test_defaults_come_from_the_config_and_flags_override() -> None:
    args = parse_args(["--config", "c.yaml", "--host", "127.0.0.2", "--port", "8123"])
    assert (args.config, args.host, args.port) == ("c.yaml", "127.0.0.2", 8123)
    defaults = parse_args([])
    assert (defaults.config, defaults.host, defaults.port) == ("config.yaml", None, None)
    with pytest.raises(SystemExit):
        parse_args(["--port", "0"])


def test_a_bad_config_key_exits_2_naming_it(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("service:\n  broker: imaginary\n", encoding="utf-8")
    assert main(["--config", str(cfg)]) == 2
    assert "service.broker" in capsys.readouterr().err


def test_an_unreadable_token_file_exits_2_naming_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("service:\n  broker: placeholder\n", encoding="utf-8")
    monkeypatch.delenv("IBKR_SERVICE_TOKEN", raising=False)
    monkeypatch.setenv("IBKR_SERVICE_TOKEN_FILE", str(tmp_path / "missing"))
    assert main(["--config", str(cfg)]) == 2
    assert "IBKR_SERVICE_TOKEN_FILE" in capsys.readouterr().err


def test_environment_overrides_the_service_section(tmp_path: Path) -> None:
    from src.app.config import Config

    cfg = tmp_path / "config.yaml"
    cfg.write_text("service:\n  host: 127.0.0.1\n  port: 8000\n", encoding="utf-8")
    config = Config.from_yaml(cfg, env={"IBKR_SERVICE_HOST": "0.0.0.0",
                                        "IBKR_SERVICE_PORT": "9001",
                                        "IBKR_SERVICE_BROKER": "placeholder"})
    assert (config.SERVICE_HOST, config.SERVICE_PORT, config.SERVICE_BROKER) == (
        "0.0.0.0", 9001, "placeholder")


def test_the_provider_picks_the_backend_from_the_config() -> None:
    from src.app.config import Config
    from src.brokers.ibkr_api import IBKRApi
    from src.service.providers import backend_name, build_broker

    assert backend_name(Config()) == "adapter"  # auto + use_ib_insync: true
    assert backend_name(Config().replace(USE_IB_INSYNC=False)) == "placeholder"
    assert backend_name(Config().replace(USE_IB_INSYNC=False, SERVICE_BROKER="adapter")) \
        == "adapter"  # an explicit choice wins over the library switch
    assert isinstance(build_broker(Config().replace(SERVICE_BROKER="placeholder")), IBKRApi)
