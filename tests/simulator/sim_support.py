"""Helpers for the simulated-gateway suite: client threads with their own event loops."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from src.simulator import SimulatedGateway, wire

ACCOUNT = "DU1234567"


class ClientThread:
    """A non-main thread with its own event loop, running jobs one after another."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Any] = queue.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True, name="ib-client")
        self._thread.start()

    def _main(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        while True:
            job = self._jobs.get()
            if job is None:
                break
            fn, fut = job
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
                fut.set_exception(e)
        self.loop.close()

    def run(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((fn, fut))
        return fut.result(timeout)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(10)


class Client:
    """One IB() of the library under test, living in its own ClientThread."""

    def __init__(self, mod: Any, gw: SimulatedGateway) -> None:
        self.mod = mod
        self.gw = gw
        self.thread = ClientThread()
        self.ib: Any = self.thread.run(mod.IB)

    def __call__(self, fn: Callable[[Any], Any], timeout: float = 30.0) -> Any:
        """Run ``fn(ib)`` (blocking API) in the client thread."""
        return self.thread.run(lambda: fn(self.ib), timeout)

    def aw(self, coro_fn: Callable[[Any], Any], timeout: float = 30.0) -> Any:
        """Run the coroutine ``coro_fn(ib)`` (async API) to completion in the client thread."""
        def job() -> Any:
            assert self.thread.loop is not None
            return self.thread.loop.run_until_complete(coro_fn(self.ib))
        return self.thread.run(job, timeout)

    def connect(self, client_id: int = 1, *, use_async: bool = False, timeout: float = 4.0,
                port: int | None = None) -> Any:
        port = port or self.gw.port
        if use_async:
            return self.aw(lambda ib: ib.connectAsync(self.gw.host, port, clientId=client_id,
                                                      timeout=timeout))
        return self(lambda ib: ib.connect(self.gw.host, port, clientId=client_id,
                                          timeout=timeout))

    def wait(self, pred: Callable[[Any], Any], timeout: float = 5.0) -> bool:
        """Run the client's loop until ``pred(ib)`` is true (False after ``timeout``)."""
        def job() -> bool:
            deadline = time.monotonic() + timeout
            while not pred(self.ib):
                if time.monotonic() > deadline:
                    return False
                # ib_insync's run() raises ConnectionError when the socket drops
                with contextlib.suppress(ConnectionError):
                    self.ib.sleep(0.02)
            return True
        return bool(self.thread.run(job, timeout + 10))

    def sleep(self, seconds: float) -> None:
        self(lambda ib: ib.sleep(seconds))

    def close(self) -> None:
        try:
            self(lambda ib: ib.disconnect(), timeout=10)
        finally:
            self.thread.close()


class StubEngine:
    """Minimal stand-in for OrderEngine (answers IB.connect()'s start-up sync, no orders).

    Only used when SIM_STUB_ENGINE=1 (developing the core while the real engine changes).
    """

    def __init__(self, market: Any, accounts: list[str]) -> None:
        self.accounts = accounts

    def handlers(self) -> dict[int, Callable[[Any, list[str]], None]]:
        return {
            61: lambda s, f: s.send(62, 1),
            5: lambda s, f: s.send(53, 1),
            99: lambda s, f: s.send(102),
            6: lambda s, f: s.send(54, 1, f[2]) if f[1] == "1" else None,
            76: lambda s, f: s.send(74, 1, int(f[1])),
            7: lambda s, f: s.send(55, 1, int(f[1])),
            15: lambda s, f: None,
            16: lambda s, f: s.send(53, 1),
            62: lambda s, f: s.send(64, 1, int(f[1])),
        }

    def attach(self, session: Any) -> None:
        pass

    def detach(self, session: Any) -> None:
        pass

    def next_order_id(self, client_id: int) -> int:
        return 1

    def on_prices(self) -> None:
        pass


class RawClient:
    """A bare TWS-protocol socket client, for what ib_insync cannot send (malformed input)."""

    def __init__(self, port: int, client_id: int | None = None,
                 versions: bytes = b"v157..176") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.reader = wire.FrameReader(expect_prefix=False)
        self.pending: list[list[str]] = []
        self.sock.sendall(wire.API_PREFIX + wire.frame(versions))
        self.server_version = int(self.recv()[0])
        if client_id is not None:
            self.send(71, 2, client_id, "")

    def send(self, *fields: wire.Field) -> None:
        self.sock.sendall(wire.encode_fields(*fields))

    def recv(self, timeout: float = 5.0) -> list[str]:
        """The next message's fields (socket.timeout / ConnectionError when none comes)."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the gateway")
            self.pending += [wire.split_fields(p) for p in self.reader.feed(data)]
        return self.pending.pop(0)

    def recv_until(self, msg_id: int, timeout: float = 5.0) -> list[list[str]]:
        """Messages up to and including the first with ``msg_id``."""
        out = []
        while True:
            m = self.recv(timeout)
            out.append(m)
            if m[0] == str(msg_id):
                return out

    def recv_error(self, timeout: float = 5.0) -> list[str]:
        """The next error message (msg id 4) that is not a farm-status notice (21xx)."""
        while True:
            m = self.recv_until(4, timeout)[-1]
            if not 2100 <= int(m[3]) < 2200:
                return m

    def close(self) -> None:
        self.sock.close()


#: None: the real src.simulator.orders.OrderEngine (SIM_STUB_ENGINE=1: a minimal stand-in).
ENGINE_FACTORY = StubEngine if os.environ.get("SIM_STUB_ENGINE") == "1" else None


def market_steps(gw: SimulatedGateway, n: int = 2, timeout: float = 10.0) -> None:
    """Wait until the gateway's market has taken ``n`` more steps (each runs the fill checks and
    pushes ticks on the gateway's loop) — a barrier, not a fixed sleep."""
    start = gw.call(lambda: gw.market.version)
    deadline = time.monotonic() + timeout
    while gw.call(lambda: gw.market.version) < start + n:
        if time.monotonic() > deadline:
            raise AssertionError(f"the market took fewer than {n} steps in {timeout}s")
        time.sleep(0.01)
