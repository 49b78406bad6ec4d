"""IbLoop: marshalling from many threads, exceptions, timeouts, re-entrancy, shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from unittest.mock import AsyncMock, MagicMock

import pytest

from src.brokers.errors import RequestTimeout
from src.brokers.ib_loop import IbLoop, LoopClosed, ib_request


@pytest.fixture
def loop() -> Iterator[IbLoop]:
    lp = IbLoop("test-loop", default_timeout=5.0)
    yield lp
    lp.close()


def test_calls_from_eight_threads_run_on_the_loop_thread(loop: IbLoop) -> None:
    seen: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    async def coro(i: int) -> int:
        await asyncio.sleep(0)
        return i * 2

    def worker(i: int) -> None:
        try:
            for j in range(25):
                assert loop.call(lambda: threading.current_thread().name) == "test-loop"
                assert loop.run(lambda i=i, j=j: coro(i * 100 + j)) == (i * 100 + j) * 2
            seen.append((i, threading.current_thread().name))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(seen) == 8


def test_exceptions_propagate_to_the_caller(loop: IbLoop) -> None:
    def boom() -> None:
        raise KeyError("from loop")

    async def aboom() -> None:
        raise ValueError("from coroutine")

    with pytest.raises(KeyError):
        loop.call(boom)
    with pytest.raises(ValueError, match="from coroutine"):
        loop.run(aboom)


def test_run_times_out_and_cancels(loop: IbLoop) -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(RequestTimeout):
        loop.run(forever, timeout=0.05)
    assert cancelled.wait(5)


def test_call_times_out_when_loop_is_blocked(loop: IbLoop) -> None:
    release = threading.Event()
    loop.loop.call_soon_threadsafe(release.wait, 5)
    with pytest.raises(RequestTimeout):
        loop.call(lambda: 1, timeout=0.05)
    release.set()
    assert loop.call(lambda: 2) == 2


def test_call_from_loop_thread_runs_inline_and_run_refuses(loop: IbLoop) -> None:
    def nested() -> tuple[int, str]:
        inner = loop.call(lambda: 41) + 1
        try:
            loop.run(lambda: asyncio.sleep(0))
        except RuntimeError as exc:
            return inner, str(exc)
        return inner, ""

    value, message = loop.call(nested)
    assert value == 42 and "loop thread" in message


def test_close_stops_thread_and_refuses_calls() -> None:
    lp = IbLoop("closing")
    assert lp.call(lambda: 1) == 1
    lp.close()
    assert lp.closed and not lp.thread.is_alive()
    with pytest.raises(LoopClosed):
        lp.call(lambda: 1)
    lp.close()  # idempotent


def test_ib_request_prefers_async_and_falls_back_for_plain_mocks(loop: IbLoop) -> None:
    real_like = MagicMock()
    real_like.qualifyContractsAsync = AsyncMock(return_value=["async"])
    assert loop.run(lambda: ib_request(real_like, "qualifyContracts", 1)) == ["async"]
    real_like.qualifyContracts.assert_not_called()

    plain = MagicMock()
    plain.qualifyContracts.return_value = ["sync"]
    assert loop.run(lambda: ib_request(plain, "qualifyContracts", 1)) == ["sync"]
    plain.qualifyContracts.assert_called_once_with(1)
