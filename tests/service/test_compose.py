"""docker-compose.yml validated by a real Compose implementation (Debian's ``docker-compose``,
which needs no daemon; ``make test`` installs it when missing), for every profile, and the
stack's safety properties checked on the *resolved* configuration."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROFILES = ([], ["paper"], ["observability"], ["paper", "observability"])
CLEAN_ENV_KEYS = ("SERVICE_PORT", "SERVICE_PAPER_PORT", "PROMETHEUS_PORT", "VNC_PORT",
                  "TWS_USERID", "COMPOSE_PROFILES", "COMPOSE_FILE")


def _compose(profiles: list[str], *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed: `make compose-tool` (apt-get install "
                    "docker-compose) — the compose validation must run")
    env_file = tmp_path / "empty.env"  # never the developer's .env
    env_file.write_text("", encoding="utf-8")
    argv = [tool, "--env-file", str(env_file), "-f", str(COMPOSE)]
    for p in profiles:
        argv += ["--profile", p]
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV_KEYS}
    return subprocess.run([*argv, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def _resolved(profiles: list[str], tmp_path: Path) -> dict[str, Any]:
    out = _compose(profiles, "config", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    data = yaml.safe_load(out.stdout)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "+".join(p) or "default")
def test_compose_file_is_valid_for_every_profile(profiles: list[str], tmp_path: Path) -> None:
    out = _compose(profiles, "config", "-q", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr


def test_every_published_port_is_bound_to_loopback(tmp_path: Path) -> None:
    services = _resolved(["paper", "observability"], tmp_path)["services"]
    published = 0
    for name, svc in services.items():
        for port in svc.get("ports", []):
            text = port if isinstance(port, str) else \
                f"{port.get('host_ip', '')}:{port.get('published')}:{port.get('target')}"
            assert text.startswith("127.0.0.1:"), f"{name} publishes {text}"
            published += 1
    assert published >= 4


def test_default_profile_is_the_simulator_and_the_service(tmp_path: Path) -> None:
    services = _resolved([], tmp_path)["services"]
    default = {name for name, svc in services.items() if not svc.get("profiles")}
    assert default == {"sim", "service"}  # `docker compose up`: no IB account needed
    assert services["sim"]["command"][0] == "ibkr-sim"
    assert services["service"]["network_mode"] == "service:sim"
    env = services["service"]["environment"]
    assert env["IBKR_PORT"] == "4002" and env["IBKR_SERVICE_TOKEN_FILE"].startswith("/run/")


def test_paper_gateway_settings(tmp_path: Path) -> None:
    services = _resolved(["paper"], tmp_path)["services"]
    gw = services["ib-gateway"]
    assert re.fullmatch(r"ghcr\.io/gnzsnz/ib-gateway:\d+\.\d+\.\w+", gw["image"]), gw["image"]
    env = gw["environment"]
    assert env["TRADING_MODE"] == "paper"
    assert env["TWS_PASSWORD_FILE"] == "/run/secrets/tws_password"
    assert "TWS_PASSWORD" not in env  # the password only ever comes from the secret
    assert re.fullmatch(r"\d{1,2}:\d{2} [AP]M", env["AUTO_RESTART_TIME"])
    assert {s["source"] for s in gw["secrets"]} >= {"tws_password"}
    ports = [str(p) for p in gw.get("ports", [])]
    assert ports == ["127.0.0.1:5900:5900/tcp"] or all(":5900" in p for p in ports)
    probe = " ".join(gw["healthcheck"]["test"])
    assert "/dev/tcp/127.0.0.1/4002" in probe and "4004" not in probe
    paper = services["service-paper"]["environment"]
    assert (paper["IBKR_HOST"], paper["IBKR_PORT"]) == ("ib-gateway", "4004")


def test_observability_scrapes_metrics_and_alerts_on_a_lost_connection(tmp_path: Path) -> None:
    services = _resolved(["observability"], tmp_path)["services"]
    assert "prometheus" in services and ":latest" not in services["prometheus"]["image"]
    prom = yaml.safe_load((ROOT / "docker/prometheus/prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert "sim:8000" in targets  # the default service shares sim's network namespace
    rules = yaml.safe_load((ROOT / "docker/prometheus/alerts.yml").read_text())
    exprs = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    assert exprs["IBGatewayConnectionLost"] == "ib_connection_status == 0"


def test_env_example_covers_every_variable_and_secrets_are_ignored() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(\w+)", text))
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert used <= defined, f"missing from .env.example: {sorted(used - defined)}"
    for path in ("secrets/service_token", "secrets/tws_password", ".env"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} is not git-ignored"
    assert subprocess.run(["git", "check-ignore", "-q", "secrets/README.md"],
                          cwd=ROOT).returncode == 1


def test_dockerfile_is_slim_pinned_non_root_with_a_ready_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases)
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and not user[-1].startswith(("0", "root"))
    assert re.search(r"^HEALTHCHECK .*?/ready", text, re.MULTILINE)
