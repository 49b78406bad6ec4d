"""The injected clock: New York dates, not the host's."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from src.utils.clock import FixedClock, ny_datetime, trading_date


def test_new_york_date_differs_from_utc_date_in_the_evening() -> None:
    # 21:30 in New York on 2026-12-01 is already 02:30 UTC on 2026-12-02
    clock = FixedClock.new_york(date(2026, 12, 1), time(21, 30))
    assert clock.now().date() == date(2026, 12, 2)
    assert trading_date(clock) == date(2026, 12, 1)


def test_dst_is_applied() -> None:
    assert ny_datetime(date(2026, 7, 1), time(9, 30)).hour == 13  # EDT, UTC-4
    assert ny_datetime(date(2026, 12, 1), time(9, 30)).hour == 14  # EST, UTC-5


def test_advance_and_set() -> None:
    clock = FixedClock.new_york(date(2026, 12, 31), time(23, 0))
    clock.advance(timedelta(hours=2))
    assert trading_date(clock) == date(2027, 1, 1)
    clock.set(datetime(2027, 3, 5, 15, 0, tzinfo=UTC))
    assert trading_date(clock) == date(2027, 3, 5)


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 12, 1, 10, 0))


def test_the_app_passes_its_clock_to_the_broker_it_builds() -> None:
    from src.app.config import Config
    from src.app.trader import Trader
    from src.brokers import get_broker_api

    clock = FixedClock.new_york(date(2026, 12, 24))
    broker = get_broker_api(Config(), use_ib_insync=False, clock=clock)
    assert broker.clock is clock  # type: ignore[attr-defined]
    trader = Trader(config=Config().replace(USE_IB_INSYNC=False), connect=False, clock=clock)
    assert trader.broker_api.clock is clock  # type: ignore[attr-defined]


def test_wall_now_is_the_clock_instant_in_host_local_time() -> None:
    from src.utils.clock import wall_now

    clock = FixedClock.new_york(date(2026, 12, 2), time(10, 0))
    local = wall_now(clock)
    assert local.tzinfo is None
    assert local.astimezone(UTC) == clock.now()  # naive = host local, same instant


@pytest.mark.skipif(not hasattr(__import__("time"), "tzset"), reason="needs time.tzset")
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Asia/Tokyo",
                                  "Australia/Lord_Howe", "UTC"])
def test_wall_now_matches_astimezone_across_dst_changes(zone: str) -> None:
    import os
    import time as time_module

    from src.utils.clock import wall_now

    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time_module.tzset()
    try:
        # every half hour through both 2026 changes of NY, London and Lord Howe (±30 min)
        starts = [datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 28, tzinfo=UTC),
                  datetime(2026, 4, 4, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC),
                  datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)]
        for start in starts:
            for step in range(0, 48 * 3):
                instant = start + timedelta(minutes=30 * step, microseconds=123457)
                clock = FixedClock(instant)
                assert wall_now(clock) == instant.astimezone().replace(tzinfo=None), instant
    finally:  # the host's zone back, for the tests after this one
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time_module.tzset()
