"""Pure arithmetic on an order's execution rows (``translate.execution_row`` dicts).

* execIds: IB corrects an execution by sending a new one whose execId differs only in the
  digits after the final period (``….01`` → ``….02``, TWS API "Executions and Commissions" /
  ``Execution.execId``). :func:`exec_revision` splits an id into (stem, revision).
* A combo (BAG) order is reported as one BAG-level execution per part plus one per leg: its
  filled quantity and average price are those of the BAG-level rows alone (counting the legs too
  would double it — ib_insync's ``Trade.filled()`` filters the same way).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

Row = Mapping[str, Any]


def exec_revision(exec_id: str) -> tuple[str, int]:
    """``"0000e0d5.65f1a2b3.01.02"`` → ``("0000e0d5.65f1a2b3.01", 2)``; an id without a
    numeric tail is its own stem, revision 0."""
    stem, dot, tail = exec_id.rpartition(".")
    if dot and stem and tail.isdigit():
        return stem, int(tail)
    return exec_id, 0


def unit_totals(rows: Iterable[Row], combo: bool, settled: Container[str] = (),
                also: Container[str] = ()) -> tuple[float, float, float]:
    """(quantity, quantity x price, quantity settled) of the unit rows — the BAG-level rows of
    a combo (an order placed with legs or with any BAG-level execution), else all — in one pass
    over ``rows``; a row is settled when its ``execution_id`` is in ``settled`` or ``also``."""
    qty = notional = done = 0.0
    for r in rows:
        if combo and r.get("sec_type") != "BAG":
            continue
        shares = number(r.get("shares"))
        qty += shares
        notional += shares * number(r.get("price"))
        exec_id = r.get("execution_id")
        if exec_id in settled or exec_id in also:
            done += shares
    return qty, notional, done


def number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else 0.0
