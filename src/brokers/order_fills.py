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

from collections.abc import Callable
from datetime import datetime
from typing import Any

from src.brokers import translate
from src.brokers.fill_math import exec_revision, number, unit_totals
from src.brokers.order_match import fill_matches
from src.utils.clock import SYSTEM_CLOCK

Rows = list[dict[str, Any]]
DEFAULT_COMMISSION_WAIT = 5.0


class _Ledger:
    """What one order's record holds, indexed (see the module doc), and its running sums.

    ``sums`` are (quantity, quantity x price) of all rows and of the BAG-level rows, added up
    in row order as rows are appended — the very additions :func:`unit_totals` makes, so the
    figures are the same to the last bit; ``None`` after a correction replaced a row (summed
    again at the next derive). ``fees`` is the sum of the numeric commissions, in row order.
    """

    __slots__ = ("rows", "comm_rows", "n_rows", "n_comm", "current", "comm_ids",
                 "pending", "timed_out", "swept_at", "filled", "bag", "sums", "fees", "fees_n")

    def __init__(self, rows: Rows, comm_rows: Rows) -> None:
        self.rows, self.comm_rows = rows, comm_rows
        self.n_rows, self.n_comm = len(rows), len(comm_rows)
        # execId stem -> (revision, row): an execution is new when its stem is not here or
        # its revision is higher (a correction); anything else was merged or is superseded
        self.current: dict[str, tuple[int, dict[str, Any]]] = {}
        self.comm_ids: set[str] = set()
        # no report yet: execId -> (Fill or None, since); every row's execId is in exactly
        # one of comm_ids, pending and timed_out
        self.pending: dict[str, tuple[Any, datetime]] = {}
        self.timed_out: set[str] = set()
        self.swept_at = 0.0  # the reported filled quantity the library's fills were swept for
        self.filled = 0.0  # filled according to the executions (combo units)
        self.bag = False  # a BAG-level execution is among the rows (the order is a combo)
        self.sums: list[float] | None = [0.0, 0.0, 0.0, 0.0]
        self.fees, self.fees_n = 0.0, 0

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
        current, comm_ids = ledger.current, ledger.comm_ids
        changed = False
        now: datetime | None = None  # read once per merge, and only for an execution that waits
        for fill in fills:
            exec_id = getattr(fill.execution, "execId", "")
            report = getattr(fill, "commissionReport", None)
            report_id = getattr(report, "execId", "") if report is not None else ""
            if isinstance(exec_id, str) and exec_id:
                stem, revision = exec_revision(exec_id)
                known = current.get(stem)
                if known is not None and revision <= known[0]:
                    pass  # merged already, or an earlier revision arriving late: superseded
                elif report_id == exec_id and exec_id not in comm_ids:  # with its report
                    self._add_execution(ledger, fill, exec_id, stem, revision, known, None)
                    _add_report(ledger, report)
                    changed = True
                    continue
                else:
                    if now is None and exec_id not in comm_ids:
                        now = self._now()
                    self._add_execution(ledger, fill, exec_id, stem, revision, known, now)
                    changed = True
            if isinstance(report_id, str) and report_id and report_id not in comm_ids \
                    and self._add_commission(ledger, report):
                changed = True
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
            ledger = _rebuild(record, self._now)
            if order_id is not None:
                self._ledgers[order_id] = ledger
        return ledger

    def _add_execution(self, ledger: _Ledger, fill: Any, exec_id: str, stem: str,
                       revision: int, current: tuple[int, dict[str, Any]] | None,
                       now: datetime | None) -> None:
        """A new execution (``current``: the row of a lower revision it corrects) into the
        rows; ``now`` None: its report is added right after."""
        row = translate.execution_row(fill)
        if current is not None:
            old_row = current[1]
            old_id = old_row["execution_id"]
            row["corrects"] = old_id
            index = next(i for i, r in enumerate(ledger.rows) if r is old_row)
            ledger.rows[index] = row
            _drop_commission(ledger, old_id)
            ledger.pending.pop(old_id, None)
            ledger.timed_out.discard(old_id)
            ledger.sums = None  # a row replaced: summed again at the derive
            ledger.bag = any(r.get("sec_type") == "BAG" for r in ledger.rows)
        else:
            ledger.rows.append(row)
            ledger.n_rows += 1
            sums = ledger.sums
            if sums is not None:
                shares, price = row["shares"], row["price"]
                if shares.__class__ is not float:  # floats as the libraries decode them
                    shares = number(shares)
                if price.__class__ is not float:
                    price = number(price)
                value = shares * price
                sums[0] += shares
                sums[1] += value
                if row["sec_type"] == "BAG":
                    sums[2] += shares
                    sums[3] += value
        if row["sec_type"] == "BAG":
            ledger.bag = True
        ledger.current[stem] = (revision, row)
        if now is not None and exec_id not in ledger.comm_ids:
            ledger.pending[exec_id] = (fill, now)

    def _add_commission(self, ledger: _Ledger, report: Any) -> bool:
        report_id = report.execId
        pending = ledger.pending
        if report_id in pending:  # the usual case: pending holds current revisions only
            del pending[report_id]
        else:
            stem, revision = exec_revision(report_id)
            current = ledger.current.get(stem)
            if current is not None and current[0] > revision:  # for a superseded execution
                return False
        _add_report(ledger, report)
        return True

    def _settle(self, ledger: _Ledger) -> bool:
        """Reports the library stored without an event, and executions waited out."""
        now: datetime | None = None
        wait, changed = 0.0, False
        for exec_id, (fill, since) in list(ledger.pending.items()):
            report = getattr(fill, "commissionReport", None)
            if getattr(report, "execId", "") == exec_id:
                changed = self._add_commission(ledger, report) or changed
                continue
            if now is None:
                now, wait = self._now(), self._wait()
            if (now - since).total_seconds() >= wait:
                del ledger.pending[exec_id]
                ledger.timed_out.add(exec_id)
                changed = True
        return changed

    def settle(self, order_id: str, record: dict[str, Any]) -> None:
        """Settle this order's waiting executions now (a read of the record)."""
        ledger = self._ledger(order_id, record)
        if ledger.pending and self._settle(ledger):
            _count(record, ledger)


