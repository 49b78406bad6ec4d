"""``_settle``: a connect attempt that already failed is retrieved at once, not on a later loop
turn — a closing adapter stops its loop first, and asyncio then logs "exception was never
retrieved" for a ConnectionRefusedError nobody could have handled."""

from __future__ import annotations

import asyncio
import gc

from src.brokers.connection import _settle


def test_a_failed_attempt_is_retrieved_without_another_loop_turn() -> None:
    loop = asyncio.new_event_loop()
    reported: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        attempt: asyncio.Future[None] = loop.create_future()
        attempt.set_exception(ConnectionRefusedError(111, "Connect call failed"))
        _settle(attempt)  # the loop never runs again after this (the adapter is closing)
        del attempt
        gc.collect()
    finally:
        loop.close()
    assert reported == []


def test_a_running_attempt_is_cancelled() -> None:
    loop = asyncio.new_event_loop()
    try:
        attempt: asyncio.Future[None] = loop.create_future()
        _settle(attempt)
        assert attempt.cancelled()
    finally:
        loop.close()
