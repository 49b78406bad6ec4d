"""BulkPacer: bulk requests never take the slots reserved for orders (virtual clock)."""

from __future__ import annotations

import asyncio

from src.brokers.pacing import WINDOW, BulkPacer


def run_grants(max_rate: int, reserve: int, n: int, concurrent: bool) -> list[float]:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    pacer = BulkPacer(lambda: max_rate, reserve, clock=lambda: now[0], sleep=sleep)
    grants: list[float] = []

    async def one() -> None:
        await pacer.slot()
        grants.append(now[0])

    async def main() -> None:
        if concurrent:
            await asyncio.gather(*(one() for _ in range(n)))
        else:
            for _ in range(n):
                await one()

    asyncio.run(main())
    return grants


def max_in_any_window(grants: list[float]) -> int:
    return max(sum(1 for g in grants if start <= g < start + WINDOW) for start in grants)


def test_bulk_rate_leaves_the_reserve_free_in_every_window() -> None:
    for concurrent in (False, True):
        grants = run_grants(max_rate=45, reserve=5, n=130, concurrent=concurrent)
        assert len(grants) == 130
        assert max_in_any_window(grants) == 40  # 45 - 5: five slots a second stay free
        assert grants[39] == 0.0 and grants[40] >= WINDOW  # a burst, then the next window


def test_rate_follows_the_configured_max_rate_and_never_stops() -> None:
    assert max_in_any_window(run_grants(max_rate=10, reserve=5, n=20, concurrent=True)) == 5
    assert len(run_grants(max_rate=3, reserve=5, n=4, concurrent=True)) == 4  # at least 1/s
