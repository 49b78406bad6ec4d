"""``Execution.from_fill``: the client library creates every Fill with an empty
``CommissionReport()`` (execId '', commission 0.0) and fills it in when IB's report arrives.
That placeholder is not a commission: read as one, a broker polling executions booked 0.0
for the execution and never took IB's real figure (the drop-in "commissions > 0" flake)."""

from __future__ import annotations

from datetime import UTC, datetime

from src.brokers import compat
from src.brokers.client_types import Execution


def _fill(report: object) -> object:
    execution = compat.Execution(execId="0000e0d5.6578a1b2.01.01", orderId=7, shares=1.0,
                                 price=1.25, side="BOT")
    return compat.Fill(compat.Contract(conId=1, symbol="AAPL"), execution, report,
                       datetime(2026, 12, 2, 15, 0, tzinfo=UTC))


def test_the_librarys_empty_report_is_no_commission_yet() -> None:
    assert Execution.from_fill(_fill(compat.CommissionReport())).commission is None


def test_ibs_report_is_the_commission() -> None:
    report = compat.CommissionReport(execId="0000e0d5.6578a1b2.01.01", commission=0.65)
    assert Execution.from_fill(_fill(report)).commission == 0.65
