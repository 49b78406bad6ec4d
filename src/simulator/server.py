"""The gateway's socket server: handshake, sessions, dispatch, pacing, faults.

One asyncio loop (the harness runs it in its own thread); every component's handlers run on
it. A session is one client connection (asyncio.Protocol, no per-message awaits).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any, Protocol

from src.simulator import wire
from src.simulator.faults import CONNECT_NOTICES, ERROR_TEXTS, NOTICE_TEXTS
from src.utils.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("src.simulator.server")

Handler = Callable[["Session", list[str]], None]

#: Seconds a rejected connection stays half-closed (reading and discarding) before closing.
CLOSE_LINGER = 0.5

#: Position of the request id in the fields after the msg id, for requests the simulator
#: does not implement (so the client's request ends with an error instead of hanging).
_REQ_ID_POS: dict[int, int] = {
    10: 1, 19: 2, 20: 0, 21: 1, 50: 1, 52: 1, 54: 1, 55: 1, 62: 1, 74: 1, 81: 0, 84: 0,
    86: 0, 87: 0, 88: 0, 92: 0, 94: 0, 96: 0, 97: 0, 100: 0, 102: 0, 104: 0,
}


class Engine(Protocol):
    """What the server needs from the order engine (src.simulator.orders.OrderEngine)."""

    def handlers(self) -> dict[int, Handler]: ...
    def attach(self, session: Session) -> None: ...
    def detach(self, session: Session) -> None: ...
    def next_order_id(self, client_id: int) -> int: ...
    def on_prices(self) -> None: ...


class Component(Protocol):
    def handlers(self) -> dict[int, Handler]: ...
    def detach(self, session: Session) -> None: ...
    def on_step(self) -> None: ...


class Session(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: GatewayServer, session_id: int) -> None:
        self.server = server
        self.session_id = session_id
        self.client_id: int = -1
        self.server_version: int = 0
        self.closed = False
        self.stopped = False  # rejected (pacing / duplicate clientId): ignore further input
        self.ready = False  # startApi accepted
        self.market_data_type = 1
        self.messages_received = 0
        self._transport: asyncio.Transport | None = None
        self._reader = wire.FrameReader(expect_prefix=True)
        self._times: deque[float] = deque()
        self._tokens = float(server.max_rate)
        self._token_time = server.loop_time()
        self._delayed: deque[tuple[float, bytes]] = deque()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._close_when_flushed = False

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.server._sessions.add(self)
        if self.server.on_accept is not None:
            self.server.on_accept()

    def data_received(self, data: bytes) -> None:
        if self.closed or self.stopped:
            return
        now = self.server.loop_time()
        try:
            payloads = self._reader.feed(data)
        except ValueError as e:
            log.warning("session %d: bad stream (%s); closing", self.session_id, e)
            self.close()
            return
        for payload in payloads:
            if self.closed or self.stopped:
                return
            self.server._on_payload(self, payload, now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.server._on_session_closed(self)

    # -- seam API ------------------------------------------------------------------------
    def send(self, *fields: wire.Field) -> None:
        """Send one message (fields[0] is the message id)."""
        self.send_raw(wire.encode_fields(*fields))

    def send_error(self, req_id: int, code: int, message: str) -> None:
        if self.server_version >= 166:
            self.send(4, 2, req_id, code, message, "")
        else:
            self.send(4, 2, req_id, code, message)

    def send_raw(self, data: bytes) -> None:
        t = self._transport
        if t is None or self.closed or self.server.silent:
            return
        latency = self.server.latency
        if latency <= 0 and not self._delayed:
            t.write(data)
            return
        loop = self.server.loop
        self._delayed.append((loop.time() + latency, data))
        if self._flush_handle is None:
            self._flush_handle = loop.call_at(self._delayed[0][0], self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        t = self._transport
        if t is None or self.closed:
            return
        loop = self.server.loop
        now = loop.time()
        chunks = []
        while self._delayed and self._delayed[0][0] <= now + 0.0005:
            chunks.append(self._delayed.popleft()[1])
        if chunks:
            t.write(b"".join(chunks))
        if self._delayed:
            self._flush_handle = loop.call_at(self._delayed[0][0], self._flush)
        elif self._close_when_flushed:
            self._finish()

    def close(self, flush: bool = True) -> None:
        """Close this connection: ``flush`` sends queued messages first (then closes
        gracefully, see ``_finish``); otherwise the socket is reset at once (a crash)."""
        t = self._transport
        if t is None or t.is_closing():
            return
        if not flush:
            t.abort()
        elif self._delayed:
            self._close_when_flushed = True
        else:
            self._finish()

    def _finish(self) -> None:
        """Half-close after the last message, discard what the client still sends, close.

        Closing with unread input would make the kernel send RST, which can destroy the error
        message (100, 326) the client has not read yet; IB's gateway lets it arrive.
        """
        t = self._transport
        if t is None or t.is_closing():
            return
        self.stopped = True
        try:
            if t.can_write_eof():
                t.write_eof()
        except OSError:
            t.abort()
            return
        self.server.loop.call_later(CLOSE_LINGER, t.close)

    def abort(self) -> None:
        self.close(flush=False)

    # -- pacing --------------------------------------------------------------------------
    def count_message(self, now: float, max_rate: int) -> tuple[bool, int]:
        """Record one incoming message against IB's ``max_rate`` msg/s limit.

        A token bucket (capacity ``max_rate``, refilled at ``max_rate``/s): a burst of more than
        ``max_rate`` messages, or a sustained rate above it, overdraws it. Unlike a strict
        sliding window it tolerates the arrival jitter a client pacing itself at 45/s sees.
        Returns (over the limit, messages received in the last second).
        """
        times = self._times
        times.append(now)
        while now - times[0] >= 1.0:
            times.popleft()
        self.messages_received += 1
        self._tokens = min(float(max_rate), self._tokens + (now - self._token_time) * max_rate)
        self._token_time = now
        self._tokens -= 1.0
        return self._tokens < 0.0, len(times)


class GatewayServer:
    """The listening socket plus the session registry and message dispatch."""

    def __init__(self, engine: Engine, accounts: Sequence[str], *, components: Sequence[Any] = (),
                 host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0,
                 pacing: bool = True, max_rate: int = 50, farm_notices: bool = True,
                 record_limit: int = 200_000,
                 loop: asyncio.AbstractEventLoop | None = None,
                 clock: Clock | None = None) -> None:
        self.clock: Clock = clock or getattr(getattr(engine, "market", None), "clock",
                                             None) or SYSTEM_CLOCK
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError(f"host: the simulator binds 127.0.0.1 only, got {host!r}")
        if not accounts:
            raise ValueError("accounts: at least one account is required")
        if latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        self.engine = engine
        self.accounts = list(accounts)
        self.components = list(components)
        self.host = "127.0.0.1"
        self.port = port
        self.latency = latency_ms / 1000.0
        self.pacing = pacing
        self.max_rate = max_rate
        self.farm_notices = farm_notices
        self.loop: asyncio.AbstractEventLoop = loop or asyncio.get_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._sessions: set[Session] = set()
        self._by_client: dict[int, Session] = {}
        self._next_session = 1
        self._silent_until = 0.0
        self._lock = threading.Lock()
        self._requests: deque[tuple[int, int, list[str]]] = deque(maxlen=record_limit)
        self._received: dict[int, int] = {}
        self.pacing_violations = 0
        self.on_accept: Callable[[], None] | None = None  # each accepted connection (restarts)
        self.handlers: dict[int, Handler] = {
            8: self._req_ids, 17: self._req_managed_accounts, 49: self._req_current_time,
            71: self._start_api_again,
        }
        for comp in [engine, *self.components]:
            self.handlers.update(comp.handlers())

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(
            self._new_session, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("simulated gateway listening on %s:%d", self.host, self.port)

    def _new_session(self) -> Session:
        s = Session(self, self._next_session)
        self._next_session += 1
        return s

    def kill(self) -> None:
        """Crash: close the listener and every connection (state is kept)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_clients()

    def drop_clients(self) -> None:
        for s in list(self._sessions):
            s.abort()

    def shutdown_gracefully(self) -> None:
        """A gateway that exits (daily restart, logout): listener closed, every connection
        closed in order (queued messages, then FIN) with no error code; the sessions are
        detached at once, so nothing more is sent to them (state is kept)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for s in list(self._sessions):
            s.close()
            self._on_session_closed(s)

    @property
    def listening(self) -> bool:
        return self._server is not None

    # -- helpers ---------------------------------------------------------------------------
    def loop_time(self) -> float:
        return self.loop.time()

    @property
    def silent(self) -> bool:
        return self._silent_until > 0 and self.loop.time() < self._silent_until

    def go_silent(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._silent_until = self.loop.time() + seconds

    def set_latency(self, ms: float) -> None:
        if ms < 0:
            raise ValueError("ms must be >= 0")
        self.latency = ms / 1000.0

    def refuse_wildcard_details(self, symbol: str, mode: str | None) -> None:
        """Fault: wildcard option contract details for ``symbol`` (see MarketData)."""
        for comp in self.components:
            refuse = getattr(comp, "refuse_wildcard_details", None)
            if refuse is not None:
                refuse(symbol, mode)

    def sessions(self) -> list[Session]:
        return [s for s in self._sessions if s.ready and not s.closed]

    def broadcast_error(self, code: int, message: str | None = None) -> None:
        text = message if message is not None else (NOTICE_TEXTS.get(code)
                                                    or ERROR_TEXTS.get(code, f"Error {code}"))
        for s in self.sessions():
            s.send_error(-1, code, text)

    def requests(self) -> list[tuple[int, int, list[str]]]:
        with self._lock:
            return list(self._requests)

    def received_per_client(self) -> dict[int, int]:
        with self._lock:
            return dict(self._received)

    # -- incoming --------------------------------------------------------------------------
    def _on_payload(self, s: Session, payload: bytes, now: float) -> None:
        fields = wire.split_fields(payload)
        if not s.server_version:
            if self.silent:
                return
            self._handshake(s, payload)
            return
        if not fields:
            return
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("session %d: bad message id %r", s.session_id, fields[0])
            s.send_error(-1, 320, ERROR_TEXTS[320].format(detail=f"bad message id {fields[0]!r}"))
            return
        args = fields[1:]
        if msg_id == 71 and s.client_id == -1 and len(args) > 1 and args[1].lstrip("-").isdigit():
            s.client_id = int(args[1])  # attribute startApi to the client it announces
        with self._lock:
            self._requests.append((s.client_id, msg_id, args))
            self._received[s.client_id] = self._received.get(s.client_id, 0) + 1
        over, rate = s.count_message(now, self.max_rate)
        if self.pacing and over:
            self.pacing_violations += 1
            log.warning("client %d exceeded %d msg/s (%d); closing", s.client_id,
                        self.max_rate, rate)
            s.send_error(-1, 100, ERROR_TEXTS[100].format(rec=rate))
            s.stopped = True  # process nothing more; queued messages still go out
            s.close()
            return
        if self.silent:
            return
        if not s.ready:
            if msg_id == 71:
                self._start_api(s, args)
            else:
                log.debug("session %d: msg %d before startApi ignored", s.session_id, msg_id)
            return
        handler = self.handlers.get(msg_id)
        if handler is None:
            self._unsupported(s, msg_id, args)
            return
        try:
            handler(s, args)
        except (ValueError, IndexError) as e:  # malformed request from the client
            log.warning("client %d: malformed msg %d %r: %s", s.client_id, msg_id, args[:20], e)
            req_id = _req_id(msg_id, args)
            s.send_error(req_id, 320, ERROR_TEXTS[320].format(detail=f"msg {msg_id}: {e}"))
        except Exception as e:  # a bad request must never take the loop down
            log.exception("client %d: error handling msg %d %r", s.client_id, msg_id, args)
            req_id = _req_id(msg_id, args)
            s.send_error(req_id, 320, ERROR_TEXTS[320].format(detail=f"msg {msg_id}: {e}"))

    def _handshake(self, s: Session, payload: bytes) -> None:
        try:
            lo, hi, _opts = wire.parse_handshake(payload)
            s.server_version = wire.negotiate_version(lo, hi)
        except ValueError as e:
            log.warning("session %d: %s", s.session_id, e)
            s.abort()
            return
        conn_time = self.clock.now().astimezone(UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"
        s.send(s.server_version, conn_time)

    def _start_api(self, s: Session, args: list[str]) -> None:
        try:
            client_id = int(args[1])
        except (IndexError, ValueError):
            s.send_error(-1, 320, ERROR_TEXTS[320].format(detail="startApi: bad clientId"))
            s.close()
            return
        other = self._by_client.get(client_id)
        if other is not None and not other.closed:
            s.client_id = client_id
            s.send_error(-1, 326, ERROR_TEXTS[326])
            s.stopped = True
            s.close()
            return
        s.client_id = client_id
        s.ready = True
        self._by_client[client_id] = s
        self.engine.attach(s)
        s.send(15, 1, ",".join(self.accounts))
        s.send(9, 1, self.engine.next_order_id(client_id))
        if self.farm_notices:
            for code in CONNECT_NOTICES:
                s.send_error(-1, code, NOTICE_TEXTS[code])

    def _on_session_closed(self, s: Session) -> None:
        self._sessions.discard(s)
        if s.ready:
            s.ready = False
            if self._by_client.get(s.client_id) is s:
                del self._by_client[s.client_id]
            for comp in [self.engine, *self.components]:
                try:
                    comp.detach(s)
                except Exception:
                    log.exception("detach failed for client %d", s.client_id)

    # -- SIM-CORE's own requests -----------------------------------------------------------
    def _req_ids(self, s: Session, args: list[str]) -> None:
        s.send(9, 1, self.engine.next_order_id(s.client_id))

    def _req_managed_accounts(self, s: Session, args: list[str]) -> None:
        s.send(15, 1, ",".join(self.accounts))

    def _req_current_time(self, s: Session, args: list[str]) -> None:
        s.send(49, 1, int(self.clock.now().timestamp()))

    def _start_api_again(self, s: Session, args: list[str]) -> None:
        log.debug("client %d: repeated startApi ignored", s.client_id)

    def _unsupported(self, s: Session, msg_id: int, args: list[str]) -> None:
        log.info("client %d: unsupported request %d", s.client_id, msg_id)
        req_id = _req_id(msg_id, args)
        s.send_error(req_id, 321, ERROR_TEXTS[321].format(
            detail=f"msg {msg_id}", cause="not supported by the simulated gateway"))

    # -- market steps ----------------------------------------------------------------------
    def on_step(self) -> None:
        if self.silent:
            return
        try:
            self.engine.on_prices()
        except Exception:
            log.exception("engine.on_prices failed")
        for comp in self.components:
            try:
                comp.on_step()
            except Exception:
                log.exception("%s.on_step failed", type(comp).__name__)


def _req_id(msg_id: int, args: list[str]) -> int:
    pos = _REQ_ID_POS.get(msg_id)
    if pos is None:
        pos = {1: 1, 2: 1, 9: 1, 78: 0, 7: 1, 62: 1, 76: 1}.get(msg_id)
    if pos is None or pos >= len(args):
        return -1
    try:
        return int(args[pos])
    except ValueError:
        return -1
