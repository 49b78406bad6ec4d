"""The engine's fill switches (src/simulator/fills.py): parts, out-of-order delivery,
corrections, late commission reports — on the wire as a client sees them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_orders import (
    EXEC_ID,
    NOW,
    PRICE,
    SEC_TYPE,
    SHARES,
    FakeMarket,
    FakeSession,
    bull_call,
    market,
    place,
)

from src.brokers.compat import LimitOrder
from src.simulator.fills import FillRules
from src.simulator.orders import OrderEngine
from src.utils.clock import FixedClock

# execDetails (11): cumQty and avgPrice follow liquidation (after clientId)
CUM_QTY, AVG_PRICE = 24, 25
__all__ = ["market"]  # the fixture, shared with test_orders


def _engine(market: FakeMarket, **rules: object) -> tuple[OrderEngine, FakeSession]:
    engine = OrderEngine(market, ["DU111"], clock=FixedClock(datetime.fromtimestamp(NOW, UTC)))
    for name, value in rules.items():
        setattr(engine.fill_rules, name, value)
    session = FakeSession()
    engine.attach(session)
    return engine, session


def _bag_rows(session: FakeSession) -> list[list[str]]:
    return [m for m in session.of("11") if m[SEC_TYPE] == "BAG"]


def test_whole_fills_stay_the_default(market: FakeMarket) -> None:
    engine, session = _engine(market)
    place(engine, session, 1, bull_call(), LimitOrder("BUY", 5, 9.0))
    assert [m[SHARES] for m in session.of("11")] == ["5", "5", "5"]
    assert engine.orders[next(iter(engine.orders))].status == "Filled"


def test_a_combo_fills_in_seeded_parts_with_cumulative_qty_and_average(
        market: FakeMarket) -> None:
    engine, session = _engine(market, partial=True, max_slice=2)
    place(engine, session, 1, bull_call(), LimitOrder("BUY", 5, 9.0))
    order = engine.orders[next(iter(engine.orders))]
    for _ in range(10):
        if order.status == "Filled":
            break
        market.quotes[1001] = (5.0, market.quotes[1001][1] + 0.01)  # the debit moves
        engine.on_prices()
    bags = _bag_rows(session)
    sizes = [float(m[SHARES]) for m in bags]
    assert len(bags) >= 3 and all(1 <= s <= 2 for s in sizes) and sum(sizes) == 5
    assert [float(m[CUM_QTY]) for m in bags] == [sum(sizes[:i + 1]) for i in range(len(sizes))]
    prices = [float(m[PRICE]) for m in bags]
    vwap = sum(s * p for s, p in zip(sizes, prices, strict=True)) / 5
    assert float(bags[-1][AVG_PRICE]) == pytest.approx(vwap)
    assert order.avg_fill_price == pytest.approx(vwap) and order.filled == 5
    legs = [m for m in session.of("11") if m[SEC_TYPE] == "OPT"]
    assert len(legs) == 2 * len(bags)  # one execution per leg per part
    statuses = [(m[2], float(m[3]), float(m[4])) for m in session.of("3")]
    assert statuses[-1] == ("Filled", 5.0, 0.0)
    assert any(s == "Submitted" and 0 < f < 5 for s, f, _ in statuses)
    assert len(session.of("59")) == len(session.of("11"))  # a report per execution


def test_parts_come_from_the_seed() -> None:
    def parts(seed: int) -> list[float]:
        rules = FillRules(seed=seed, partial=True, max_slice=3)
        return [rules.slice(10) for _ in range(20)]

    assert parts(7) == parts(7)
    assert parts(7) != parts(8)
    assert all(1 <= p <= 3 for p in parts(7))
    assert FillRules(seed=7, partial=True).slice(1) == 1  # one lot is never split
    assert FillRules(seed=7).slice(4) == 4  # partial off: all that remains


def test_an_execution_can_reach_the_client_before_the_open_order(market: FakeMarket) -> None:
    engine, session = _engine(market, partial=True, max_slice=2, exec_before_open_order=True)
    place(engine, session, 1, bull_call(), LimitOrder("BUY", 5, 9.0))
    ids = session.ids()
    assert ids.index("11") < ids.index("5") and ids.index("59") < ids.index("5")
    assert ids.index("5") < ids.index("3")
    session.clear()
    place(engine, session, 2, bull_call(), LimitOrder("BUY", 1, 0.01))  # rests: nothing early
    assert session.ids() == ["5", "3"]


def test_a_correction_reissues_the_first_part_as_02_one_step_later(market: FakeMarket) -> None:
    engine, session = _engine(market, corrections=True)
    place(engine, session, 1, bull_call(), LimitOrder("BUY", 2, 9.0))
    first = {m[EXEC_ID]: float(m[PRICE]) for m in session.of("11")}
    assert all(k.endswith(".01") for k in first)
    session.clear()
    engine.on_prices()
    fixed = {m[EXEC_ID]: float(m[PRICE]) for m in session.of("11")}
    assert len(fixed) == 2 and all(k.endswith(".02") and k[:-3] + ".01" in first
                                   for k in fixed)
    assert {m[2] for m in session.of("59")} == set(fixed)
    order = engine.orders[next(iter(engine.orders))]
    assert float(session.of("3")[-1][5]) == pytest.approx(order.avg_fill_price)
    assert {f.exec_id for f in engine.fills} == (set(first) - {k[:-3] + ".01" for k in fixed}
                                                 ) | set(fixed)
    session.clear()
    engine.on_prices()
    assert session.of("11") == []  # corrected once


def test_late_commission_reports_follow_one_step_later(market: FakeMarket) -> None:
    engine, session = _engine(market, late_commissions=True)
    place(engine, session, 1, bull_call(), LimitOrder("BUY", 1, 9.0))
    assert len(session.of("11")) == 3 and session.of("59") == []
    engine.on_prices()
    assert sorted(m[2] for m in session.of("59")) == sorted(m[EXEC_ID]
                                                           for m in session.of("11"))


def test_max_slice_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_slice"):
        FillRules(max_slice=-1)
