"""Partial combo fills in the order record: BAG vs leg executions, corrections, settling."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import clock_support
import pytest

from src.brokers.compat import CommissionReport, Contract, Execution, Fill
from src.brokers.fill_math import exec_revision, unit_totals
from src.brokers.order_fills import FillBook
from src.utils.clock import FixedClock


def _fill(exec_id: str, shares: float, price: float, sec_type: str = "BAG",
          commission: float | None = None, perm_id: int = 0, order_id: int = 7,
          client_id: int = 1) -> Fill:
    ex = Execution(execId=exec_id, shares=shares, price=price, side="BOT", permId=perm_id,
                   orderId=order_id, clientId=client_id)
    report = CommissionReport() if commission is None else CommissionReport(
        execId=exec_id, commission=commission, currency="USD")
    return Fill(Contract(secType=sec_type), ex, report, clock_support.PINNED_NOW)


def _record(contracts: int = 5, direction: str = "LONG") -> dict[str, Any]:
    return {"id": "7", "contracts": contracts, "direction": direction, "filled": 0.0,
            "remaining": float(contracts), "filled_price": None, "legs": [{}, {}],
            "perm_id": None, "order_ref": "ref-7", "executions": [], "commissions": []}


def _part(n: int, qty: float, bag: float, long_px: float, short_px: float,
          commission: bool = True) -> list[Fill]:
    """One part of a 1:1 vertical: BAG-level execution then the two legs (IB's layout)."""
    c = 0.65 * qty if commission else None
    return [_fill(f"e.{n:02d}.01.01", qty, bag, "BAG", 0.0 if commission else None),
            _fill(f"e.{n:02d}.02.01", qty, long_px, "OPT", c),
            _fill(f"e.{n:02d}.03.01", qty, short_px, "OPT", c)]


def _book(wait: float = 5.0, fills: list[Fill] | None = None) -> tuple[FillBook, FixedClock]:
    clock = clock_support.pinned_clock()
    ib = SimpleNamespace(fills=lambda: list(fills or []))
    client = SimpleNamespace(settings=SimpleNamespace(commission_wait=wait, client_id=1),
                             clock=clock, ib=ib)
    return FillBook(client), clock


def test_exec_revision_splits_the_digits_after_the_final_period() -> None:
    assert exec_revision("0000e0d5.65f1a2b3.01.02") == ("0000e0d5.65f1a2b3.01", 2)
    assert exec_revision("a.01") == ("a", 1)
    assert exec_revision("mock-7") == ("mock-7", 0)
    assert exec_revision(".01") == (".01", 0)


def test_a_combo_filling_in_parts_counts_bag_units_and_averages_the_bag_prices() -> None:
    book, _ = _book()
    record = _record()
    book.merge(record, _part(1, 2, 1.10, 3.00, 1.90), "7")
    assert (record["filled"], record["remaining"]) == (2.0, 3.0)  # not 6: legs not counted
    assert record["filled_price"] == pytest.approx(1.10)
    book.merge(record, _part(2, 3, 1.20, 3.05, 1.85), "7")
    assert (record["filled"], record["remaining"]) == (5.0, 0.0)
    assert record["filled_price"] == pytest.approx((2 * 1.10 + 3 * 1.20) / 5)
    assert len(record["executions"]) == 6
    assert record["commission"] == pytest.approx(0.65 * 10)
    assert (record["fills_settled"], record["commission_pending"]) == (5.0, 0)
    rows = record["executions"]
    assert unit_totals(rows, combo=True)[0] == 5.0 and unit_totals(rows, combo=False)[0] == 15.0
    assert unit_totals([], combo=True) == (0.0, 0.0, 0.0)  # no quantity: no average to take


def test_a_short_combo_reports_its_average_as_a_credit() -> None:
    book, _ = _book()
    record = _record(direction="SHORT")
    book.merge(record, _part(1, 1, 1.10, 3.00, 1.90), "7")
    assert record["filled_price"] == pytest.approx(-1.10)


def test_the_executions_never_lower_what_an_order_status_reported() -> None:
    book, _ = _book()
    record = _record()
    record["filled"], record["remaining"] = 4.0, 1.0  # orderStatus ahead of the executions
    book.merge(record, _part(1, 2, 1.10, 3.00, 1.90), "7")
    assert (record["filled"], record["remaining"]) == (4.0, 1.0)


def test_a_correction_replaces_the_row_and_its_commission() -> None:
    book, _ = _book()
    record = _record()
    book.merge(record, _part(1, 2, 1.10, 3.00, 1.90), "7")
    fixed = [_fill("e.01.01.02", 2, 1.11, "BAG", 0.0),
             _fill("e.01.02.02", 2, 3.01, "OPT", 1.30)]
    book.merge(record, fixed, "7")
    ids = [e["execution_id"] for e in record["executions"]]
    assert ids == ["e.01.01.02", "e.01.02.02", "e.01.03.01"]
    assert record["executions"][0]["corrects"] == "e.01.01.01"
    assert sorted(c["execution_id"] for c in record["commissions"]) == \
        ["e.01.01.02", "e.01.02.02", "e.01.03.01"]
    assert record["filled"] == 2.0
    assert record["filled_price"] == pytest.approx(1.11)
    assert record["commission"] == pytest.approx(2.60)
    # the superseded execution and its report arriving late change nothing
    book.merge(record, [_fill("e.01.02.01", 2, 3.00, "OPT", 1.30)], "7")
    book.commission("7", record, CommissionReport(execId="e.01.02.01", commission=9.0))
    assert [e["execution_id"] for e in record["executions"]] == ids
    assert record["commission"] == pytest.approx(2.60)


def test_a_correction_arriving_before_the_original_keeps_the_correction() -> None:
    book, _ = _book()
    record = _record()
    book.merge(record, [_fill("x.02", 1, 1.2, commission=0.0)], "7")
    book.merge(record, [_fill("x.01", 1, 1.0, commission=0.0)], "7")
    assert [e["execution_id"] for e in record["executions"]] == ["x.02"]
    assert record["filled_price"] == pytest.approx(1.2)


def test_a_fill_is_settled_once_its_commission_arrived_or_the_wait_passed() -> None:
    book, clock = _book(wait=5.0)
    record = _record()
    book.merge(record, _part(1, 2, 1.10, 3.00, 1.90, commission=False), "7")
    assert (record["fills_settled"], record["commission_pending"]) == (0.0, 3)
    assert record["commission"] is None
    book.commission("7", record, CommissionReport(execId="e.01.02.01", commission=1.30))
    assert (record["fills_settled"], record["commission_pending"]) == (0.0, 2)
    clock.advance(timedelta(seconds=4.9))
    book.settle("7", record)
    assert record["fills_settled"] == 0.0
    clock.advance(timedelta(seconds=0.2))
    book.settle("7", record)  # the wait passed: counted without the missing reports
    assert (record["fills_settled"], record["commission_pending"]) == (2.0, 0)
    assert record["commission"] == pytest.approx(1.30)


def test_a_report_the_library_stored_without_an_event_is_read_from_the_fill() -> None:
    book, _ = _book(wait=3600)
    record = _record()
    part = _part(1, 1, 1.10, 3.00, 1.90, commission=False)
    book.merge(record, part, "7")
    for fill in part:  # ib_insync's commissionReport(): dataclassUpdate, no event (no permId)
        fill.commissionReport.execId = fill.execution.execId
        fill.commissionReport.commission = 0.65
    assert book.pending("7")
    book.update("7", record, [])  # the next orderStatus refresh
    assert sorted(c["execution_id"] for c in record["commissions"]) == \
        ["e.01.01.01", "e.01.02.01", "e.01.03.01"]
    assert (record["fills_settled"], record["commission_pending"]) == (1.0, 0)
    assert not book.pending("7")


def test_fills_the_library_did_not_attach_are_swept_from_its_fills_once() -> None:
    orphan = _part(1, 2, 1.10, 3.00, 1.90)
    for f in orphan:
        f.execution.permId = 555
    other = [_fill("z.01", 1, 9.9, perm_id=999, order_id=8)]
    calls: list[int] = []
    book, _ = _book(fills=orphan + other)
    inner = book._client.ib.fills

    def counted() -> list[Fill]:
        calls.append(1)
        return list(inner())

    book._client.ib.fills = counted
    record = _record()
    record["perm_id"] = 555
    record["filled"], record["remaining"] = 2.0, 3.0  # orderStatus: 2 filled, no executions
    book.update("7", record, [])
    assert [e["execution_id"] for e in record["executions"]] == [f.execution.execId
                                                                for f in orphan]
    assert record["filled_price"] == pytest.approx(1.10)
    book.update("7", record, [])
    assert len(calls) == 1  # executions caught up: no second sweep
    record2 = _record()
    record2["filled"] = 1.0
    book.update("9", record2, [])  # nothing of order 9 in the library: swept once, not again
    book.update("9", record2, [])
    assert len(calls) == 2 and record2["executions"] == []


def test_an_order_status_older_than_the_executions_keeps_the_record_consistent() -> None:
    from src.brokers import translate
    from src.brokers.compat import OrderStatus

    book, _ = _book()
    record = _record()
    book.merge(record, _part(1, 2, 1.10, 3.00, 1.90) + _part(2, 2, 1.20, 3.05, 1.85), "7")
    assert (record["filled"], record["remaining"]) == (4.0, 1.0)
    stale = OrderStatus(status="Submitted", filled=2.0, remaining=3.0, avgFillPrice=1.10)
    translate.apply_order_status(record, stale, None)  # the refresh path, then the book
    book.update("7", record, [])
    assert (record["filled"], record["remaining"]) == (4.0, 1.0)


@pytest.mark.parametrize("wait", [-1.0, 3601.0, float("nan")])
def test_a_bad_commission_wait_is_refused_naming_its_key(wait: float) -> None:
    from src.brokers.settings import BrokerSettings, SettingsError

    with pytest.raises(SettingsError, match="ibkr.commission_wait_seconds"):
        BrokerSettings(commission_wait=wait)
