"""Subprocesses for the end-to-end tests: the simulated gateway and the service, on free
loopback ports, with their output in files (a full pipe would stall them)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def executable(name: str) -> str:
    """The console script ``name`` of this environment (installed by ``pip install -e``)."""
    found = BIN / name
    if found.exists():
        return str(found)
    which = shutil.which(name)
    if which is None:
        raise AssertionError(f"{name} is not installed: run `make venv`")
    return which


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Proc:
    """A child process with its output captured to ``log``; ``stop()`` ends it (bounded)."""

    def __init__(self, argv: Sequence[str], log: Path, env: dict[str, str] | None = None,
                 cwd: Path = ROOT) -> None:
        self.argv = list(argv)
        self.log = log
        self._out = log.open("ab")
        full_env = {**os.environ, **(env or {})}
        self.popen = subprocess.Popen(self.argv, cwd=cwd, env=full_env, stdout=self._out,
                                      stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._out.close()
        return int(self.popen.returncode)


def start_sim(port: int, log: Path) -> Proc:
    sim = Proc([executable("ibkr-sim"), "--port", str(port), "--seed", "3",
                "--log-level", "WARNING"], log)
    until(lambda: port_open(port) or not sim.alive(), 20, "the simulated gateway to listen")
    assert sim.alive(), sim.output()
    return sim


def until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy (its value); AssertionError after ``timeout`` s."""
    return wait_until(predicate, timeout, interval, what)


def get_status(client: httpx.Client, path: str) -> int:
    try:
        return client.get(path).status_code
    except httpx.TransportError:
        return 0
