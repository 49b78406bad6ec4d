"""How the simulated gateway fills an order: slices, executions, their order on the wire,
corrections (the engine's ``_fill`` path; runs on the gateway's loop thread).

Real IB fills a resting combo in several executions, one per leg plus one at BAG level for each
part, with ``cumQty`` / ``avgPrice`` cumulative per order and contract; it may deliver an
execution before the order's first ``openOrder`` / ``orderStatus``; and it corrects an execution
by sending a new one whose execId differs only after the final period (``….01`` → ``….02``).
:class:`FillRules` holds the switches (see docs/simulator.md, "Real IB's messy parts"), seeded
from the market's seed so a run is reproducible; :class:`FillMaker` builds the executions.

Defaults: whole fills, in order, no corrections — what the existing suite was written against.
Tests and the soak switch the rest on through ``SimulatedGateway.set_fill_rules``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from src.simulator import order_codec as codec
from src.simulator.types import SimContract, SimFill, SimOrder

if TYPE_CHECKING:
    from src.simulator.orders import OrderEngine

LegPrice = tuple[SimContract, str, int, float]  # leg contract, leg action, ratio, price


@dataclass
class FillRules:
    """The fill switches of one gateway (each settable per test)."""

    partial: bool = False  # fill in slices of 1..max_slice lots, one slice per market step
    max_slice: int = 0  # 0: a slice may be anything up to the remaining quantity
    exec_before_open_order: bool = False  # a fill at placement reaches the client first
    corrections: bool = False  # the first part of every order is corrected on the next step
    late_commissions: bool = False  # commission reports follow one market step later
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"fills-{self.seed}")
        if self.max_slice < 0:
            raise ValueError(f"max_slice must be >= 0, got {self.max_slice!r}")

    def slice(self, remaining: float) -> float:
        """The quantity the next execution fills (at least one lot, at most ``remaining``)."""
        if not self.partial or remaining <= 1:
            return remaining
        cap = int(remaining) if not self.max_slice else min(int(remaining), self.max_slice)
        return float(self.rng.randint(1, max(1, cap)))


@dataclass
class Correction:
    """A slice to correct on the next market step: its executions and the BAG price sign."""

    order: SimOrder
    fills: list[SimFill]
    combo: bool


class FillMaker:
    """Builds one slice's executions, keeps the per-order cumulative figures IB reports."""

    def __init__(self) -> None:
        # (permId, conId) -> (quantity, notional) so far
        self._cum: dict[tuple[int, int], tuple[float, float]] = {}
        self.pending: list[Correction] = []
        self.late: list[tuple[SimOrder, list[SimFill]]] = []  # commission reports to send

    def executions(self, order: SimOrder, qty: float, price: float,
                   legs: list[LegPrice] | None, base: str, stamp: str) -> list[SimFill]:
        """The slice's executions: the single one, or BAG-level first then one per leg."""
        req = order.request
        side = "BOT" if req.action == "BUY" else "SLD"
        rows: list[tuple[SimContract, str, float, float]] = [(req.contract, side, qty, price)]
        if legs is not None:
            rows += [(c, "BOT" if a == "BUY" else "SLD", ratio * qty, px)
                     for c, a, ratio, px in legs]
        out = []
        for n, (contract, fill_side, shares, px) in enumerate(rows, start=1):
            cum_qty, avg = self._cumulate(order.perm_id, contract.con_id, shares, shares * px)
            out.append(SimFill(exec_id=f"{base}.{n:02d}.01", order_id=req.order_id,
                               perm_id=order.perm_id, client_id=order.client_id,
                               contract=contract, side=fill_side, shares=shares, price=px,
                               time=stamp, account=req.account, cum_qty=cum_qty, avg_price=avg,
                               order_ref=req.order_ref))
        return out

    def _cumulate(self, perm_id: int, con_id: int, shares: float, notional: float,
                  ) -> tuple[float, float]:
        qty, total = self._cum.get((perm_id, con_id), (0.0, 0.0))
        qty, total = qty + shares, total + notional
        self._cum[(perm_id, con_id)] = (qty, total)
        return qty, round(total / qty, 6) if qty else 0.0

    def order_average(self, order: SimOrder) -> float:
        """The order's average fill price so far (its own contract: the BAG for a combo)."""
        qty, total = self._cum.get((order.perm_id, order.request.contract.con_id), (0.0, 0.0))
        return round(total / qty, 6) if qty else 0.0

    def correct(self, item: Correction) -> list[tuple[SimFill, SimFill]]:
        """(old, new) executions of a correction: the first leg (or the single execution)
        one cent worse for the order, and for a combo the BAG-level one re-priced to match.
        New execIds differ from the old only after the final period (``.01`` → ``.02``)."""
        fills = item.fills
        target = fills[1] if item.combo else fills[0]
        delta = 0.01 if target.side == "BOT" else -0.01
        changed = [(target, round(target.price + delta, 6))]
        if item.combo:
            bag = fills[0]
            # a leg bought dearer raises a BUY combo's net debit, one sold cheaper too
            leg_ratio = target.shares / bag.shares if bag.shares else 1.0
            bag_delta = abs(delta) * leg_ratio * (1.0 if bag.side == "BOT" else -1.0)
            changed.append((bag, round(bag.price + bag_delta, 6)))
        out = []
        for old, new_price in changed:
            key = (old.perm_id, old.contract.con_id)
            qty, total = self._cum.get(key, (0.0, 0.0))
            total += old.shares * (new_price - old.price)
            self._cum[key] = (qty, total)
            stem = old.exec_id.rsplit(".", 1)[0]
            new = replace(old, exec_id=f"{stem}.02", price=new_price,
                          avg_price=round(total / qty, 6) if qty else new_price)
            out.append((old, new))
        return out


def send_deferred(engine: OrderEngine) -> None:
    """One market step after the slices: the commission reports held back by
    ``late_commissions``, then the corrections queued by ``corrections`` — the gateway's
    executions, positions and cash move to the corrected prices, the client gets the ``.02``
    executions, their commission reports (the original commission, moved) and an orderStatus
    with the new average price."""
    maker = engine.fill_maker
    late, maker.late = maker.late, []
    for order, fills in late:
        for f in fills:
            engine._send_to_owner(order, codec.encode_commission_report(f))
    pending, maker.pending = maker.pending, []
    for item in pending:
        order = item.order
        for old, new in maker.correct(item):
            engine.fills[engine.fills.index(old)] = new
            if not (item.combo and old is item.fills[0]):  # BAG-level: moves no position
                reverse = "SLD" if old.side == "BOT" else "BOT"
                engine.book.apply_execution(old.account, old.contract, reverse, old.shares,
                                            old.price, 0.0)
                engine.book.apply_execution(new.account, new.contract, new.side, new.shares,
                                            new.price, 0.0)
                engine.feed.push_position(new.account, new.contract.con_id)
            engine._send_to_owner(order, codec.encode_exec_details(-1, new))
            engine._send_to_owner(order, codec.encode_commission_report(new))
        order.avg_fill_price = maker.order_average(order)
        engine._send_to_owner(order, codec.encode_order_status(order))
        engine.feed.push_account(order.request.account)
