"""FillBook: each execution and commission merged once, whatever order the events come in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from src.brokers.compat import CommissionReport, Contract, Execution, Fill
from src.brokers.order_fills import FillBook
from src.utils.clock import FixedClock


def _fill(exec_id: str, shares: float = 1.0, price: float = 2.0, sec_type: str = "BAG",
          commission: bool = True) -> Fill:
    ex = Execution(execId=exec_id, shares=shares, price=price, side="BOT")
    report = CommissionReport(execId=exec_id, commission=0.65, currency="USD") if commission \
        else CommissionReport()
    return Fill(Contract(secType=sec_type), ex, report, datetime(2026, 12, 2, tzinfo=UTC))


def _record() -> dict[str, Any]:
    return {"executions": [], "commissions": [], "filled_price": None, "direction": "LONG"}


def test_unmerged_returns_only_the_fills_appended_since_the_last_call() -> None:
    book = FillBook()
    trade = SimpleNamespace(fills=[_fill("a.01"), _fill("b.01")])
    assert [f.execution.execId for f in book.unmerged("1", trade)] == ["a.01", "b.01"]
    assert book.unmerged("1", trade) == []
    trade.fills.append(_fill("c.01"))
    assert [f.execution.execId for f in book.unmerged("1", trade)] == ["c.01"]
    other = SimpleNamespace(fills=list(trade.fills))  # the same order's Trade after a reconnect
    assert len(book.unmerged("1", other)) == 3


def test_merge_dedupes_by_exec_id_and_a_correction_replaces_the_corrected_row() -> None:
    book, record = FillBook(), _record()
    book.merge(record, [_fill("a.01", 1, 2.0)], "1")
    book.merge(record, [_fill("a.01", 1, 2.0), _fill("a.02", 1, 2.1)], "1")  # .02 corrects .01
    assert [(e["execution_id"], e.get("corrects")) for e in record["executions"]] == \
        [("a.02", "a.01")]
    assert [c["execution_id"] for c in record["commissions"]] == ["a.02"]
    assert record["filled_price"] == 2.1  # the corrected price
    book.merge(record, [_fill("a.01", 1, 2.0)], "1")  # the old one again (a replay): ignored
    assert [e["execution_id"] for e in record["executions"]] == ["a.02"]


def test_commission_before_or_after_its_fill_is_recorded_once() -> None:
    book, record = FillBook(), _record()
    book.merge(record, [_fill("a.01", commission=False)], "1")
    report = CommissionReport(execId="a.01", commission=0.65, currency="USD")
    book.commission("1", record, report)
    book.commission("1", record, report)
    book.merge(record, [_fill("a.01")], "1")  # the fill again, now carrying its report
    assert [c["execution_id"] for c in record["commissions"]] == ["a.01"]


def test_a_list_rewritten_behind_the_cache_is_reread() -> None:
    book, record = FillBook(), _record()
    book.merge(record, [_fill("a.01")], "1")
    record["executions"] = []  # e.g. a test or a reconcile replaced the list
    book.merge(record, [_fill("a.01")], "1")
    assert [e["execution_id"] for e in record["executions"]] == ["a.01"]
    book.forget("1")
    assert len(book) == 0


def _expected(record: dict[str, Any], timed_out: set[str]) -> dict[str, Any]:
    """The record's figures computed afresh from its own lists (the model of the module doc)."""
    rows, comm = record["executions"], record["commissions"]
    combo = bool(record.get("legs")) or any(r["sec_type"] == "BAG" for r in rows)
    reported = {c["execution_id"] for c in comm}
    qty = notional = settled = 0.0
    for r in rows:  # in row order: the same additions, so the same figures to the last bit
        if combo and r["sec_type"] != "BAG":
            continue  # a combo counts its BAG-level rows (units), not its legs
        qty += r["shares"]
        notional += r["shares"] * r["price"]
        if r["execution_id"] in reported or r["execution_id"] in timed_out:
            settled += r["shares"]
    fees = [c["commission"] for c in comm if isinstance(c["commission"], (int, float))]
    return {"price": notional / qty if qty else None, "settled": settled,
            "commission": round(sum(fees), 6) if fees else None,
            "pending": sum(1 for r in rows if r["execution_id"] not in reported
                           and r["execution_id"] not in timed_out)}


@pytest.mark.parametrize("seed", range(150))
def test_running_figures_equal_a_fresh_count_whatever_the_order_of_events(seed: int) -> None:
    """Executions (BAG and leg rows, odd quantities), their reports before, with or after
    them, corrections, replays and waits that time out, in a random order: after every step
    the record's ``filled_price``, ``fills_settled``, ``commission`` and ``commission_pending``
    are exactly what a fresh pass over its lists gives."""
    rng = random.Random(seed)
    clock = FixedClock(datetime(2026, 12, 2, 15, 0, tzinfo=UTC))
    client = SimpleNamespace(settings=SimpleNamespace(commission_wait=5.0, client_id=None),
                             clock=clock, ib=None)
    book, record = FillBook(client), _record()
    record["legs"] = [{"con_id": 1}] if rng.random() < 0.3 else []
    revisions: dict[str, int] = {}  # stem -> latest revision sent
    kinds: dict[str, str] = {}  # stem -> secType (a BAG-level or a leg execution)
    sent: list[Fill] = []
    timed_out: set[str] = set()
    for _ in range(rng.randint(1, 25)):
        op = rng.random()
        if op < 0.45 or not revisions:  # a new execution, with its report or without
            stem = f"{len(revisions):04x}.65f1a2b3.01"
            revisions[stem], kinds[stem] = 1, rng.choice(["BAG", "BAG", "OPT"])
            fill = _fill(f"{stem}.01", rng.choice([1, 2, 0.5, 0.1, 3.3]),
                         rng.choice([1.05, 2.2, 0.3, 7.1]), kinds[stem],
                         commission=rng.random() < 0.6)
            sent.append(fill)
            book.merge(record, [fill], "1")
        elif op < 0.6:  # a correction of an execution (same contract, new quantity / price)
            stem = rng.choice(sorted(revisions))
            revisions[stem] += 1
            fill = _fill(f"{stem}.{revisions[stem]:02d}", rng.choice([1, 2, 0.7]),
                         rng.choice([1.1, 2.3]), kinds[stem], commission=rng.random() < 0.5)
            sent.append(fill)
            book.merge(record, [fill], "1")
        elif op < 0.8:  # a report on its own (maybe for a superseded or a not yet seen one)
            stem = rng.choice(sorted(revisions))
            revision = max(1, revisions[stem] + rng.choice([-1, 0, 0, 0, 1]))
            book.commission("1", record, CommissionReport(
                execId=f"{stem}.{revision:02d}", commission=rng.choice([0.65, 1.3, 0.01]),
                currency="USD"))
        elif op < 0.9:  # a replay of fills already merged
            book.merge(record, rng.sample(sent, min(len(sent), 3)), "1")
        else:  # the wait runs out for every execution still without its report
            reported = {c["execution_id"] for c in record["commissions"]}
            timed_out |= {r["execution_id"] for r in record["executions"]
                          if r["execution_id"] not in reported}
            clock.advance(timedelta(seconds=6))
            book.settle("1", record)
        expected = _expected(record, timed_out)
        assert record.get("filled_price") == expected["price"]
        assert record.get("fills_settled", 0.0) == expected["settled"]
        assert record.get("commission") == pytest.approx(expected["commission"], abs=1e-9) \
            if expected["commission"] is not None else record.get("commission") is None
        assert record.get("commission_pending", 0) == expected["pending"]
