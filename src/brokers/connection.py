"""Connection lifecycle on the loop thread: connect, the start-up work after every (re)connect,
user disconnect, and the automatic reconnect supervisor (exponential backoff, jittered,
never faster than ``reconnect_base`` and never slower than ``reconnect_cap``).

Everything here runs on the IbLoop thread (the client marshals). The manager belongs to one
:class:`~src.brokers.ib_client.IBKRClient` and writes the session state only through it
(``client.mark_connected`` is the one writer of ``connected``). ``connected`` turns true only
when the post-connect work is done: account known, throttle and data type set, the adapter's
session hooks (positions rebuilt, orders reconciled, streams re-requested) run.

With ``auto_reconnect`` on, a failed first ``connect()`` starts the supervisor too: an
application started before TWS / IB Gateway (every Docker stack: the gateway takes a minute or
two to log in) connects once the gateway is up.
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
from src.utils.logger import log_error, log_info, log_warning, mask_account

if TYPE_CHECKING:
    from src.brokers.session import Session

MAX_EXPONENT = 60


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Jittered exponential backoff with a floor: ``uniform(min(base, c), c)`` where
    ``c = min(cap, base * 2**attempt)``. Full jitter (``uniform(0, c)``) could retry at once;
    during a long outage (IB's weekly token reset) that hammers the gateway, so no delay is
    shorter than ``base`` (nor than ``cap``, when ``cap < base``) and none longer than ``cap``."""
    ceiling = min(cap, base * (2 ** min(max(attempt, 0), MAX_EXPONENT)))
    return rng.uniform(min(base, ceiling), ceiling)


