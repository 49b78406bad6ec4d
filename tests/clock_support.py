"""The suite's pinned time: an ordinary trading day, whatever the host's date or time zone.

Fixtures that build a simulated gateway, the adapter or the placeholder give it
:func:`pinned_clock` (or the ``clock`` fixture of tests/conftest.py); the session-wide autouse
fixture there also pins :class:`~src.utils.clock.SystemClock`, so code constructed without a
clock cannot read the host's date either. Tests that move time take a FixedClock of their own.
"""

from __future__ import annotations

from datetime import date, datetime, time

from src.utils.clock import FixedClock, ny_datetime, trading_date

PINNED_DAY = date(2026, 12, 2)  # a Wednesday, no holiday that week, expirations Fri 12-04 on
PINNED_TIME = time(10, 0)  # New York, the market is open
PINNED_NOW: datetime = ny_datetime(PINNED_DAY, PINNED_TIME)


def pinned_clock() -> FixedClock:
    """A fresh clock at the pinned instant (move it freely: it is yours)."""
    return FixedClock(PINNED_NOW)


def today() -> date:
    """The pinned New York trading date (what tests used ``date.today()`` for)."""
    return trading_date(FixedClock(PINNED_NOW))
