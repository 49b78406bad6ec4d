"""The one clock everything asks "what time / what trading day is it".

Options expire, executions belong to a day and caches roll over on the **New York** trading
date, not the host's local date: a host in Tokyo or UTC is already on Wednesday while the
exchange still trades Tuesday. Code never reads the calendar directly (``date.today()``,
``datetime.now()``); it takes a :class:`Clock` (default :data:`SYSTEM_CLOCK`) and asks it.
Tests pin a :class:`FixedClock`.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, runtime_checkable

import pytz

NEW_YORK = pytz.timezone("America/New_York")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@runtime_checkable
class Clock(Protocol):
    """A source of the current instant (timezone-aware)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still until moved (tests, replays). Thread-safe."""

    def __init__(self, instant: datetime) -> None:
        self._lock = threading.Lock()
        self._now = _aware(instant)

    @classmethod
    def new_york(cls, day: date, at: time = time(10, 0)) -> FixedClock:
        """A clock at ``at`` New York time on ``day`` (default 10:00, the market open)."""
        return cls(ny_datetime(day, at))

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = _aware(instant)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now = self._now + delta
            return self._now

    def __repr__(self) -> str:
        return f"FixedClock({self.now().astimezone(NEW_YORK).isoformat()})"


SYSTEM_CLOCK: Clock = SystemClock()


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"clock instant must be timezone-aware, got naive {instant!r}")
    return instant.astimezone(UTC)


def ny_datetime(day: date, at: time = time(10, 0)) -> datetime:
    """``day`` at wall-clock ``at`` in New York, as an aware UTC datetime (DST handled)."""
    local = NEW_YORK.localize(datetime.combine(day, at))
    return local.astimezone(UTC)


def ny_now(clock: Clock = SYSTEM_CLOCK) -> datetime:
    """The clock's instant in New York time."""
    return clock.now().astimezone(NEW_YORK)


def trading_date(clock: Clock = SYSTEM_CLOCK) -> date:
    """The New York calendar date of the clock's instant."""
    return ny_now(clock).date()


def wall_now(clock: Clock = SYSTEM_CLOCK) -> datetime:
    """The clock's instant as a naive host-local datetime: the shape of the timestamps the
    contract's dicts have always carried (``submit_time``, ``timestamp``…), now from the clock.

    The same value as ``now.astimezone().replace(tzinfo=None)`` (the host's offset at that
    instant, DST included), read from ``time.localtime`` directly: a fifth of the cost on the
    order-event path, which stamps every fill."""
    now = clock.now()
    if now.tzinfo is None or now.utcoffset() is None:  # naive: already host-local wall time
        return now
    delta = now - _EPOCH
    t = _time.localtime(delta.days * 86400 + delta.seconds)
    return datetime(t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                    delta.microseconds)


def clock_for(today: date | None = None, clock: Clock | None = None) -> Clock:
    """``clock``; else a clock standing at 10:00 New York on ``today`` (the older ``today=``
    keyword of the simulator and the placeholder); else :data:`SYSTEM_CLOCK`."""
    if clock is not None:
        if today is not None:
            raise ValueError("give either clock or today, not both")
        return clock
    if today is not None:
        return FixedClock.new_york(today)
    return SYSTEM_CLOCK
