"""Bulk-request pacing that keeps room for orders (loop thread only).

ib_insync throttles every outgoing message in one first-come-first-served queue
(``client.MaxRequests`` per ``RequestsInterval``). A 480-option chain queues ~500 requests, and a
cancel or an order sent meanwhile would wait behind all of them (seconds). Bulk market-data work
(option contract details, option quotes) therefore takes its slots here first: at most
``max_rate - ORDER_RESERVE`` bulk messages per sliding second, so ib_insync's window always has
``ORDER_RESERVE`` slots a second free for order traffic, which goes straight out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

#: Messages per second that bulk work never takes (orders, cancels, single quotes use them).
ORDER_RESERVE: Final = 5
WINDOW: Final = 1.0


class BulkPacer:
    """A sliding-window limiter: ``await slot()`` before each bulk request."""

    def __init__(self, max_rate: Callable[[], int], reserve: int = ORDER_RESERVE, *,
                 clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self._max_rate = max_rate
        self.reserve = reserve
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()

    @property
    def rate(self) -> int:
        """Bulk messages allowed per window."""
        return max(1, self._max_rate() - self.reserve)

    async def slot(self) -> None:
        """Wait until a bulk message may go; the slot is taken when this returns (no await
        between the check and the taking, so concurrent waiters never overshoot)."""
        clock = self._clock or asyncio.get_running_loop().time
        while True:
            now = clock()
            sent = self._sent
            while sent and now - sent[0] >= WINDOW:
                sent.popleft()
            if len(sent) < self.rate:
                sent.append(now)
                return
            await self._sleep(sent[0] + WINDOW - now + 0.0005)
