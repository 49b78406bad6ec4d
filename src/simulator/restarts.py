"""IB Gateway's own restarts: the daily auto-restart and the weekly token reset.

* **Daily restart** (IB Gateway's *Auto restart* / IBC's ``AutoRestartTime``): every client
  socket is closed gracefully with **no error code** (no 1100, no 2110: the process just exits),
  the API port is down for ``pause`` seconds, then the gateway is back with fresh session state
  (new sessions, no market-data or account subscriptions, order ids continuing) and the
  account's state kept: the same open orders and today's executions, which live on IB's
  servers. Fills can happen during the pause (``force_fill``, a price move).
* **Token reset** (the weekly Sunday re-authentication; IBC then waits for a new login with
  2FA): the gateway goes down the same way and stays down until :meth:`RestartFaults.release`.

While down, a connection attempt is either **refused** (no listener: a bare IB Gateway, whose API
port closes with the process) or **accepted, then closed** before a byte is sent (what clients of
gnzsnz/ib-gateway-docker see: its ``socat TCP-LISTEN:4004,fork TCP:127.0.0.1:4002`` relay keeps
listening and drops each connection when its upstream connect is refused). The close is a FIN
(socat's child exits normally), which ib_insync 0.9.86 / ib_async 2.1.0 do not report during the
handshake: ``Client._onSocketDisconnected`` emits nothing for a socket that is not yet
CONNECTED, so ``connectAsync`` waits for ``apiStart`` until its timeout.

Every accepted connection (sessions and relay drops) is recorded with its loop time, so a test
measures the client's reconnect spacing from the gateway's side.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from src.utils.logger import log_error, log_info

if TYPE_CHECKING:
    from src.simulator.server import GatewayServer

MODES = ("refuse", "close")
#: Seconds a dropped relay connection reads and discards before the socket is closed.
DROP_LINGER = 0.2


@dataclass(frozen=True)
class ConnectionAttempt:
    """One TCP connection the gateway (or its relay) accepted: loop time and outcome."""

    at: float  # the gateway loop's monotonic time
    outcome: str  # "session" (served) or "dropped" (accepted and closed while down)


class _Drop(asyncio.Protocol):
    """A connection accepted while the gateway is down: closed at once, nothing sent."""

    def __init__(self, faults: RestartFaults) -> None:
        self.faults = faults

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.faults.record("dropped")
        try:
            transport.write_eof()  # FIN first: the client reads an orderly close
        except OSError:
            transport.abort()
            return
        self.faults.loop.call_later(DROP_LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # discarded, as socat's child never reads it


class RestartFaults:
    """The gateway's restart faults (see the module doc); runs on the gateway's loop."""

    def __init__(self, server: GatewayServer, limit: int = 10_000) -> None:
        self.server = server
        self.loop = server.loop
        self.attempts: deque[ConnectionAttempt] = deque(maxlen=limit)
        self.state = "up"  # up | restarting | logged_out
        self._relay: asyncio.AbstractServer | None = None
        self._back: asyncio.TimerHandle | None = None
        server.on_accept = lambda: self.record("session")

    def record(self, outcome: str) -> None:
        self.attempts.append(ConnectionAttempt(self.loop.time(), outcome))

    async def daily_restart(self, pause: float, mode: str = "refuse") -> None:
        """Close every client without a code, stay down ``pause`` seconds, come back."""
        if pause < 0:
            raise ValueError(f"pause must be >= 0 seconds, got {pause!r}")
        await self._go_down("restarting", mode)
        log_info(f"simulated gateway: daily restart, back in {pause:g}s")
        self._back = self.loop.call_later(pause, self._back_up)

    def _back_up(self) -> None:
        self._back = None
        task = asyncio.ensure_future(self.release())
        task.add_done_callback(
            lambda t: None if t.cancelled() or t.exception() is None
            else log_error(f"simulated gateway: back up after the pause failed: "
                           f"{t.exception()}"))

    async def token_reset(self, mode: str = "close") -> None:
        """Close every client without a code and stay down until :meth:`release`."""
        await self._go_down("logged_out", mode)
        log_info("simulated gateway: token reset, down until released")

    async def release(self) -> None:
        """Back up (a new login): listen again with fresh sessions, account state kept."""
        if self._back is not None:
            self._back.cancel()
            self._back = None
        await self._stop_relay()
        if not self.server.listening:
            await self.server.start()
        self.state = "up"
        log_info("simulated gateway: back up")

    def cancel(self) -> None:
        """The gateway stops: no comeback scheduled, no relay left listening."""
        if self._back is not None:
            self._back.cancel()
            self._back = None
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.close()

    async def _go_down(self, state: str, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if self._back is not None:
            self._back.cancel()
            self._back = None
        self.server.shutdown_gracefully()
        self.state = state
        await self._stop_relay()
        if mode == "close":
            self._relay = await self.loop.create_server(
                lambda: _Drop(self), self.server.host, self.server.port, reuse_address=True)

    async def _stop_relay(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.close()
            await relay.wait_closed()
