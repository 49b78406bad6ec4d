"""IBKRClient: the one object that owns a gateway session (seed 003, Milestone 4).

It owns the :class:`~src.brokers.ib_loop.IbLoop` thread, the ``IB`` instance made on it,
connect / disconnect / ``is_connected()``, the reconnect supervisor
(:mod:`~src.brokers.connection`), the event wiring (:mod:`~src.brokers.events`), the mapping of
IB codes onto the ``BrokerError`` tree (:mod:`~src.brokers.errors`), the metrics
(:mod:`~src.brokers.metrics`) and the session state: ``connected`` (one writer:
:meth:`IBKRClient.mark_connected`), ``last_error`` (one writer: :meth:`IBKRClient.record_error`),
``account_id``, ``data_health``, ``reconnect_count``.

Every public method is safe from any thread: it hands its work to the loop thread and waits with
a deadline. The order and market-data methods take ib_insync ``Contract`` / ``Order`` objects
(the caller's objects are copied before they reach the loop thread) and return frozen results
(:mod:`~src.brokers.client_types`), or raise a ``BrokerError``.

Who may touch ``client.ib``: only code running on the loop thread — the adapter's services
(orders_service, market_data, chain_lines, account) through ``client.run``/``client.call`` and
the handlers they subscribe. Nobody else: from any other thread use the typed methods.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from src.brokers.client_requests import ClientRequests
from src.brokers.client_types import ConnectionState
from src.brokers.client_what_if import WhatIfRequests
from src.brokers.connection import ConnectionManager
from src.brokers.errors import (
    BrokerError,
    ConnectionLost,
    LiveTradingNotAllowed,
    PacingViolation,
    from_exception,
)
from src.brokers.events import EventRouter
from src.brokers.ib_loop import IbLoop, InflightRequests
from src.brokers.metrics import AdapterMetrics
from src.brokers.settings import LIVE_PORTS, PAPER_ACCOUNT_PREFIXES, BrokerSettings
from src.utils.clock import SYSTEM_CLOCK, Clock
from src.utils.logger import log_error, log_info

T = TypeVar("T")



def default_ib_factory() -> Any:
    """The client library's ``IB()`` (ib_insync or ib_async, :mod:`~src.brokers.compat`;
    imported on first use: a placeholder-only app never loads it)."""
    from src.brokers.compat import IB

    return IB()


class IBKRClient(ClientRequests, WhatIfRequests):
    """One gateway session (see the module doc). ``close()`` stops its loop thread."""

    def __init__(self, settings: BrokerSettings | object, *,
                 ib_factory: Callable[[], Any] | None = None, clock: Clock = SYSTEM_CLOCK,
                 rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[Any]] | None = None,
                 metrics: AdapterMetrics | None = None) -> None:
        self.settings = settings if isinstance(settings, BrokerSettings) \
            else BrokerSettings.from_config(settings)
        self.clock = clock
        from src.brokers import compat  # the library is loaded with the first client

        # ibkr.client_library against the loaded library: a clear ValueError, before any IB()
        self.client_library: str = compat.require(self.settings.client_library)
        self.metrics = metrics if metrics is not None else AdapterMetrics()
        self.account_id: str = self.settings.account_id
        self.last_error: BrokerError | None = None
        self.reconnect_count = 0
        self.last_connect_seconds: float | None = None
        self.data_health: dict[str, str] = {}
        self.closing = False
        self._connected = False
        self._rest_state = ConnectionState.DISCONNECTED
        self._loss_cause: BrokerError | None = None  # what ended the session (e.g. error 100)
        self._session_hooks: list[Callable[[], Any]] = []
        self._lost_hooks: list[Callable[[], Any]] = []
        self._data_lost_hooks: list[Callable[[], Any]] = []
        self._error_handlers: list[Callable[[int, int, str], bool]] = []
        self._line_counters: list[Callable[[], int]] = []
        self._init_requests()
        self._init_what_if()
        self._next_local_id = 1
        self._id_lock = threading.Lock()  # never the adapter's lock: the loop must not wait
        self.inflight = InflightRequests()
        self.loop = IbLoop(name=f"ib-loop-{self.settings.client_id}",
                           default_timeout=max(self.settings.request_timeout, 1.0) * 3)
        self.ib: Any = self.loop.call(ib_factory or default_ib_factory)
        self.connection = ConnectionManager(self, rng=rng, sleep=sleep)
        self.events = EventRouter(self)
        self.loop.call(self.events.setup)
        self.on_request_error(self._what_if_error)
        if self.settings.metrics_port is not None:
            try:
                self.metrics.serve(self.settings.metrics_port)
            except OSError as exc:
                log_error(f"Cannot serve metrics on 127.0.0.1:{self.settings.metrics_port}: "
                          f"{exc}")

    # --- state (the one writer of each) ----------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def is_connected(self) -> bool:
        """True when the session is up and its post-connect work is done."""
        return self._connected

    def mark_connected(self, value: bool) -> None:
        """The one writer of ``connected`` (and of the ``ib_connection_status`` gauge)."""
        if value != self._connected:
            log_info(f"IBKR connection status: {'connected' if value else 'not connected'}")
        self._connected = bool(value)
        self.metrics.connection_status.set(1 if value else 0)

    def record_error(self, error: BrokerError) -> None:
        """The one writer of ``last_error``. A pacing violation (100) that ended the session is
        kept: the ``ConnectionLost`` errors that follow it do not overwrite the cause."""
        if isinstance(error, PacingViolation) and error.code == 100:
            self._loss_cause = error
        if isinstance(error, ConnectionLost) and self._loss_cause is not None:
            self.last_error = self._loss_cause
            return
        self.last_error = error

    def mark_lost(self) -> None:
        """The session ended (or a connect failed) without the user asking."""
        self._rest_state = ConnectionState.LOST

    def mark_stopped(self) -> None:
        """The user disconnected."""
        self._rest_state = ConnectionState.DISCONNECTED

    @property
    def state(self) -> ConnectionState:
        if self._connected:
            return ConnectionState.CONNECTED
        if self.connection.reconnecting:
            return ConnectionState.RECONNECTING
        if self.connection.connecting:
            return ConnectionState.CONNECTING
        return self._rest_state

    def is_live_account(self) -> bool:
        """True for a live port (7496/4001) or an account id that is not a paper one."""
        account = self.account_id or ""
        return self.settings.port in LIVE_PORTS or bool(account) and not account.startswith(
            PAPER_ACCOUNT_PREFIXES)

    def check_live(self) -> None:
        """Raise ``LiveTradingNotAllowed`` for a live account unless the config allows it."""
        s = self.settings
        if self.is_live_account() and not (s.trading_mode == "live" and s.allow_live):
            raise LiveTradingNotAllowed(
                "orders on a live account need trading_mode 'live' and allow_live true "
                f"(account {'?' if not self.account_id else self.account_id[:2] + '…'}, "
                f"port {s.port})")

    # --- hooks for the layers above (the adapter's services) ---------------------------------

    def subscribe(self, event: str, handler: Callable[..., Any]) -> None:
        """Wire ``handler`` (runs on the loop thread) to the IB event ``event``."""
        self.loop.call(self.events.subscribe, event, handler)

    def on_session(self, hook: Callable[[], Any]) -> None:
        """``hook()`` (sync or async, loop thread) runs after every (re)connect, before
        ``connected`` turns true (rebuild positions, reconcile orders, re-request streams)."""
        self._session_hooks.append(hook)

    def on_lost(self, hook: Callable[[], Any]) -> None:
        """``hook()`` (loop thread) runs when the session is lost (end waits)."""
        self._lost_hooks.append(hook)

    def on_data_lost(self, hook: Callable[[], Any]) -> None:
        """``hook()`` (loop thread) runs on IB's 1101 (connectivity back, data lost)."""
        self._data_lost_hooks.append(hook)

    def on_request_error(self, handler: Callable[[int, int, str], bool]) -> None:
        """``handler(req_id, code, message) -> handled`` for IB errors of requests."""
        self._error_handlers.append(handler)

    def count_lines(self, counter: Callable[[], int]) -> None:
        """Market-data lines held by another layer, counted in the subscriptions gauge."""
        self._line_counters.append(counter)

    def publish_lines(self) -> None:
        lines = len(self._lines) + sum(c() for c in self._line_counters)
        self.metrics.market_data_subscriptions.set(lines)

    # called by the connection manager / event router (loop thread) -----------------------------

    async def run_session_hooks(self) -> None:
        for hook in self._session_hooks:
            result = hook()
            if asyncio.iscoroutine(result):
                await result
        self._resubscribe_own_lines()

    def session_started(self) -> None:
        self._loss_cause = None

    def session_lost(self) -> None:
        if not self.connection.user_stopped and not self.closing:
            self.mark_lost()
        for hook in self._lost_hooks:
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - one hook must not stop the others
                log_error(f"Error in a connection-lost hook: {exc}")
        self.end_request_waits()
        self.abort_inflight()

    def data_lost(self) -> None:
        for hook in self._data_lost_hooks:
            hook()
        self._resubscribe_own_lines()

    def reconnected(self) -> None:
        self.reconnect_count += 1
        self.metrics.reconnects_total.inc()
        log_info(f"Reconnected to IBKR (reconnect #{self.reconnect_count})")

    def request_error(self, req_id: int, code: int, message: str) -> bool:
        handled = self._own_request_error(req_id, code, message)
        for handler in self._error_handlers:
            handled = handler(req_id, code, message) or handled
        return handled

    # --- loop access ---------------------------------------------------------------------------

    def run(self, coro_fn: Callable[[], Coroutine[Any, Any, T]], timeout: float | None = None
            ) -> T:
        """Run ``coro_fn()`` on the loop thread, wait at most ``timeout`` (any thread)."""
        return self.loop.run(coro_fn, timeout=timeout)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` on the loop thread (inline there), wait at most ``timeout``."""
        return self.loop.call(fn, *args, timeout=timeout)

    def dispatch(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run an event handler on the loop thread (inline there); never raises."""
        try:
            if self.loop.in_loop_thread() or self.loop.closed:
                fn(*args)
            else:
                self.loop.call(fn, *args, timeout=self.settings.request_timeout)
        except Exception as exc:  # noqa: BLE001 - an event must not kill the loop
            log_error(f"Error handling IB event {getattr(fn, '__name__', fn)}: {exc}")

    async def abortable(self, awaitable: Awaitable[T]) -> T:
        """Await a request that ``disconnect()`` / a connection loss ends at once (loop thread)."""
        return await self.inflight.run(awaitable)

    def abort_inflight(self) -> None:
        """End every in-flight ``abortable`` request with ``ConnectionLost`` (loop thread)."""
        self.inflight.abort()

    def next_order_id(self, *, local_only: bool = False) -> int:
        """A fresh order id: the gateway's id sequence when connected, else a local counter
        that never goes below the gateway's last id (unique either way)."""
        def local() -> int:
            with self._id_lock:
                rid = self._next_local_id
                self._next_local_id += 1
                return rid

        def take() -> int:
            if self._connected and self.ib.isConnected() is True:
                try:
                    rid = self.ib.client.getReqId()
                except Exception:  # noqa: BLE001 - fall back to the local counter
                    rid = None
                if isinstance(rid, int) and not isinstance(rid, bool):
                    with self._id_lock:
                        self._next_local_id = max(self._next_local_id, rid + 1)
                    return rid
            return local()

        if local_only:
            return local()
        try:
            return self.loop.call(take, timeout=self.settings.request_timeout)
        except Exception:  # noqa: BLE001 - loop stopped: the local counter is still unique
            return local()

    # --- lifecycle -----------------------------------------------------------------------------

    def connect(self) -> bool:
        """Connect (retrying in the background with ``auto_reconnect`` if the gateway is not up
        yet). True when connected; False (logged, ``last_error`` set) otherwise. Never raises."""
        s = self.settings
        log_info(f"Connecting to IBKR at {s.host}:{s.port} with client ID {s.client_id}")
        try:
            # a failure is recorded (last_error) on the loop thread, where the supervisor runs
            self.loop.run(self.connection.user_connect, timeout=3 * s.timeout + 5)
        except Exception as exc:  # noqa: BLE001 - the contract: never raises
            if self.loop.closed or not isinstance(exc, BrokerError):
                self.record_error(from_exception(exc))  # the loop never ran the attempt
            log_error(f"Failed to connect to IBKR: {exc}")
            return False
        return True

    def disconnect(self) -> None:
        """Disconnect (stops any reconnect attempts). Never raises; the loop keeps running."""
        try:
            if not self.loop.closed:
                self.loop.call(self.connection.disconnect, timeout=self.settings.request_timeout)
            log_info("Disconnected from IBKR")
        except Exception as exc:  # noqa: BLE001 - the contract: never raises
            log_error(f"Error disconnecting from IBKR: {exc}")
        finally:
            self.mark_connected(False)

    def socket_connected(self) -> bool:
        try:
            return bool(self.loop.call(lambda: self.ib.isConnected() is True, timeout=2.0))
        except Exception:  # noqa: BLE001
            return False

    def close(self) -> None:
        """Disconnect, stop the loop thread and the metrics server. Idempotent."""
        if self.closing and self.loop.closed:
            return
        self.closing = True
        if self._connected or self.connection.reconnecting or self.socket_connected():
            self.disconnect()
        try:
            if not self.loop.closed:
                self.loop.call(self.events.teardown, timeout=self.settings.request_timeout)
        except Exception:  # noqa: BLE001 - best effort
            pass
        self.metrics.close()
        self.loop.close()

    def __enter__(self) -> IBKRClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
