"""The exchange calendar against published NYSE holiday lists and listed weekly expirations."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from src.utils.clock import FixedClock
from src.utils.market_calendar import (
    easter,
    first_live_expiry,
    is_business_day,
    listed_weeklies,
    nyse_holidays,
    weekly_expiration,
    years_to_expiry,
)

# NYSE full-day closures as published by the exchange (nyse.com/markets/hours-calendars).
NYSE_2026 = [
    date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3),
    date(2026, 5, 25), date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7),
    date(2026, 11, 26), date(2026, 12, 25),
]
NYSE_2027 = [  # Jan 1 2027 is a Friday; Juneteenth (Sat) → Fri 18; July 4 (Sun) → Mon 5;
    date(2027, 1, 1), date(2027, 1, 18), date(2027, 2, 15), date(2027, 3, 26),  # Dec 25 (Sat)
    date(2027, 5, 31), date(2027, 6, 18), date(2027, 7, 5), date(2027, 9, 6),  # → Fri 24
    date(2027, 11, 25), date(2027, 12, 24),
]
NYSE_2025 = [
    date(2025, 1, 1), date(2025, 1, 20), date(2025, 2, 17), date(2025, 4, 18),
    date(2025, 5, 26), date(2025, 6, 19), date(2025, 7, 4), date(2025, 9, 1),
    date(2025, 11, 27), date(2025, 12, 25),
]


@pytest.mark.parametrize(("year", "expected"), [(2025, NYSE_2025), (2026, NYSE_2026),
                                                (2027, NYSE_2027)])
def test_holidays_match_the_published_lists(year: int, expected: list[date]) -> None:
    assert sorted(nyse_holidays(year)) == expected


def test_new_years_day_on_a_saturday_is_not_observed_on_the_friday_before() -> None:
    assert date(2022, 1, 1).weekday() == 5
    assert date(2021, 12, 31) not in nyse_holidays(2021)  # NYSE stayed open on Fri 2021-12-31
    assert not any(d.month == 1 and d.day <= 3 for d in nyse_holidays(2022))
    assert date(2023, 1, 2) in nyse_holidays(2023)  # Sunday Jan 1 → Monday Jan 2


def test_juneteenth_only_from_2022() -> None:
    assert "Juneteenth" not in nyse_holidays(2021).values()
    assert nyse_holidays(2022)[date(2022, 6, 20)] == "Juneteenth"  # Sunday → Monday


@pytest.mark.parametrize(("year", "sunday"), [
    (2024, date(2024, 3, 31)), (2025, date(2025, 4, 20)), (2026, date(2026, 4, 5)),
    (2027, date(2027, 3, 28)), (2038, date(2038, 4, 25)), (2285, date(2285, 3, 22)),
])
def test_easter_computus(year: int, sunday: date) -> None:
    assert easter(year) == sunday


def test_good_friday() -> None:
    assert nyse_holidays(2026)[date(2026, 4, 3)] == "Good Friday"
    assert nyse_holidays(2027)[date(2027, 3, 26)] == "Good Friday"


def test_business_days() -> None:
    assert is_business_day(date(2026, 12, 24))  # early close, still open
    assert not is_business_day(date(2026, 12, 25))
    assert not is_business_day(date(2026, 12, 26))  # Saturday
    assert is_business_day(date(2026, 12, 31)) and not is_business_day(date(2027, 1, 1))


@pytest.mark.parametrize(("friday", "expiration"), [
    (date(2026, 12, 25), date(2026, 12, 24)),  # Christmas → Thursday
    (date(2027, 1, 1), date(2026, 12, 31)),  # New Year's Day → Thursday, the year before
    (date(2026, 4, 3), date(2026, 4, 2)),  # Good Friday → Thursday
    (date(2026, 7, 3), date(2026, 7, 2)),  # Independence Day observed → Thursday
    (date(2026, 12, 4), date(2026, 12, 4)),  # an ordinary Friday
])
def test_weekly_expiration_moves_off_a_holiday_friday(friday: date, expiration: date) -> None:
    assert weekly_expiration(friday) == expiration


def test_weekly_expiration_wants_a_friday() -> None:
    with pytest.raises(ValueError, match="not a Friday"):
        weekly_expiration(date(2026, 12, 24))


def test_listed_weeklies_across_the_year_end() -> None:
    clock = FixedClock.new_york(date(2026, 12, 21))
    assert listed_weeklies(clock, 4) == [date(2026, 12, 24), date(2026, 12, 31),
                                         date(2027, 1, 8), date(2027, 1, 15)]
    clock = FixedClock.new_york(date(2026, 12, 24), time(16, 0))  # the close of expiration day
    assert listed_weeklies(clock, 2) == [date(2026, 12, 31), date(2027, 1, 8)]
    clock = FixedClock.new_york(date(2026, 12, 25))  # the holiday itself
    assert listed_weeklies(clock, 1) == [date(2026, 12, 31)]


@pytest.mark.parametrize(("at", "first"), [
    (time(0, 0), date(2026, 12, 4)), (time(15, 59, 59), date(2026, 12, 4)),
    (time(16, 0), date(2026, 12, 5)), (time(23, 59), date(2026, 12, 5)),
])
def test_first_live_expiry_turns_at_the_new_york_close(at: time, first: date) -> None:
    assert first_live_expiry(FixedClock.new_york(date(2026, 12, 4), at)) == first


def test_years_to_expiry_runs_to_the_close_and_is_floored() -> None:
    clock = FixedClock.new_york(date(2026, 12, 2), time(16, 0))
    assert years_to_expiry(date(2026, 12, 4), clock) == pytest.approx(2 / 365)
    clock.advance(timedelta(days=2, hours=1))  # an hour after the close of expiration day
    assert 0 < years_to_expiry(date(2026, 12, 4), clock) < 1 / (365 * 24)


@pytest.mark.parametrize(("at", "nearest"), [(time(15, 0), "20261204"), (time(16, 30), "20261211")])
def test_adapter_nearest_expirations_drop_todays_at_the_close(at: time, nearest: str) -> None:
    from src.brokers.translate import nearest_expirations

    listed = ["20261211", "20261204", "20261127", "20261218"]  # as a secdef answer lists them
    clock = FixedClock.new_york(date(2026, 12, 4), at)
    assert nearest_expirations(listed, first_live_expiry(clock), 2)[0] == nearest
