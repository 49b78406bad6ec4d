"""Executions and commission reports merged into the order records, once each (loop thread).

What IB sends for a combo that fills in parts, and what the record makes of it:

* one BAG-level execution per part plus one per leg: ``filled`` / ``remaining`` / the average
  ``filled_price`` follow the BAG-level rows only (:mod:`~src.brokers.fill_math`), and are
  taken from the executions as soon as they are ahead of the last orderStatus;
* executions deduplicated by execId, and a correction (same stem, ``.02`` after ``.01``)
  replaces the row it corrects (the new row names it in ``corrects``; the superseded
  execution's commission row is dropped, its own report follows);
* a fill is *settled* — counted in ``fills_settled`` (combo units) — once its commission report
  arrived or ``ibkr.commission_wait_seconds`` passed without one (never waits forever);
  ``commission`` is the sum of the reports recorded, ``commission_pending`` how many executions
  still wait for theirs. Both libraries emit no commissionReportEvent for a report that arrives
  before the order's first openOrder (their ``permId2Trade`` is filled there): the report is
  then read from the Fill object on a later refresh;
* an execution the library could not attach to the order's Trade (it arrived before the order
  was known, e.g. during the sync after a reconnect) is looked up in ``ib.fills()`` by permId,
  orderRef or orderId + clientId once an orderStatus reports more filled than the executions.

The event path runs this for every execDetails / commissionReport / orderStatus of a burst, so
it keeps what it needs between events (a per-order :class:`_Ledger`) instead of recomputing it;
a ledger is trusted only while it still describes the record's lists (same list objects, same
lengths); anything that rewrote a list behind it (a reconcile, a test) makes it rebuild.

The caller holds the adapter state's lock while it calls :meth:`FillBook.merge`,
:meth:`FillBook.commission` or :meth:`FillBook.sweep`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from src.brokers import translate
from src.brokers.fill_math import exec_revision, filled_of, is_combo, totals, unit_rows
from src.brokers.order_match import fill_matches
from src.utils.clock import SYSTEM_CLOCK

Rows = list[dict[str, Any]]
DEFAULT_COMMISSION_WAIT = 5.0


@dataclass
class _Ledger:
    """What one order's record holds, indexed (see the module doc)."""

    rows: Rows
    comm_rows: Rows
    n_rows: int = 0
    n_comm: int = 0
    seen: set[str] = field(default_factory=set)  # every execId merged, superseded ones too
    current: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # stem -> row
    comm_ids: set[str] = field(default_factory=set)
    pending: dict[str, tuple[Any, datetime]] = field(default_factory=dict)  # no report yet
    timed_out: set[str] = field(default_factory=set)
    swept_at: float = 0.0  # the reported filled quantity the library's fills were swept for
    filled: float = 0.0  # filled according to the executions (combo units)

    def valid_for(self, record: dict[str, Any]) -> bool:
        rows, comm = record["executions"], record["commissions"]
        return rows is self.rows and comm is self.comm_rows and len(rows) == self.n_rows \
            and len(comm) == self.n_comm


