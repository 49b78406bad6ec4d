"""What the lifespan builds once per process, and the dependencies routes take it through."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from src.app.signals import Signal
from src.app.trader import Trader
from src.brokers.base import BrokerApi
from src.service.connector import Connector
from src.service.errors import ApiError
from src.utils.clock import Clock
from src.utils.logger import mask_account

MAX_REMEMBERED = 10_000  # idempotency keys / signals kept (oldest forgotten first)


class KeyedLocks:
    """One lock per idempotency key, so concurrent requests with one key run one at a time."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def get(self, key: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                if len(self._locks) >= MAX_REMEMBERED:
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                lock = self._locks[key] = threading.Lock()
            return lock


class Remembered:
    """A bounded, thread-safe map (oldest entries dropped first)."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._limit = limit

    def get(self, key: str) -> Any:
        with self._lock:
            return self._items.get(key)

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)


@dataclass
class ServiceState:
    """The process-wide objects: one broker, the Trader on it, its connector."""

    config: Any
    broker: BrokerApi
    backend: str
    trader: Trader
    connector: Connector | None
    clock: Clock
    metrics: Any = None  # ServiceMetrics
    trader_running: bool = False
    started: float = field(default_factory=time.monotonic)
    order_locks: KeyedLocks = field(default_factory=KeyedLocks)
    orders_by_key: Remembered = field(default_factory=Remembered)  # key -> (fingerprint, id)
    signals: Remembered = field(default_factory=Remembered)  # id -> Signal

    def remember_signal(self, signal: Signal) -> None:
        self.signals.put(signal.id, signal)

    @property
    def gateway(self) -> str:
        host = getattr(self.broker, "host", "?")
        port = getattr(self.broker, "port", "?")
        return mask_account(f"{host}:{port}")


async def get_state(request: Request) -> ServiceState:
    state = getattr(request.app.state, "service", None)
    if state is None:
        raise ApiError(503, "Starting", "the service is starting", retry_after=1)
    assert isinstance(state, ServiceState)
    return state


async def get_broker(request: Request) -> BrokerApi:
    """The process's broker (tests swap it with ``app.dependency_overrides[get_broker]``).
    Dependencies are ``async``: they never block, and a sync one would cost a thread hop."""
    state = await get_state(request)
    return state.broker
