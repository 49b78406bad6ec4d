"""Connection lifecycle on the loop thread: connect, the start-up work after every (re)connect,
user disconnect, and the automatic reconnect supervisor (exponential backoff, full jitter).

Everything here runs on the IbLoop thread (the facade marshals); state shared with other threads
(``api.connected`` …) is plain attribute writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from src.brokers import errors
from src.brokers.errors import BrokerError, ConnectionLost
from src.brokers.ib_loop import ib_request
from src.utils.logger import log_error, log_info, log_warning

if TYPE_CHECKING:
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

MAX_EXPONENT = 60


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: ``uniform(0, min(cap, base * 2**attempt))``."""
    ceiling = min(cap, base * (2 ** min(max(attempt, 0), MAX_EXPONENT)))
    return rng.uniform(0.0, ceiling)


class ConnectionManager:
    """Connects the adapter's ``IB`` and keeps it connected (see module doc)."""

    def __init__(self, api: IBKRIBInsyncApi, *, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[Any]] | None = None) -> None:
        self.api = api
        self.rng = rng or random.Random()
        self._sleep = sleep
        self._user_stop = False
        self._connecting = False
        self._abort: asyncio.Future[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._stop_event: asyncio.Event | None = None
        self.delays: list[float] = []  # the backoff delays used (tests, diagnostics)
        self._link_timer: asyncio.TimerHandle | None = None  # 1100 watchdog

    # --- connect ------------------------------------------------------------------------------

    async def user_connect(self) -> None:
        """``connect()`` from the user: cancels a running supervisor, then connects."""
        self._user_stop = False
        if self._reconnect_task is not None and not self._reconnect_task.done():
            self._reconnect_task.cancel()
            await asyncio.gather(self._reconnect_task, return_exceptions=True)
        self._reconnect_task = None
        if self.api.connected and self.api.ib.isConnected() is True:
            return  # already connected: connecting again would drop the live session
        await self.connect()

    async def connect(self) -> None:
        """Connect and run the start-up work; raises on failure (the IB socket is closed)."""
        api = self.api
        ib = api.ib
        # a new session: an 1100 of the previous one no longer holds (an 1100 during this
        # handshake aborts the attempt; after_connect marks IB connectivity ok)
        api.data_health.pop("ib", None)
        self.link_restored()
        loop = asyncio.get_running_loop()
        self._abort = loop.create_future()
        self._connecting = True
        started = time.monotonic()
        task = asyncio.ensure_future(ib_request(
            ib, "connect", api.host, api.port, clientId=api.client_id, timeout=api.timeout,
            readonly=api.read_only, account=api.account_id))
        try:
            done, _ = await asyncio.wait({task, self._abort}, timeout=3 * api.timeout + 1,
                                         return_when=asyncio.FIRST_COMPLETED)
            if task not in done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                if self._abort in done:
                    self._abort.result()  # raises the abort reason (326, socket closed)
                raise errors.RequestTimeout(f"connect timed out after {3 * api.timeout:.0f}s")
            task.result()
            if self._abort.done() and not self._abort.cancelled():
                self._abort.result()
            if not ib.isConnected():
                raise ConnectionLost("not connected after the API handshake")
            await self.after_connect()
        except BaseException:
            self._safe_ib_disconnect()
            api.connected = False
            api.metrics.connection_status.set(0)
            raise
        finally:
            self._connecting = False
            if not self._abort.done():
                self._abort.cancel()
            elif not self._abort.cancelled():
                self._abort.exception()  # retrieved: no "exception never retrieved" noise
        api.last_connect_seconds = time.monotonic() - started

    def abort_connect(self, exc: BrokerError) -> None:
        """End a connect attempt in progress now (error 326, socket closed during handshake)."""
        if self._connecting and self._abort is not None and not self._abort.done():
            self._abort.set_exception(exc)

    @property
    def connecting(self) -> bool:
        return self._connecting

    async def after_connect(self) -> None:
        """Start-up work after every (re)connect: account, throttle, data type, state rebuild."""
        api = self.api
        ib = api.ib
        accounts = ib.managedAccounts()
        if not api.account_id and isinstance(accounts, list) and accounts:
            api.account_id = str(accounts[0])
            log_info(f"Using account: {api.account_id}")
        ib.client.MaxRequests = api.max_rate
        ib.reqMarketDataType(api.market_data_type)
        if (not api.configured_account and isinstance(accounts, list) and len(accounts) > 1
                and api.account_id):
            # connectAsync only syncs account updates (portfolio) for one account
            try:
                await asyncio.wait_for(
                    ib_request(ib, "reqAccountUpdates", api.account_id), api.request_timeout)
            except Exception as exc:  # noqa: BLE001 - best effort, positions still follow
                log_warning(f"Account updates for {api.account_id} failed: {exc}")
        api.data_health["ib"] = "ok"
        api.connected = True
        api.metrics.connection_status.set(1)
        api.account_service.rebuild()
        api.order_service.reconcile()
        api.market_service.resubscribe_all()
        api.retention.after_connect()
        log_info(f"Connected to IBKR at {api.host}:{api.port} (client id {api.client_id})")

    # --- disconnect -----------------------------------------------------------------------------

    def disconnect(self) -> None:
        """User disconnect: stop any reconnect supervisor, close the socket."""
        self._user_stop = True
        self.link_restored()
        if self._stop_event is not None:
            self._stop_event.set()
        if self._reconnect_task is not None and not self._reconnect_task.done():
            self._reconnect_task.cancel()
        self._reconnect_task = None
        self.api.abort_inflight()
        self.api.ib.disconnect()
        self._end_session()
        self.api.connected = False
        self.api.metrics.connection_status.set(0)

    def _end_session(self) -> None:
        """What ib_insync does on a peer close but not on its own ``disconnect()``: fail the
        pending request futures and clear the session state (positions, portfolio, trades,
        tickers), so the next session starts from the gateway's truth, not a stale copy."""
        with contextlib.suppress(Exception):
            self.api.ib.wrapper.connectionClosed()

    def _safe_ib_disconnect(self) -> None:
        try:
            if self.api.ib.isConnected() is True:
                self.api.ib.disconnect()
                self._end_session()
        except Exception:  # noqa: BLE001 - cleanup only
            pass

    # --- TWS ↔ IB link (1100 / 1101 / 1102) ----------------------------------------------------

    def link_down(self) -> None:
        """1100: TWS lost its link to IB; the socket to TWS is still up. TWS normally restores
        it by itself (1101/1102); if it has not after ``link_grace`` seconds, treat the session
        as lost: close the socket and let the reconnect supervisor take over."""
        if self._link_timer is not None or not self.api.auto_reconnect:
            return
        loop = asyncio.get_running_loop()
        self._link_timer = loop.call_later(self.api.link_grace, self._link_expired)

    def link_restored(self) -> None:
        """1101/1102: the link is back; the watchdog stands down."""
        if self._link_timer is not None:
            self._link_timer.cancel()
            self._link_timer = None

    def _link_expired(self) -> None:
        self._link_timer = None
        api = self.api
        if self._user_stop or api.closing or api.data_health.get("ib") != "down":
            return
        log_warning(f"No 1101/1102 within {api.link_grace:g}s of 1100: reconnecting the socket")
        self._safe_ib_disconnect()
        self.connection_lost("IB link down (1100) past the grace period")

    # --- unexpected loss / reconnect ----------------------------------------------------------

    @property
    def user_stopped(self) -> bool:
        return self._user_stop

    @property
    def reconnecting(self) -> bool:
        return self._reconnect_task is not None and not self._reconnect_task.done()

    def connection_lost(self, reason: str) -> None:
        """The link went away without the user asking: mark it and start the supervisor."""
        api = self.api
        api.connected = False
        api.metrics.connection_status.set(0)
        api.order_service.connection_lost()
        api.abort_inflight()
        if self._connecting or self._user_stop or api.closing:
            return
        if not api.auto_reconnect:
            log_warning(f"Disconnected from IBKR ({reason}); auto-reconnect is off")
            return
        if self.reconnecting:
            return
        log_warning(f"Disconnected from IBKR ({reason}); reconnecting")
        self._stop_event = asyncio.Event()
        self._reconnect_task = asyncio.ensure_future(self._reconnect_loop())

    async def _wait(self, delay: float) -> None:
        if self._sleep is not None:
            await self._sleep(delay)
            return
        assert self._stop_event is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), delay)

    async def _reconnect_loop(self) -> None:
        api = self.api
        attempt = 0
        while not self._user_stop and not api.closing:
            limit = api.reconnect_max_attempts
            if limit and attempt >= limit:
                log_error(f"Reconnect to IBKR abandoned after {attempt} attempts")
                return
            delay = backoff_delay(attempt, api.reconnect_base, api.reconnect_cap, self.rng)
            self.delays.append(delay)
            await self._wait(delay)
            if self._user_stop or api.closing:
                return
            self._safe_ib_disconnect()
            try:
                await self.connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure (326 too) is retried
                attempt += 1
                api.last_error = errors.from_exception(exc)
                log_warning(f"Reconnect attempt {attempt} failed: {exc}")
                continue
            api.reconnect_count += 1
            api.metrics.reconnects_total.inc()
            log_info(f"Reconnected to IBKR (reconnect #{api.reconnect_count})")
            return
