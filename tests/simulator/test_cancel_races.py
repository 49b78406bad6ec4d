"""Cancel refusals, reports in flight, the fill-wins race, order notices and error 110 in the
order engine (fake sessions record exactly what the engine sends, in order)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_orders import NOW, FakeMarket, FakeSession, bull_call, call, place, spy_call

from src.brokers.compat import LimitOrder, Stock
from src.simulator import cancel_races
from src.simulator.orders import OrderEngine
from src.simulator.types import SimContract
from src.utils.clock import FixedClock


@pytest.fixture
def engine() -> OrderEngine:
    m = FakeMarket()
    m.add(SimContract(con_id=756733, symbol="SPY", sec_type="STK", primary_exchange="ARCA"),
          454.9, 455.1)
    for con_id, strike, bid, ask in ((1001, 450, 5.0, 5.2), (1002, 460, 2.0, 2.1)):
        m.add(SimContract(con_id=con_id, symbol="SPY", sec_type="OPT",
                          last_trade_date="20261218", strike=strike, right="C",
                          multiplier="100", trading_class="SPY"), bid, ask)
    return OrderEngine(m, ["DU111"], clock=FixedClock(datetime.fromtimestamp(NOW, UTC)))


@pytest.fixture
def session(engine: OrderEngine) -> FakeSession:
    s = FakeSession()
    engine.attach(s)
    return s


def texts(session: FakeSession) -> list[str]:
    return [m[4] for m in session.sent if m[0] == "4"]


def resting(engine: OrderEngine, session: FakeSession, oid: int = 5) -> None:
    place(engine, session, oid, bull_call(), LimitOrder("BUY", 1, 0.05))  # never crosses
    session.clear()


def test_cancel_texts_are_ibs(engine: OrderEngine, session: FakeSession) -> None:
    call(engine, session, 4, 1, 99, "")
    assert texts(session) == ["OrderId 99 that needs to be cancelled is not found."]
    place(engine, session, 6, Stock("SPY", "SMART", "USD"), LimitOrder("BUY", 1, 500.0))
    session.clear()
    call(engine, session, 4, 1, 6, "")  # filled at once: 10148, state Filled
    assert session.errors() == [10148]
    assert texts(session) == [
        "OrderId 6 that needs to be cancelled cannot be cancelled, state: Filled."]
    resting(engine, session, 7)
    call(engine, session, 4, 1, 7, "")
    session.clear()
    call(engine, session, 4, 1, 7, "")  # cancelled already: 161 with the permId
    perm = engine._by_key[(5, 7)]
    assert session.errors() == [161]
    assert texts(session) == ["Cancel attempted when order is not in a cancellable state.  "
                              f"Order permId ={perm}"]


def test_held_fill_is_delivered_with_10148_between_executions_and_status(
        engine: OrderEngine, session: FakeSession) -> None:
    resting(engine, session)
    engine.races.all_orders = True
    order = engine.orders[engine._by_key[(5, 5)]]
    order.request.lmt_price = 50.0
    engine.on_prices()
    assert order.status == "Filled" and session.sent == []  # on the wire, not delivered
    call(engine, session, 4, 1, 5, "")
    ids = session.ids()
    assert ids[:3] == ["11", "11", "11"] and ids[3] == "4" and ids[4] == "3", ids
    assert session.errors() == [10148] and session.sent[4][2] == "Filled"


def test_race_the_fill_wins_at_the_limit(engine: OrderEngine, session: FakeSession) -> None:
    resting(engine, session)
    engine.races.fill_on_cancel = True
    call(engine, session, 4, 1, 5, "")
    order = engine.orders[engine._by_key[(5, 5)]]
    assert order.status == "Filled" and order.avg_fill_price == pytest.approx(0.05)
    ids = session.ids()
    assert ids.index("4") < ids.index("3") and ids.index("11") < ids.index("4"), ids
    assert session.errors() == [10148] and "202" not in [m[3] for m in session.of("4")]


def test_held_gateway_cancel_then_client_cancel_is_161_before_the_status(
        engine: OrderEngine, session: FakeSession) -> None:
    resting(engine, session)
    engine.races.all_orders = True
    engine._cancel(engine.orders[engine._by_key[(5, 5)]])
    assert session.sent == []
    call(engine, session, 4, 1, 5, "")
    assert session.errors() == [161, 202] and session.ids() == ["4", "3", "4"]
    assert session.sent[1][2] == "Cancelled"


def test_release_delivers_everything_held_in_order(engine: OrderEngine,
                                                    session: FakeSession) -> None:
    resting(engine, session)
    engine.races.all_orders = True
    engine._cancel(engine.orders[engine._by_key[(5, 5)]])
    cancel_races.release(engine)
    assert session.ids() == ["3", "4"] and session.errors() == [202]
    assert engine.races.all_orders is False


@pytest.mark.parametrize("code", sorted(cancel_races.ORDER_NOTICES))
def test_notice_leaves_the_order_as_it_is(engine: OrderEngine, session: FakeSession,
                                          code: int) -> None:
    resting(engine, session)
    cancel_races.send_notice(engine, 5, 5, code)
    assert session.errors() == [code] and texts(session) == [cancel_races.ORDER_NOTICES[code]]
    assert engine.orders[engine._by_key[(5, 5)]].status == "Submitted"


def test_notices_on_place_follow_the_submitted_status(engine: OrderEngine,
                                                      session: FakeSession) -> None:
    engine.races.place_notices = (10349,)
    place(engine, session, 5, bull_call(), LimitOrder("BUY", 1, 0.05))
    assert session.ids() == ["5", "3", "4"] and session.errors() == [10349]


def test_unknown_notice_code_is_refused(engine: OrderEngine, session: FakeSession) -> None:
    resting(engine, session)
    with pytest.raises(ValueError, match="code"):
        cancel_races.send_notice(engine, 5, 5, 123)
    with pytest.raises(ValueError, match="order_id"):
        cancel_races.send_notice(engine, 5, 77, 399)


def test_off_increment_limit_gets_110_and_no_order(engine: OrderEngine,
                                                   session: FakeSession) -> None:
    place(engine, session, 5, spy_call(450, 1001), LimitOrder("BUY", 1, 5.013))
    assert session.errors() == [110] and session.ids() == ["4"]
    assert texts(session) == [
        "The price does not conform to the minimum price variation for this contract."]
    assert engine.orders == {}
    session.clear()
    place(engine, session, 6, bull_call(), LimitOrder("BUY", 1, 1.234))  # combo: $0.01
    assert session.errors() == [110]
    session.clear()
    place(engine, session, 7, bull_call(), LimitOrder("BUY", 1, -1.23))  # a credit, on grid
    assert session.errors() == [] and session.ids() == ["5", "3"]


def test_enforcement_off_and_forced_110(engine: OrderEngine, session: FakeSession) -> None:
    engine.enforce_increments = False
    place(engine, session, 5, bull_call(), LimitOrder("BUY", 1, 0.013))
    assert session.errors() == [] and len(engine.orders) == 1
    engine.force_110 = 1
    session.clear()
    place(engine, session, 6, bull_call(), LimitOrder("BUY", 1, 0.05))
    assert session.errors() == [110] and len(engine.orders) == 1
    session.clear()
    place(engine, session, 7, bull_call(), LimitOrder("BUY", 1, 0.05))  # only the next one
    assert session.errors() == [] and len(engine.orders) == 2


def test_after_its_cancel_an_orders_reports_are_no_longer_held(engine: OrderEngine,
                                                               session: FakeSession) -> None:
    resting(engine, session)
    engine.races.all_orders = True
    call(engine, session, 4, 1, 5, "")  # live: cancelled, and the answer is delivered
    assert session.ids() == ["3", "4"] and session.errors() == [202]


def test_every_nth_cancel_races_its_fill() -> None:
    from src.simulator.cancel_races import ReportHold

    hold = ReportHold()
    assert [hold.races_now() for _ in range(2)] == [False, False]  # racing off
    hold.fill_on_cancel, hold.race_every = True, 2
    assert [hold.races_now() for _ in range(4)] == [False, True, False, True]


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_race_cancels_refuses_a_bad_count(every: object) -> None:
    from src.simulator.harness import SimulatedGateway

    with pytest.raises(ValueError, match="every"):
        SimulatedGateway().race_cancels(True, every=every)  # type: ignore[arg-type]