class FillBook:
    """Per-order bookkeeping of merged executions and commissions (see module doc).

    ``client`` (optional) supplies ``settings.commission_wait``, ``settings.client_id``,
    ``clock`` and ``ib.fills()``; without it the wait is 5 s on the system clock and nothing is
    swept.
    """

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._fills_seen: dict[str, tuple[int, int]] = {}  # order id -> (id(Trade), merged)
        self._ledgers: dict[str, _Ledger] = {}

    def __len__(self) -> int:
        return len(self._fills_seen) + len(self._ledgers)

    # --- the client's settings (read when needed: tests swap them) --------------------------

    def _wait(self) -> float:
        wait = getattr(getattr(self._client, "settings", None), "commission_wait", None)
        return float(wait) if isinstance(wait, (int, float)) else DEFAULT_COMMISSION_WAIT

    def _now(self) -> datetime:
        now = getattr(getattr(self._client, "clock", None), "now", None)  # per execution: no
        return now() if callable(now) else SYSTEM_CLOCK.now()  # isinstance(Protocol) (slow)

    # --- the Trade's fills ------------------------------------------------------------------

    def unmerged(self, order_id: str, trade: Any) -> list[Any]:
        """The Trade's fills appended since the last call (a different Trade starts over)."""
        fills = getattr(trade, "fills", None)
        if not isinstance(fills, list):
            return []
        seen_trade, seen = self._fills_seen.get(order_id, (0, 0))
        start = seen if seen_trade == id(trade) and seen <= len(fills) else 0
        self._fills_seen[order_id] = (id(trade), len(fills))
        return fills[start:]

    def pending(self, order_id: str) -> bool:
        """Executions of this order still wait for their commission (cheap: the hot path)."""
        ledger = self._ledgers.get(order_id)
        return ledger is not None and bool(ledger.pending)

    def merge(self, record: dict[str, Any], fills: list[Any], order_id: str | None = None) -> None:
        """Merge the fills' executions and commission reports not in ``record`` yet (by execId,
        corrections applied); settle what waited long enough; update the derived figures."""
        ledger = self._ledger(order_id, record)
        changed = False
        now: datetime | None = None  # read once per merge, not per execution
        for fill in fills:
            exec_id = getattr(fill.execution, "execId", "")
            if isinstance(exec_id, str) and exec_id and exec_id not in ledger.seen:
                if now is None:
                    now = self._now()
                changed = self._add_execution(ledger, fill, exec_id, now) or changed
            report = getattr(fill, "commissionReport", None)
            report_id = getattr(report, "execId", "") if report is not None else ""
            if isinstance(report_id, str) and report_id and report_id not in ledger.comm_ids:
                changed = self._add_commission(ledger, report) or changed
        if ledger.pending:
            changed = self._settle(ledger) or changed
        if changed:
            _derive(record, ledger)

    def update(self, order_id: str, record: dict[str, Any], fills: list[Any]) -> None:
        """After an orderStatus (the refresh path): merge ``fills`` if any, settle what waits,
        sweep the library's fills if the reported ``filled`` is ahead of the executions."""
        if fills or self.pending(order_id):
            self.merge(record, fills, order_id)
        filled, contracts = record.get("filled") or 0.0, record.get("contracts")
        if isinstance(contracts, (int, float)) and (record.get("remaining") or 0.0) + filled \
                > contracts:  # an orderStatus older than the executions: keep them consistent
            record["remaining"] = max(0.0, float(contracts) - filled)
        self.sweep(order_id, record, filled)

    def commission(self, order_id: str, record: dict[str, Any], report: Any) -> None:
        """Record one commission report unless its execId is recorded (or superseded)."""
        ledger = self._ledger(order_id, record)
        if report.execId not in ledger.comm_ids and self._add_commission(ledger, report):
            _count(record, ledger)

    def sweep(self, order_id: str, record: dict[str, Any], reported: float) -> None:
        """``reported`` (the orderStatus's filled) is ahead of the executions: merge this
        order's fills the library holds but did not attach to its Trade (once per figure)."""
        ledger = self._ledgers.get(order_id)
        if ledger is None or not ledger.valid_for(record):
            if reported <= 0:
                return
            ledger = self._ledger(order_id, record)
        if reported <= ledger.filled or reported == ledger.swept_at:
            return
        ledger.swept_at = reported
        ib = getattr(self._client, "ib", None)
        client_id = getattr(getattr(self._client, "settings", None), "client_id", None)
        try:
            every = list(ib.fills()) if ib is not None else []
        except Exception:  # a double without fills(), or a closed client
            every = []
        if not isinstance(client_id, int):
            return
        mine = [f for f in every if fill_matches(f, record, order_id, client_id)]
        if mine:
            self.merge(record, mine, order_id)

    def unlink(self, order_id: str) -> None:
        """The order's Trade is dropped: a later Trade of it starts over."""
        self._fills_seen.pop(order_id, None)

    def forget(self, order_id: str) -> None:
        """The order's record is released: drop everything kept for it."""
        self._fills_seen.pop(order_id, None)
        self._ledgers.pop(order_id, None)

    # --- internals --------------------------------------------------------------------------

    def _ledger(self, order_id: str | None, record: dict[str, Any]) -> _Ledger:
        ledger = self._ledgers.get(order_id) if order_id is not None else None
        if ledger is None or not ledger.valid_for(record):
            ledger = _rebuild(record, self._now())
            if order_id is not None:
                self._ledgers[order_id] = ledger
        return ledger

    def _add_execution(self, ledger: _Ledger, fill: Any, exec_id: str, now: datetime) -> bool:
        ledger.seen.add(exec_id)
        stem, revision = exec_revision(exec_id)
        row = translate.execution_row(fill)
        current = ledger.current.get(stem)
        if current is not None:
            old_revision, old_row = current
            if revision <= old_revision:  # an earlier revision arriving late: superseded
                return False
            old_id = old_row["execution_id"]
            row["corrects"] = old_id
            index = next(i for i, r in enumerate(ledger.rows) if r is old_row)
            ledger.rows[index] = row
            _drop_commission(ledger, old_id)
            ledger.pending.pop(old_id, None)
            ledger.timed_out.discard(old_id)
        else:
            ledger.rows.append(row)
            ledger.n_rows += 1
        ledger.current[stem] = (revision, row)
        if exec_id not in ledger.comm_ids:
            ledger.pending[exec_id] = (fill, now)
        return True

    def _add_commission(self, ledger: _Ledger, report: Any) -> bool:
        report_id = report.execId
        stem, revision = exec_revision(report_id)
        current = ledger.current.get(stem)
        if current is not None and current[0] > revision:  # for a superseded execution
            return False
        ledger.comm_rows.append(translate.commission_row(report))
        ledger.n_comm += 1
        ledger.comm_ids.add(report_id)
        ledger.pending.pop(report_id, None)
        return True

    def _settle(self, ledger: _Ledger) -> bool:
        """Reports the library stored without an event, and executions waited out."""
        now, wait, changed = self._now(), self._wait(), False
        for exec_id, (fill, since) in list(ledger.pending.items()):
            report = getattr(fill, "commissionReport", None)
            if getattr(report, "execId", "") == exec_id:
                changed = self._add_commission(ledger, report) or changed
            elif (now - since).total_seconds() >= wait:
                del ledger.pending[exec_id]
                ledger.timed_out.add(exec_id)
                changed = True
        return changed

    def settle(self, order_id: str, record: dict[str, Any]) -> None:
        """Settle this order's waiting executions now (a read of the record)."""
        ledger = self._ledger(order_id, record)
        if ledger.pending and self._settle(ledger):
            _count(record, ledger)


