"""Polling with a deadline: the one barrier tests use where no event or round trip can serve."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02,
               what: str = "condition") -> Any:
    """Poll ``predicate`` until truthy (returns its value); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
