"""Keeps the service's broker connected for the life of the process.

The adapter reconnects by itself after a loss (``ibkr.auto_reconnect``), but not after a
*first* connect that failed: a service started before its gateway would stay down. The
connector thread calls ``connect()`` whenever the broker is neither connected nor reconnecting
on its own, with full-jitter exponential backoff (``ibkr.reconnect_base`` / ``reconnect_cap``).
The service starts at once: ``/ready`` says 503 until the first connect succeeds.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from src.app.config import setting
from src.service.health import health_of
from src.utils.logger import log_info, log_warning

POLL_SECONDS = 0.25  # how often a connected broker is looked at


class Connector:
    """A daemon thread that (re)connects ``broker`` until :meth:`stop`."""

    def __init__(self, broker: Any, config: Any, *, rng: random.Random | None = None) -> None:
        self.broker = broker
        self.base: float = setting(config, "IBKR_RECONNECT_BASE", 0.5)
        self.cap: float = setting(config, "IBKR_RECONNECT_CAP", 30.0)
        self.rng = rng or random.Random()
        self.attempts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected_once = threading.Event()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="service-connector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            view = health_of(self.broker)
            delay = POLL_SECONDS
            if view.connected:
                self.connected_once.set()
                failures = 0
            elif not view.reconnecting:
                self.attempts += 1
                if self.broker.connect():
                    log_info("Service connected to the gateway")
                    self.connected_once.set()
                    failures = 0
                else:
                    failures += 1
                    delay = self.rng.uniform(0.0, min(self.cap, self.base * 2 ** min(failures, 30)))
                    log_warning(f"Gateway not reachable (attempt {failures}); "
                                f"next try in {delay:.2f}s")
            self._stop.wait(delay)
