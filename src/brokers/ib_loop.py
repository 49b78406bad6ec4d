"""IbLoop: one daemon thread owning one asyncio event loop, where all ib_insync code runs.

ib_insync is asyncio code bound to the loop it was created on; the host application calls the
broker from arbitrary threads. Every call is therefore marshalled onto the loop thread:

* ``run(coro_factory, timeout)`` — build the coroutine *on the loop thread*, await it there, and
  hand the result (or exception) back to the caller; the caller waits at most ``timeout`` s and
  the coroutine is cancelled when that deadline passes (``RequestTimeout`` is raised).
* ``call(fn, *args)`` — run a plain function on the loop thread (same result/exception/timeout
  rules). From the loop thread itself it runs inline (no deadlock).
* ``run`` from the loop thread itself raises ``RuntimeError`` (it would block the loop that must
  run the coroutine); loop-thread code awaits coroutines directly.

``ib_request`` is the one helper through which adapter code calls ib_insync request methods:
real ``IB`` objects always take the ``<name>Async`` path; plain ``MagicMock`` test doubles (whose
``xAsync()`` returns a non-awaitable mock and whose values are configured on the sync name) fall
back to the sync ``<name>(...)``.

``InflightRequests`` registers requests that a disconnect must end at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from src.brokers.errors import ConnectionLost, RequestTimeout, RetryableError
from src.utils.logger import get_logger

T = TypeVar("T")

_log = get_logger("loop")

DEFAULT_TIMEOUT = 30.0


class LoopClosed(RuntimeError):
    """The loop thread has been stopped; nothing can run on it any more."""


class IbLoop:
    """A daemon thread running a fresh asyncio event loop (started by the constructor)."""

    def __init__(self, name: str = "ib-loop", *, default_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.default_timeout = default_timeout
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):  # pragma: no cover - thread start never takes this long
            raise RuntimeError("event loop thread failed to start")

    # --- lifecycle ----------------------------------------------------------------------------

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        try:
            self._loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    self._loop.run_until_complete(
                        asyncio.wait(pending, timeout=2.0)
                    )
            except Exception:  # pragma: no cover - best effort shutdown
                _log.debug("error cancelling tasks at loop shutdown", exc_info=True)
            self._loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop (use it only from the loop thread, or via run/call)."""
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def in_loop_thread(self) -> bool:
        """True when called from the loop thread."""
        return threading.current_thread() is self._thread

    @property
    def closed(self) -> bool:
        return self._closed or not self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the loop (pending tasks are cancelled) and join the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._loop.is_running() or self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._loop.stop)
        if not self.in_loop_thread():
            self._thread.join(timeout)

    # --- marshalling --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise LoopClosed("the IB event loop thread is stopped")

    def run(
        self,
        coro_factory: Callable[[], Coroutine[Any, Any, T]],
        timeout: float | None = None,
    ) -> T:
        """Run ``coro_factory()`` on the loop thread; wait at most ``timeout`` seconds.

        Raises whatever the coroutine raised, ``RequestTimeout`` on the deadline (the coroutine is
        cancelled), ``LoopClosed`` after ``close()`` and ``RuntimeError`` from the loop thread.
        """
        if self.in_loop_thread():
            raise RuntimeError("IbLoop.run() called from the loop thread: await the coroutine")
        self._check_open()
        limit = self.default_timeout if timeout is None else timeout

        async def runner() -> T:
            return await asyncio.wait_for(coro_factory(), limit)

        future = asyncio.run_coroutine_threadsafe(runner(), self._loop)
        return self._wait(future, limit + 1.0)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` on the loop thread; return its result (inline on the loop thread)."""
        if self.in_loop_thread():
            return fn(*args)
        self._check_open()
        limit = self.default_timeout if timeout is None else timeout
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(job)
        return self._wait(future, limit)

    def submit(self, coro: Awaitable[Any]) -> concurrent.futures.Future[Any]:
        """Schedule a coroutine without waiting (fire and forget; errors are logged)."""
        self._check_open()

        async def wrap() -> Any:
            try:
                return await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("background task failed")
                raise

        return asyncio.run_coroutine_threadsafe(wrap(), self._loop)

    def _wait(self, future: concurrent.futures.Future[T], timeout: float) -> T:
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RequestTimeout(f"no answer from the IB loop within {timeout:.1f}s") from None
        except concurrent.futures.CancelledError:
            if self.closed:
                raise LoopClosed("the call was cancelled (loop stopped)") from None
            raise RetryableError("the request was cancelled on the IB loop") from None


# --- calling ib_insync ----------------------------------------------------------------------


async def ib_request(ib: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``ib.<name>Async(*args, **kwargs)`` and await it (the real IB path, on the loop).

    Test doubles: when the ``Async`` method returns something that is not awaitable (a plain
    ``MagicMock``), the sync ``ib.<name>(*args, **kwargs)`` of the double is called instead, so
    values configured on ``qualifyContracts``/``reqTickers``/… are honoured. A real ``IB`` never
    takes that path (its sync methods would re-enter the running loop).
    """
    result = getattr(ib, f"{name}Async")(*args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return getattr(ib, name)(*args, **kwargs)


class InflightRequests:
    """Gateway requests a disconnect must end at once (loop thread only).

    ib_insync 0.9.86's own ``disconnect()`` leaves in-flight request futures pending, and ticker
    waits end only on events: ``abort()`` cancels every registered request and its caller gets
    ``ConnectionLost`` instead of sitting out the request timeout.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()
        self._aborted: set[asyncio.Future[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, awaitable: Awaitable[T]) -> T:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if task in self._aborted:
                raise ConnectionLost("disconnected while the request was in flight") from None
            raise
        finally:
            self._tasks.discard(task)
            self._aborted.discard(task)

    def abort(self) -> None:
        for task in list(self._tasks):
            if not task.done():
                self._aborted.add(task)
                task.cancel()