def _rebuild(record: dict[str, Any], now: datetime) -> _Ledger:
    rows, comm = record["executions"], record["commissions"]
    ledger = _Ledger(rows=rows, comm_rows=comm, n_rows=len(rows), n_comm=len(comm))
    ledger.comm_ids = {c["execution_id"] for c in comm}
    for row in rows:
        exec_id = row["execution_id"]
        ledger.seen.add(exec_id)
        stem, revision = exec_revision(exec_id)
        ledger.current[stem] = (revision, row)
        corrected = row.get("corrects")
        if isinstance(corrected, str):
            ledger.seen.add(corrected)
        if exec_id not in ledger.comm_ids:
            ledger.pending[exec_id] = (None, now)
    ledger.filled = filled_of(rows, is_combo(rows, bool(record.get("legs"))))
    return ledger


def _drop_commission(ledger: _Ledger, exec_id: str) -> None:
    if exec_id in ledger.comm_ids:
        ledger.comm_ids.discard(exec_id)
        ledger.comm_rows[:] = [c for c in ledger.comm_rows if c["execution_id"] != exec_id]
        ledger.n_comm = len(ledger.comm_rows)


def _derive(record: dict[str, Any], ledger: _Ledger) -> None:
    """``filled`` / ``remaining`` / ``filled_price`` from the executions when they are ahead
    of the last orderStatus (IB reports the same figures in the next one). One pass over the
    unit rows (the event path runs this once per order per socket read)."""
    units = unit_rows(ledger.rows, is_combo(ledger.rows, bool(record.get("legs"))))
    filled, notional = totals(units)
    ledger.filled = filled
    if filled > (record.get("filled") or 0.0):
        record["filled"] = filled
        contracts = record.get("contracts")
        if isinstance(contracts, (int, float)):
            record["remaining"] = max(0.0, float(contracts) - filled)
    if filled:
        record["filled_price"] = translate.price_sign(record.get("direction")) * (
            notional / filled)
    _count(record, ledger, units)


def _count(record: dict[str, Any], ledger: _Ledger, units: list[Any] | None = None) -> None:
    """The settled figures: combo units whose report arrived (or waited out), commissions."""
    if units is None:
        units = unit_rows(ledger.rows, is_combo(ledger.rows, bool(record.get("legs"))))
    reported, waited = ledger.comm_ids, ledger.timed_out
    record["fills_settled"] = float(sum(r["shares"] for r in units
                                        if r["execution_id"] in reported
                                        or r["execution_id"] in waited))
    total = [c["commission"] for c in ledger.comm_rows
             if isinstance(c.get("commission"), (int, float))]
    record["commission"] = round(sum(total), 6) if total else None
    record["commission_pending"] = len(ledger.pending)
