"""The exchange calendar: NYSE full-day holidays (by rule), weekly option expirations, the close.

Holidays are computed, not listed, so any year works:

* New Year's Day (Jan 1; a Sunday moves to Monday Jan 2; a **Saturday is not observed** — NYSE
  does not close on the preceding Friday, Dec 31, because that is the last trading day of the
  year), Martin Luther King Jr. Day (3rd Monday of January), Washington's Birthday (3rd Monday of
  February), Good Friday (Easter − 2 days, Gregorian computus), Memorial Day (last Monday of May),
  Juneteenth (June 19, from 2022), Independence Day (July 4), Labor Day (1st Monday of September),
  Thanksgiving (4th Thursday of November), Christmas (Dec 25).
* Fixed-date holidays other than New Year's follow the usual observance: Saturday → the Friday
  before, Sunday → the Monday after.

Early closes (13:00) and one-off closures (national days of mourning) are not modelled.

Weekly options expire on each week's Friday; when that Friday is a holiday they expire on the
previous business day (the Thursday, normally): the weeks of 2026-12-25 and 2027-01-01 expire on
Thursday 2026-12-24 and Thursday 2026-12-31. An expiration is listed until the 16:00 New York
close of its expiration day and gone after it (:func:`first_live_expiry`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from src.utils.clock import NEW_YORK, SYSTEM_CLOCK, Clock, ny_datetime, ny_now

MARKET_CLOSE = time(16, 0)  # New York; options stop trading (and expire) at the close
JUNETEENTH_FROM = 2022
MIN_YEARS = 0.5 / (365.0 * 24.0)  # half an hour: the floor of time to expiry (finite greeks)


def easter(year: int) -> date:
    """Western (Gregorian) Easter Sunday: the anonymous Gregorian computus (Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """Saturday → Friday before, Sunday → Monday after."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def nyse_holidays(year: int) -> dict[date, str]:
    """NYSE full-day closures falling in ``year`` (observed dates) → holiday name."""
    out: dict[date, str] = {}
    new_year = date(year, 1, 1)
    if new_year.weekday() == 6:
        out[new_year + timedelta(days=1)] = "New Year's Day"
    elif new_year.weekday() != 5:  # Saturday: not observed (no Friday Dec 31 closure)
        out[new_year] = "New Year's Day"
    out[_nth_weekday(year, 1, 0, 3)] = "Martin Luther King Jr. Day"
    out[_nth_weekday(year, 2, 0, 3)] = "Washington's Birthday"
    out[easter(year) - timedelta(days=2)] = "Good Friday"
    out[_last_weekday(year, 5, 0)] = "Memorial Day"
    if year >= JUNETEENTH_FROM:
        out[_observed(date(year, 6, 19))] = "Juneteenth"
    out[_observed(date(year, 7, 4))] = "Independence Day"
    out[_nth_weekday(year, 9, 0, 1)] = "Labor Day"
    out[_nth_weekday(year, 11, 3, 4)] = "Thanksgiving Day"
    out[_observed(date(year, 12, 25))] = "Christmas Day"
    return out


def is_holiday(day: date) -> bool:
    return day in nyse_holidays(day.year)


def is_business_day(day: date) -> bool:
    """A weekday on which NYSE is open (full day or early close)."""
    return day.weekday() < 5 and not is_holiday(day)


def previous_business_day(day: date) -> date:
    """The last business day strictly before ``day``."""
    d = day - timedelta(days=1)
    while not is_business_day(d):
        d -= timedelta(days=1)
    return d


def weekly_expiration(friday: date) -> date:
    """The expiration of the weekly option of the week ending ``friday``: that Friday, or the
    previous business day when the Friday is a holiday."""
    if friday.weekday() != 4:
        raise ValueError(f"weekly_expiration: {friday} is not a Friday")
    return friday if is_business_day(friday) else previous_business_day(friday)


def weekly_expirations(first_live: date) -> Iterator[date]:
    """Weekly expirations on or after ``first_live``, ascending, without end."""
    friday = first_live + timedelta(days=(4 - first_live.weekday()) % 7)
    while True:
        exp = weekly_expiration(friday)
        if exp >= first_live:
            yield exp
        friday += timedelta(weeks=1)


def listed_weeklies(clock: Clock, count: int) -> list[date]:
    """The ``count`` weekly expirations still listed at the clock's instant."""
    it = weekly_expirations(first_live_expiry(clock))
    return [next(it) for _ in range(count)]


def first_live_expiry(clock: Clock = SYSTEM_CLOCK) -> date:
    """The earliest expiration date still trading at the clock's instant: the New York date
    before the 16:00 close, the next day from the close on (an expiring option is gone at the
    close)."""
    now = ny_now(clock)
    day = now.date()
    return day if now.time() < MARKET_CLOSE else day + timedelta(days=1)


def expiry_close(expiration: date) -> datetime:
    """The instant an expiration stops trading: 16:00 New York on that day (aware, UTC)."""
    return ny_datetime(expiration, MARKET_CLOSE)


def years_to_expiry(expiration: date, clock: Clock = SYSTEM_CLOCK) -> float:
    """Calendar time (years of 365 days) from the clock's instant to the expiration's close,
    floored at :data:`MIN_YEARS` so an option at or past its close still prices finitely."""
    seconds = (expiry_close(expiration) - clock.now()).total_seconds()
    return max(MIN_YEARS, seconds / (365.0 * 86400.0))


__all__ = [
    "MARKET_CLOSE", "MIN_YEARS", "NEW_YORK", "easter", "expiry_close", "first_live_expiry",
    "is_business_day", "is_holiday", "listed_weeklies", "nyse_holidays", "previous_business_day",
    "weekly_expiration", "weekly_expirations", "years_to_expiry",
]
