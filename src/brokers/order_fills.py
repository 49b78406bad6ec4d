"""Executions and commission reports merged into the order records, once each (loop thread).

The event path runs this for every execDetails / commissionReport / orderStatus of a burst, so
it keeps what it needs between events instead of recomputing it: how many of a Trade's fills
are merged already (the client library only appends to ``trade.fills``), and the execIds of
each record's ``executions`` / ``commissions`` lists. A cache is trusted only while it still
describes the record's list (same list object, same length); anything that rewrote the list
behind it (a reconcile, a test) makes it rebuild.

The caller holds the adapter state's lock while it calls :meth:`FillBook.merge` or
:meth:`FillBook.commission`.
"""

from __future__ import annotations

from typing import Any

from src.brokers import translate

Rows = list[dict[str, Any]]


class FillBook:
    """Per-order bookkeeping of merged executions and commissions (see module doc)."""

    def __init__(self) -> None:
        self._fills_seen: dict[str, tuple[int, int]] = {}  # order id -> (id(Trade), merged)
        self._exec_ids: dict[str, tuple[set[str], Rows]] = {}
        self._comm_ids: dict[str, tuple[set[str], Rows]] = {}

    def __len__(self) -> int:
        return len(self._fills_seen) + len(self._exec_ids) + len(self._comm_ids)

    def unmerged(self, order_id: str, trade: Any) -> list[Any]:
        """The Trade's fills appended since the last call (a different Trade starts over)."""
        fills = getattr(trade, "fills", None)
        if not isinstance(fills, list):
            return []
        seen_trade, seen = self._fills_seen.get(order_id, (0, 0))
        start = seen if seen_trade == id(trade) and seen <= len(fills) else 0
        self._fills_seen[order_id] = (id(trade), len(fills))
        return fills[start:]

    def merge(self, record: dict[str, Any], fills: list[Any], order_id: str | None = None) -> None:
        """Append the fills' executions and commission reports not in ``record`` yet (by
        execId); the combo's average price from its BAG executions until IB reports one."""
        known = self._ids(order_id, record, "executions")
        known_comm = self._ids(order_id, record, "commissions")
        for fill in fills:
            exec_id = getattr(fill.execution, "execId", "")
            if exec_id and exec_id not in known:
                record["executions"].append(translate.execution_row(fill))
                known.add(exec_id)
            report = getattr(fill, "commissionReport", None)
            report_id = getattr(report, "execId", "") if report is not None else ""
            if isinstance(report_id, str) and report_id and report_id not in known_comm:
                record["commissions"].append(translate.commission_row(report))
                known_comm.add(report_id)
        if record.get("filled_price") is None and record["executions"]:
            bag = [e for e in record["executions"] if e.get("sec_type") == "BAG"]
            qty = sum(e["shares"] for e in bag)
            if qty:
                avg = sum(e["shares"] * e["price"] for e in bag) / qty
                record["filled_price"] = translate.price_sign(record.get("direction")) * avg

    def commission(self, order_id: str, record: dict[str, Any], report: Any) -> None:
        """Append one commission report unless its execId is recorded already."""
        known = self._ids(order_id, record, "commissions")
        if report.execId not in known:
            record["commissions"].append(translate.commission_row(report))
            known.add(report.execId)

    def unlink(self, order_id: str) -> None:
        """The order's Trade is dropped: a later Trade of it starts over."""
        self._fills_seen.pop(order_id, None)

    def forget(self, order_id: str) -> None:
        """The order's record is released: drop everything kept for it."""
        self._fills_seen.pop(order_id, None)
        self._exec_ids.pop(order_id, None)
        self._comm_ids.pop(order_id, None)

    def _ids(self, order_id: str | None, record: dict[str, Any], key: str) -> set[str]:
        rows: Rows = record[key]
        if order_id is None:
            return {r["execution_id"] for r in rows}
        cache = self._exec_ids if key == "executions" else self._comm_ids
        cached = cache.get(order_id)
        if cached is None or cached[1] is not rows or len(cached[0]) != len(rows):
            cached = ({r["execution_id"] for r in rows}, rows)
            cache[order_id] = cached
        return cached[0]
