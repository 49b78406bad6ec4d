"""src/brokers/order_cancel.py: a Cancelled the client library made up (after 161 / 10147 /
10148 / 10349) is recognised and undone; IB's own Cancelled is never touched."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from src.brokers import order_cancel


def trade(status: str, *log: tuple[str, int]) -> Any:
    return SimpleNamespace(orderStatus=SimpleNamespace(status=status),
                           log=[SimpleNamespace(status=s, errorCode=c) for s, c in log])


@pytest.mark.parametrize("code", [161, 10147, 10148, 10349, 399, 404, 2109])
def test_library_cancel_after_a_non_ending_code_is_synthetic(code: int) -> None:
    t = trade("Cancelled", ("Submitted", 0), ("Cancelled", code))
    assert order_cancel.synthetic_code(t) == code


@pytest.mark.parametrize("log", [
    (("Submitted", 0), ("Cancelled", 0)),      # IB's orderStatus Cancelled
    (("Submitted", 0), ("Cancelled", 202)),    # ib_async: 202 "Order Canceled" is real
    (("PendingSubmit", 0), ("Cancelled", 201)),  # a rejection ends the order
    (),
])
def test_real_cancels_are_not_synthetic(log: tuple[tuple[str, int], ...]) -> None:
    assert order_cancel.synthetic_code(trade("Cancelled", *log)) is None


def test_a_status_that_is_not_cancelled_is_never_synthetic() -> None:
    assert order_cancel.synthetic_code(trade("Filled", ("Cancelled", 10148))) is None


def test_refused_cancel_restores_the_status_before_the_cancel() -> None:
    guard = order_cancel.CancelGuard()
    guard.cancel_sent("7", "Submitted")
    t = trade("Cancelled", ("Submitted", 0), ("PendingCancel", 0), ("Cancelled", 10148))
    assert guard.undo("7", t, "PendingCancel") == 10148
    assert t.orderStatus.status == "Submitted"


def test_notice_restores_the_status_ib_last_reported() -> None:
    guard = order_cancel.CancelGuard()
    t = trade("Cancelled", ("PendingSubmit", 0), ("Submitted", 0), ("Cancelled", 10349))
    # the record has not copied the Submitted of this socket read yet (merged once per read)
    assert guard.undo("7", t, "PendingSubmit") == 10349
    assert t.orderStatus.status == "Submitted"


def test_notice_without_a_logged_status_falls_back_to_the_record() -> None:
    guard = order_cancel.CancelGuard()
    t = trade("Cancelled", ("Cancelled", 10349))
    assert guard.undo("7", t, "PreSubmitted") == 10349
    assert t.orderStatus.status == "PreSubmitted"


def test_real_cancel_is_left_alone() -> None:
    guard = order_cancel.CancelGuard()
    guard.cancel_sent("7", "Submitted")
    t = trade("Cancelled", ("PendingCancel", 0), ("Cancelled", 0))
    assert guard.undo("7", t, "PendingCancel") is None
    assert t.orderStatus.status == "Cancelled"


def test_forget_drops_the_remembered_status() -> None:
    guard = order_cancel.CancelGuard()
    guard.cancel_sent("7", "Submitted")
    guard.forget("7")
    t = trade("Cancelled", ("Cancelled", 161))
    assert guard.undo("7", t, "PendingCancel") == 161
    assert t.orderStatus.status == "PendingCancel"


@pytest.mark.parametrize(("before", "record", "expected"), [
    ("Inactive", {"status": "PendingSubmit", "error": "110"}, "Inactive"),
    ("Inactive", {"status": "Cancelled", "error": "110"}, "Inactive"),  # ib_async after 110
    ("Filled", {"status": "PendingSubmit"}, "Filled"),
    ("Inactive", {"status": "Cancelled"}, "Cancelled"),  # no rejection recorded: IB's word
    ("Cancelled", {"status": "Filled"}, "Filled"),  # a lost race reported by IB
])
def test_after_end(before: str, record: dict[str, Any], expected: str) -> None:
    assert order_cancel.after_end(before, record) == expected


def test_ib_asyncs_validation_error_on_a_warning_is_not_ibs_status() -> None:
    t = trade("ValidationError", ("PendingSubmit", 0), ("Submitted", 0),
              ("ValidationError", 399))
    assert order_cancel.restore_logged_status(t) == "Submitted"
    assert t.orderStatus.status == "Submitted"
