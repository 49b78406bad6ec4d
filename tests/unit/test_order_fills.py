"""FillBook: each execution and commission merged once, whatever order the events come in."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from src.brokers.compat import CommissionReport, Contract, Execution, Fill
from src.brokers.order_fills import FillBook


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
