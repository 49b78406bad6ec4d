"""The bearer token comes from IBKR_SERVICE_TOKEN or the file IBKR_SERVICE_TOKEN_FILE names."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_support import config, running

from src.service import create_app
from src.service.auth import TokenError, load_token

GOOD = "s3cret-token-from-a-docker-secret"


def test_token_from_the_environment_variable() -> None:
    assert load_token({"IBKR_SERVICE_TOKEN": GOOD}) == GOOD
    assert load_token({}) is None


def test_token_from_a_docker_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "service_token"
    secret.write_text(GOOD + "\n", encoding="utf-8")
    assert load_token({"IBKR_SERVICE_TOKEN_FILE": str(secret)}) == GOOD


@pytest.mark.parametrize(("env", "says"), [
    ({"IBKR_SERVICE_TOKEN": GOOD, "IBKR_SERVICE_TOKEN_FILE": "/x"}, "only one"),
    ({"IBKR_SERVICE_TOKEN_FILE": "/nonexistent/token"}, "IBKR_SERVICE_TOKEN_FILE"),
    ({"IBKR_SERVICE_TOKEN": "short"}, "at least 16"),
    ({"IBKR_SERVICE_TOKEN": ""}, "empty"),
])
def test_unusable_token_settings_fail_loudly_without_the_value(env: dict[str, str],
                                                               says: str) -> None:
    with pytest.raises(TokenError) as info:
        load_token(env)
    assert says in str(info.value)
    secret = env.get("IBKR_SERVICE_TOKEN")
    assert not secret or secret not in str(info.value)  # the value is never echoed


def test_app_reads_the_token_file_named_by_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "token"
    secret.write_text(GOOD, encoding="utf-8")
    monkeypatch.delenv("IBKR_SERVICE_TOKEN", raising=False)
    monkeypatch.setenv("IBKR_SERVICE_TOKEN_FILE", str(secret))
    app = create_app(config())
    with running(app) as client:
        assert client.get("/positions", headers={"Authorization": f"Bearer {GOOD}"}
                          ).status_code == 200
        assert client.get("/positions", headers={"Authorization": "Bearer x" * 3}
                          ).status_code == 401
