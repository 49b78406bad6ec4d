"""`python -m src.simulator` runs standalone; examples/sim_roundtrip.py works against it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from src.simulator.__main__ import parse_args

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sim_process() -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "src.simulator", "--port", str(port), "--seed", "5",
         "--latency-ms", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ibkr-sim listening on 127.0.0.1:PORT"
        assert f"127.0.0.1:{port}" in line, line
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_roundtrip_example_against_standalone_sim(sim_process: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sim_roundtrip.py"), "--port",
         str(sim_process)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "AAPL conId=265598" in out.stdout
    assert "cancelled status=Cancelled" in out.stdout
    assert time.perf_counter() - t0 < 30


def test_cli_arguments() -> None:
    a = parse_args(["--port", "4010", "--seed", "3", "--latency-ms", "25", "--universe", "u.yaml"])
    assert (a.port, a.seed, a.latency_ms, a.universe) == (4010, 3, 25.0, "u.yaml")
    assert parse_args([]).port == 4002
    with pytest.raises(SystemExit):
        parse_args(["--latency-ms", "-1"])
