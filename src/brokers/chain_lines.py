"""Streaming lines of recently requested option chains, kept open between calls (loop thread).

Why: a chain of N options costs N market-data requests. Under ib_insync's throttle (45 messages
per sliding second) any call that sends 46 or more messages cannot finish in under a second, so
a 48-option snapshot chain can never beat one pacing window. Keeping the chain's options
streaming lets the next call for the same symbol read live tickers instead: it sends nothing for
options it already streams, requests only the new ones and cancels the ones no longer wanted.
The quotes are the gateway's current ones (streaming, never a cached copy).

Bounded: a chain streams only if it fits ``CHAIN_STREAM_LINES`` (0 disables retention) and the
adapter's line budget beside the stock streams; lines are released when the chain has been idle
for ``CHAIN_STREAM_IDLE`` seconds, when a stock stream needs the room (LRU chain first), on any
gateway error for the line, and on every reconnect / 1101 (the next call re-requests them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Sized
from typing import TYPE_CHECKING, Any, Protocol

from src.brokers import translate
from src.brokers.compat import require_con_id
from src.brokers.md_permissions import forget_quote
from src.utils.logger import log_debug

if TYPE_CHECKING:
    from src.brokers.pacing import BulkPacer
    from src.brokers.settings import BrokerSettings


class LineOwner(Protocol):
    """What the retained lines need from the market-data service that owns them."""

    client: Any  # its ``ib`` (loop thread only)
    settings: BrokerSettings
    pacer: BulkPacer

    @property
    def streams(self) -> Sized: ...  # the stock streams (they count against the line budget)

    def publish(self) -> None: ...

#: The longest a new line may take to show its first quote and greeks (bounded further by the
#: request timeout); a line still without them is returned as it is (zeros where IB has none).
SETTLE_SECONDS = 2.0


def ready(ticker: Any) -> bool:
    """A streaming option line has its first quote (any of bid/ask/last) and model greeks."""
    quoted = any(translate.clean(getattr(ticker, f, None)) is not None
                 for f in ("bid", "ask", "last"))
    return quoted and getattr(ticker, "modelGreeks", None) is not None


class ChainLines:
    """Retained option lines per underlying symbol, least recently used first."""

    def __init__(self, service: LineOwner, limit: int, idle_seconds: float) -> None:
        self.service = service
        self.limit = max(0, limit)
        self.idle_seconds = idle_seconds
        self.lines: OrderedDict[str, dict[int, tuple[Any, Any]]] = OrderedDict()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._waiting: dict[int, asyncio.Future[None]] = {}  # id(ticker) -> first-quote wait
        self._in_use: dict[str, int] = {}  # symbol -> calls reading its lines right now

    def count(self) -> int:
        return sum(len(v) for v in self.lines.values())

    def make_room(self, symbol: str, wanted: int, budget: int) -> bool:
        """May ``symbol``'s chain of ``wanted`` options stream within ``budget`` lines (stock
        streams included)? Releases other chains, least recently used first, to make room;
        False (nothing released) when it cannot fit at all."""
        if not 0 < wanted <= self.limit or len(self.service.streams) + wanted > budget:
            return False

        def needed() -> int:
            return (len(self.service.streams) + self.count() - len(self.lines.get(symbol, {}))
                    + wanted - budget)

        # Only idle chains may be released: lines another call is reading right now stay.
        idle = [s for s in self.lines if s != symbol and not self._in_use.get(s)]
        if sum(len(self.lines[s]) for s in idle) < needed():
            return False  # cannot fit without robbing a call in flight: snapshots instead
        for lru in idle:
            if needed() <= 0:
                break
            self.drop(lru)
        return True

    # --- release --------------------------------------------------------------------------------

    def _cancel(self, contract: Any, ticker: Any) -> None:
        waiter = self._waiting.pop(id(ticker), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        ib = self.service.client.ib
        with contextlib.suppress(Exception):  # the line is gone either way
            if ib.isConnected() is True:
                ib.cancelMktData(contract)

    def drop(self, symbol: str, *, force: bool = False) -> None:
        """Cancel every retained line of ``symbol`` — not while a call is reading them (its
        caller would get holes), unless ``force`` (the session is gone: reconnect / 1101)."""
        if not force and self._in_use.get(symbol):
            return
        timer = self._timers.pop(symbol, None)
        if timer is not None:
            timer.cancel()
        lines = self.lines.pop(symbol, {})
        for contract, ticker in lines.values():
            self._cancel(contract, ticker)
        if lines:
            log_debug(f"Released {len(lines)} option lines of {symbol}")
            self.service.publish()

    def drop_lru(self) -> bool:
        """Release the least recently used idle chain; False when there is none."""
        idle = [s for s in self.lines if not self._in_use.get(s)]
        if not idle:
            return False
        self.drop(idle[0])
        return True

    def drop_all(self) -> None:
        for symbol in list(self.lines):
            self.drop(symbol, force=True)

    def on_error(self, req_id: int) -> bool:
        """A gateway error for one of the retained lines: forget it (the next call re-requests
        it) and end its first-quote wait. True if the request was one of ours."""
        table = getattr(getattr(self.service.client.ib, "wrapper", None), "reqId2Ticker", None)
        ticker = table.get(req_id) if isinstance(table, dict) else None
        if ticker is None:
            return False
        for lines in self.lines.values():
            for con_id, (contract, t) in list(lines.items()):
                if t is ticker:
                    del lines[con_id]
                    self._cancel(contract, t)
                    self.service.publish()
                    return True
        return False

    # --- use ------------------------------------------------------------------------------------

    def _touch(self, symbol: str, *, arm: bool) -> None:
        """Mark ``symbol``'s lines as used: most recent in LRU order; the idle timer is stopped
        while a call uses them and re-armed (``arm``) when it ends."""
        if symbol not in self.lines:
            return
        self.lines.move_to_end(symbol)
        timer = self._timers.pop(symbol, None)
        if timer is not None:
            timer.cancel()
        if arm:
            loop = asyncio.get_running_loop()
            self._timers[symbol] = loop.call_later(self.idle_seconds, self.drop, symbol)

    async def tickers(self, symbol: str, contracts: list[Any]) -> list[Any]:
        """Live tickers of ``contracts`` (``None`` for a line the gateway refused): retained
        lines reused, new ones requested and awaited (bounded), unwanted ones cancelled."""
        lines = self.lines.setdefault(symbol, {})
        self._touch(symbol, arm=False)
        self._in_use[symbol] = self._in_use.get(symbol, 0) + 1
        try:
            return await self._tickers(symbol, lines, contracts)
        finally:
            self._in_use[symbol] -= 1
            if not self._in_use[symbol]:
                del self._in_use[symbol]
            self._touch(symbol, arm=True)

    async def _tickers(self, symbol: str, lines: dict[int, tuple[Any, Any]],
                       contracts: list[Any]) -> list[Any]:
        ib = self.service.client.ib
        wanted = {c.conId for c in contracts}
        for con_id in [k for k in lines if k not in wanted]:
            self._cancel(*lines.pop(con_id))
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[None]] = []
        for c in contracts:
            if c.conId in lines:
                continue
            await self.service.pacer.slot()
            if c.conId in lines:  # requested meanwhile by a concurrent call for this symbol
                continue
            require_con_id(c)
            forget_quote(ib.ticker(c))  # the library hands a dropped line's ticker out again
            ticker = ib.reqMktData(c, "", False, False)
            lines[c.conId] = (c, ticker)
            if not ready(ticker):
                pending.append(self._wait_ready(loop, ticker))
        self.service.publish()
        if pending:
            settings = self.service.settings
            queued = len(self.service.streams) + self.count()  # lines possibly queued ahead
            timeout = min(settings.request_timeout,
                          SETTLE_SECONDS + queued / max(1, settings.max_rate))
            _, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                log_debug(f"{len(still)} option lines of {symbol} without a full quote yet")
            for f in still:
                f.cancel()
        current = self.lines.get(symbol, {})
        return [current[c.conId][1] if c.conId in current else None for c in contracts]

    def _wait_ready(self, loop: asyncio.AbstractEventLoop, ticker: Any) -> asyncio.Future[None]:
        done: asyncio.Future[None] = loop.create_future()
        key = id(ticker)
        self._waiting[key] = done

        def on_update(t: Any) -> None:
            if ready(t) and not done.done():
                done.set_result(None)

        def cleanup(_: asyncio.Future[None]) -> None:
            self._waiting.pop(key, None)
            with contextlib.suppress(Exception):
                ticker.updateEvent -= on_update

        ticker.updateEvent += on_update
        done.add_done_callback(cleanup)
        return done