def _add_report(ledger: _Ledger, report: Any) -> None:
    row = translate.commission_row(report)
    ledger.comm_rows.append(row)
    ledger.n_comm += 1
    ledger.comm_ids.add(report.execId)
    value = row["commission"]
    if isinstance(value, (int, float)):
        ledger.fees += value
        ledger.fees_n += 1


def _rebuild(record: dict[str, Any], now: Callable[[], datetime]) -> _Ledger:
    rows, comm = record["executions"], record["commissions"]
    ledger = _Ledger(rows, comm)
    if not rows and not comm:  # a new order: nothing to index
        return ledger
    ledger.comm_ids = {c["execution_id"] for c in comm}
    since: datetime | None = None
    for row in rows:
        exec_id = row["execution_id"]
        stem, revision = exec_revision(exec_id)
        ledger.current[stem] = (revision, row)
        if exec_id not in ledger.comm_ids:
            if since is None:
                since = now()
            ledger.pending[exec_id] = (None, since)
    ledger.bag = any(r.get("sec_type") == "BAG" for r in rows)
    ledger.sums = _sums(rows)
    ledger.filled = ledger.sums[2 if ledger.bag or record.get("legs") else 0]
    _sum_fees(ledger)
    return ledger


def _sums(rows: Rows) -> list[float]:
    """(quantity, notional) of all rows, then of the BAG-level rows — as :func:`unit_totals`."""
    every, bag = unit_totals(rows, False), unit_totals(rows, True)
    return [every[0], every[1], bag[0], bag[1]]


def _sum_fees(ledger: _Ledger) -> None:
    ledger.fees, ledger.fees_n = 0.0, 0
    for c in ledger.comm_rows:
        value = c.get("commission")
        if isinstance(value, (int, float)):
            ledger.fees += value
            ledger.fees_n += 1


def _drop_commission(ledger: _Ledger, exec_id: str) -> None:
    if exec_id in ledger.comm_ids:
        ledger.comm_ids.discard(exec_id)
        ledger.comm_rows[:] = [c for c in ledger.comm_rows if c["execution_id"] != exec_id]
        ledger.n_comm = len(ledger.comm_rows)
        _sum_fees(ledger)


def _totals(record: dict[str, Any], ledger: _Ledger) -> tuple[float, float, float]:
    """(filled, notional, settled) of the unit rows: the running sums, and ``settled`` equal
    to ``filled`` when nothing waits (every row is then reported or waited out), else one pass
    over the rows."""
    combo = ledger.bag or bool(record.get("legs"))
    sums = ledger.sums
    if sums is None:
        sums = ledger.sums = _sums(ledger.rows)
    filled, notional = (sums[2], sums[3]) if combo else (sums[0], sums[1])
    if not ledger.pending:
        return filled, notional, filled
    return filled, notional, unit_totals(ledger.rows, combo, ledger.comm_ids,
                                         ledger.timed_out)[2]


def _derive(record: dict[str, Any], ledger: _Ledger) -> None:
    """``filled`` / ``remaining`` / ``filled_price`` from the executions when they are ahead
    of the last orderStatus (IB reports the same figures in the next one), and the settled
    figures (the event path runs this once per order per read)."""
    filled, notional, settled = _totals(record, ledger)
    ledger.filled = filled
    if filled > (record.get("filled") or 0.0):
        record["filled"] = filled
        contracts = record.get("contracts")
        if isinstance(contracts, (int, float)):
            record["remaining"] = max(0.0, float(contracts) - filled)
    if filled:
        record["filled_price"] = translate.price_sign(record.get("direction")) * (
            notional / filled)
    _count(record, ledger, settled)


def _count(record: dict[str, Any], ledger: _Ledger, settled: float | None = None) -> None:
    """The settled figures: combo units whose report arrived (or waited out), commissions."""
    record["fills_settled"] = _totals(record, ledger)[2] if settled is None else settled
    record["commission"] = round(ledger.fees, 6) if ledger.fees_n else None
    record["commission_pending"] = len(ledger.pending)