def _settle(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` if it still runs and retrieve its outcome, so a connect attempt abandoned
    mid-handshake never ends as "Task exception was never retrieved"."""
    if task.done():  # retrieve now: a done callback runs only if the loop turns once more,
        if not task.cancelled():  # and a closing adapter may stop the loop first
            task.exception()
        return
    task.cancel()
    task.add_done_callback(lambda t: None if t.cancelled() else t.exception())


class ConnectionManager:
    """Connects the adapter's ``IB`` and keeps it connected (see module doc)."""

    def __init__(self, client: Session, *, rng: random.Random | None = None,
                 sleep: Callable[[float], Awaitable[Any]] | None = None) -> None:
        self.client = client
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
        client = self.client
        if client.connected and client.ib.isConnected() is True:
            return  # already connected: connecting again would drop the live session
        try:
            await self.connect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            client.record_error(errors.from_exception(exc))
            client.mark_lost()
            # the gateway may come up later (Docker: it logs in for a minute or two): keep trying
            if client.settings.auto_reconnect and not self._user_stop and not client.closing:
                self._start_supervisor(f"first connect failed: {exc}")
            raise

    async def connect(self) -> None:
        """Connect and run the start-up work; raises on failure (the IB socket is closed)."""
        client = self.client
        settings = client.settings
        ib = client.ib
        # a new session: an 1100 of the previous one no longer holds (an 1100 during this
        # handshake aborts the attempt; after_connect marks IB connectivity ok)
        client.data_health.pop("ib", None)
        self.link_restored()
        loop = asyncio.get_running_loop()
        self._abort = loop.create_future()
        self._connecting = True
        started = time.monotonic()
        task = asyncio.ensure_future(ib_request(
            ib, "connect", settings.host, settings.port, clientId=settings.client_id,
            timeout=settings.timeout, readonly=settings.read_only, account=client.account_id))
        try:
            done, _ = await asyncio.wait({task, self._abort}, timeout=3 * settings.timeout + 1,
                                         return_when=asyncio.FIRST_COMPLETED)
            if task not in done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                if self._abort in done:
                    self._abort.result()  # raises the abort reason (326, socket closed)
                raise errors.RequestTimeout(
                    f"connect timed out after {3 * settings.timeout:.0f}s")
            task.result()
            if self._abort.done() and not self._abort.cancelled():
                self._abort.result()
            if not ib.isConnected():
                raise ConnectionLost("not connected after the API handshake")
            await self.after_connect()
        except BaseException:
            self._safe_ib_disconnect()
            client.mark_connected(False)
            raise
        finally:
            self._connecting = False
            _settle(task)  # cancelled mid-wait (user disconnect): end the attempt, retrieve it
            if not self._abort.done():
                self._abort.cancel()
            elif not self._abort.cancelled():
                self._abort.exception()  # retrieved: no "exception never retrieved" noise
        client.last_connect_seconds = time.monotonic() - started

    def abort_connect(self, exc: BrokerError) -> None:
        """End a connect attempt in progress now (error 326, socket closed during handshake)."""
        if self._connecting and self._abort is not None and not self._abort.done():
            self._abort.set_exception(exc)

    @property
    def connecting(self) -> bool:
        return self._connecting

    async def after_connect(self) -> None:
        """Start-up work after every (re)connect: account, throttle, data type, the session hooks
        (state rebuild); ``connected`` turns true only when all of it is done."""
        client = self.client
        settings = client.settings
        ib = client.ib
        accounts = ib.managedAccounts()
        if not client.account_id and isinstance(accounts, list) and accounts:
            client.account_id = str(accounts[0])
            log_info(f"Using account: {mask_account(client.account_id)}")
        ib.client.MaxRequests = settings.max_rate
        ib.reqMarketDataType(settings.market_data_type)
        if (not settings.account_id and isinstance(accounts, list) and len(accounts) > 1
                and client.account_id):
            # connectAsync only syncs account updates (portfolio) for one account
            try:
                await asyncio.wait_for(ib_request(ib, "reqAccountUpdates", client.account_id),
                                       settings.request_timeout)
            except Exception as exc:  # noqa: BLE001 - best effort, positions still follow
                log_warning(f"Account updates for {mask_account(client.account_id)} "
                            f"failed: {exc}")
        client.data_health["ib"] = "ok"
        await client.run_session_hooks()
        client.mark_connected(True)
        client.session_started()
        log_info(f"Connected to IBKR at {settings.host}:{settings.port} "
                 f"(client id {settings.client_id})")

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
        self.client.mark_stopped()
        self.client.abort_inflight()
        self.client.ib.disconnect()
        self._end_session()
        self.client.mark_connected(False)

    def _end_session(self) -> None:
        """What ib_insync does on a peer close but not on its own ``disconnect()``: fail the
        pending request futures and clear the session state (positions, portfolio, trades,
        tickers), so the next session starts from the gateway's truth, not a stale copy."""
        with contextlib.suppress(Exception):
            self.client.ib.wrapper.connectionClosed()

    def _safe_ib_disconnect(self) -> None:
        try:
            if self.client.ib.isConnected() is True:
                self.client.ib.disconnect()
                self._end_session()
        except Exception:  # noqa: BLE001 - cleanup only
            pass

    # --- TWS ↔ IB link (1100 / 1101 / 1102) ----------------------------------------------------

    def link_down(self) -> None:
        """1100: TWS lost its link to IB; the socket to TWS is still up. TWS normally restores
        it by itself (1101/1102); if it has not after ``link_grace`` seconds, treat the session
        as lost: close the socket and let the reconnect supervisor take over."""
        if self._link_timer is not None or not self.client.settings.auto_reconnect:
            return
        loop = asyncio.get_running_loop()
        self._link_timer = loop.call_later(self.client.settings.link_grace, self._link_expired)

    def link_restored(self) -> None:
        """1101/1102: the link is back; the watchdog stands down."""
        if self._link_timer is not None:
            self._link_timer.cancel()
            self._link_timer = None

    def _link_expired(self) -> None:
        self._link_timer = None
        client = self.client
        if self._user_stop or client.closing or client.data_health.get("ib") != "down":
            return
        log_warning(f"No 1101/1102 within {client.settings.link_grace:g}s of 1100: "
                    "reconnecting the socket")
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
        client = self.client
        client.mark_connected(False)
        client.session_lost()
        if self._connecting or self._user_stop or client.closing:
            return
        if not client.settings.auto_reconnect:
            log_warning(f"Disconnected from IBKR ({reason}); auto-reconnect is off")
            return
        self._start_supervisor(reason)

    def _start_supervisor(self, reason: str) -> None:
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), delay)

    async def _reconnect_loop(self) -> None:
        client = self.client
        settings = client.settings
        attempt = 0
        while not self._user_stop and not client.closing:
            limit = settings.reconnect_max_attempts
            if limit and attempt >= limit:
                log_error(f"Reconnect to IBKR abandoned after {attempt} attempts")
                return
            delay = backoff_delay(attempt, settings.reconnect_base, settings.reconnect_cap,
                                  self.rng)
            self.delays.append(delay)
            await self._wait(delay)
            if self._user_stop or client.closing:
                return
            self._safe_ib_disconnect()
            log_info(f"Reconnect attempt {attempt + 1} to IBKR at "
                     f"{settings.host}:{settings.port}")
            try:
                await self.connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure (326 too) is retried
                attempt += 1
                client.record_error(errors.from_exception(exc))
                log_warning(f"Reconnect attempt {attempt} failed: {exc}")
                continue
            client.reconnected()
            return
