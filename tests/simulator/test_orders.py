"""OrderEngine unit tests: fake Session (records what is sent) and a fake market with set prices.

Orders are built with ib_insync's own Client.placeOrder encoder, so the engine sees exactly
the fields a real client sends; the end-to-end tests decode what the engine sent with
ib_insync's Decoder into a real Wrapper.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from src.brokers.compat import (
    IB,
    Bag,
    Client,
    ComboLeg,
    Contract,
    Decoder,
    LimitOrder,
    MarketOrder,
    Option,
    Order,
    Stock,
)
from src.simulator import order_codec as codec
from src.simulator.orders import OrderEngine
from src.simulator.types import SimContract
from src.utils.clock import FixedClock, ny_datetime

NOW = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
# execDetails (11) field positions: id, reqId, orderId, conId, symbol, secType .. execId(14)
SEC_TYPE, EXEC_ID, SIDE, SHARES, PRICE, PERM_ID, ORDER_REF = 5, 14, 18, 19, 20, 21, 26


class FakeMarket:
    def __init__(self) -> None:
        self.contracts: dict[int, SimContract] = {}
        self.quotes: dict[int, tuple[float, float]] = {}

    def add(self, c: SimContract, bid: float, ask: float) -> None:
        self.contracts[c.con_id] = c
        self.quotes[c.con_id] = (bid, ask)

    def contract(self, con_id: int) -> SimContract | None:
        return self.contracts.get(con_id)

    def resolve(self, c: SimContract) -> SimContract | None:
        if c.con_id:
            return self.contracts.get(c.con_id)
        for k in self.contracts.values():
            if (k.symbol, k.sec_type, k.last_trade_date, k.strike, k.right) == \
                    (c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right):
                return k
        return None

    def quote(self, con_id: int) -> tuple[float, float, float]:
        bid, ask = self.quotes[con_id]
        return bid, ask, (bid + ask) / 2

    def mid(self, con_id: int) -> float:
        bid, ask = self.quotes[con_id]
        return (bid + ask) / 2

    def underlying_price(self, symbol: str) -> float:
        return 455.0


class FakeSession:
    _ids = 0

    def __init__(self, client_id: int = 5, server_version: int = 176) -> None:
        FakeSession._ids += 1
        self.session_id = FakeSession._ids
        self.client_id = client_id
        self.server_version = server_version
        self.closed = False
        self.sent: list[list[str]] = []

    def send(self, *fields: Any) -> None:
        self.sent.append(list(codec.iter_fields(list(fields))))

    def send_error(self, req_id: int, code: int, message: str) -> None:
        self.sent.append(["4", "2", str(req_id), str(code), message, ""])

    def ids(self) -> list[str]:
        return [m[0] for m in self.sent]

    def errors(self) -> list[int]:
        return [int(m[3]) for m in self.sent if m[0] == "4"]

    def of(self, msg_id: str) -> list[list[str]]:
        return [m for m in self.sent if m[0] == msg_id]

    def clear(self) -> None:
        self.sent.clear()


def opt(con_id: int, strike: float) -> SimContract:
    return SimContract(con_id=con_id, symbol="SPY", sec_type="OPT", last_trade_date="20261218",
                       strike=strike, right="C", multiplier="100", trading_class="SPY")


@pytest.fixture
def market() -> FakeMarket:
    m = FakeMarket()
    m.add(SimContract(con_id=756733, symbol="SPY", sec_type="STK", primary_exchange="ARCA"),
          454.9, 455.1)
    m.add(opt(1001, 450), 5.0, 5.2)
    m.add(opt(1002, 460), 2.0, 2.1)
    return m


@pytest.fixture
def engine(market: FakeMarket) -> OrderEngine:
    clock = FixedClock(datetime.fromtimestamp(NOW, UTC))
    return OrderEngine(market, ["DU111", "DU222"], clock=clock)


@pytest.fixture
def session(engine: OrderEngine) -> FakeSession:
    s = FakeSession()
    engine.attach(s)
    return s


def place(engine: OrderEngine, session: FakeSession, order_id: int, contract: Contract,
          order: Order) -> None:
    client = Client(wrapper=None)
    client._serverVersion = session.server_version
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append  # type: ignore[method-assign]
    client.placeOrder(order_id, contract, order)
    fields = sent[0].split("\0")[1:-1]
    engine.handlers()[3](session, fields)


def call(engine: OrderEngine, session: FakeSession, msg_id: int, *fields: Any) -> None:
    engine.handlers()[msg_id](session, [str(f) for f in fields])


def spy_call(strike: float, con_id: int) -> Option:
    return Option("SPY", "20261218", strike, "C", "SMART", "100", "USD", conId=con_id)


def bull_call() -> Bag:
    return Bag(symbol="SPY", exchange="SMART", currency="USD", comboLegs=[
        ComboLeg(conId=1001, ratio=1, action="BUY", exchange="SMART"),
        ComboLeg(conId=1002, ratio=1, action="SELL", exchange="SMART")])


# ------------------------------------------------------------------ fills


def test_market_order_fill_sequence_and_commission(engine: OrderEngine,
                                                   session: FakeSession) -> None:
    place(engine, session, 1, Stock("SPY", "SMART", "USD"), MarketOrder("BUY", 100))
    assert session.ids() == ["5", "3", "11", "3", "5", "59"]
    assert session.sent[1][2] == "Submitted"
    ex = session.of("11")[0]
    assert (ex[1], ex[2], ex[3], ex[SIDE], ex[SHARES], ex[PRICE]) == \
        ("-1", "1", "756733", "BOT", "100", "455.1")
    status = session.sent[3]
    assert (status[2], status[3], status[4], status[5]) == ("Filled", "100", "0", "455.1")
    assert session.sent[4][session.sent[4].index("Filled") - 2] == "0"  # whatIf flag before
    report = session.of("59")[0]
    assert report[2] == ex[EXEC_ID] and float(report[3]) == 1.0  # 100 × 0.005 → min 1.00
    assert engine.next_order_id(5) == 2


def test_limit_order_rests_then_fills_when_crossed(engine: OrderEngine, session: FakeSession,
                                                   market: FakeMarket) -> None:
    place(engine, session, 3, spy_call(450, 1001), LimitOrder("BUY", 2, 5.1))
    assert session.ids() == ["5", "3"]
    engine.on_prices()
    assert "11" not in session.ids()
    market.quotes[1001] = (4.95, 5.05)
    session.clear()
    engine.on_prices()
    assert session.ids() == ["11", "3", "5", "59"]
    ex = session.of("11")[0]
    assert float(ex[PRICE]) == 5.05 and ex[SHARES] == "2"
    assert float(session.of("59")[0][3]) == pytest.approx(1.3)  # 2 × 0.65


def test_sell_limit_fills_at_bid_when_bid_reaches_limit(engine: OrderEngine,
                                                         session: FakeSession,
                                                         market: FakeMarket) -> None:
    engine.inject_position("DU111", 1001, 1, 400.0)
    place(engine, session, 4, spy_call(450, 1001), LimitOrder("SELL", 1, 5.5))
    assert "11" not in session.ids()
    market.quotes[1001] = (5.6, 5.8)
    engine.on_prices()
    ex = session.of("11")[0]
    assert ex[SIDE] == "SLD" and float(ex[PRICE]) == 5.6


def test_bag_bull_call_debit_prices_from_legs(engine: OrderEngine, session: FakeSession,
                                              market: FakeMarket) -> None:
    place(engine, session, 7, bull_call(), LimitOrder("BUY", 2, 3.0, orderRef="bull"))
    assert "11" not in session.ids()  # net ask 5.2 - 2.0 = 3.2 > 3.0
    market.quotes[1002] = (2.25, 2.35)  # net ask 5.2 - 2.25 = 2.95
    engine.on_prices()
    execs = session.of("11")
    assert [(e[SEC_TYPE], e[SIDE], e[SHARES]) for e in execs] == \
        [("BAG", "BOT", "2"), ("OPT", "BOT", "2"), ("OPT", "SLD", "2")]
    assert [float(e[PRICE]) for e in execs] == [2.95, 5.2, 2.25]
    assert all(e[2] == "7" and e[ORDER_REF] == "bull" for e in execs)
    assert len({e[PERM_ID] for e in execs}) == 1  # one permId
    reports = session.of("59")
    assert [float(r[3]) for r in reports] == [0.0, 1.3, 1.3]
    pos = engine.positions
    assert pos[("DU111", 1001)].quantity == 2 and pos[("DU111", 1002)].quantity == -2
    assert pos[("DU111", 1001)].avg_cost == pytest.approx(520.65)
    assert pos[("DU111", 1002)].avg_cost == pytest.approx(225.0 - 0.65)
    status = [m for m in session.of("3") if m[2] == "Filled"][0]
    assert float(status[5]) == 2.95


def test_bag_market_order_fills_at_net_of_legs(engine: OrderEngine,
                                                session: FakeSession) -> None:
    place(engine, session, 8, bull_call(), MarketOrder("SELL", 1))
    execs = session.of("11")
    # SELL the combo: sell 1001 at bid 5.0, buy 1002 at ask 2.1 → net 2.9 received
    assert [(e[SIDE], float(e[PRICE])) for e in execs] == [("SLD", 2.9), ("SLD", 5.0),
                                                      ("BOT", 2.1)]


# ------------------------------------------------------------------ rejections / errors


def test_market_closed_rejects_with_201_and_inactive(engine: OrderEngine,
                                                     session: FakeSession) -> None:
    engine.market_open = False
    place(engine, session, 1, spy_call(450, 1001), MarketOrder("BUY", 1))
    assert session.ids() == ["4", "3"]
    assert session.errors() == [201] and "reason:" in session.sent[0][4]
    assert session.sent[1][2] == "Inactive"
    assert engine.fills == []


@pytest.mark.parametrize("contract, order", [
    (Option("SPY", "20261218", 999, "C", "SMART"), MarketOrder("BUY", 1)),
    (spy_call(450, 1001), Order(action="BUY", totalQuantity=1, orderType="LMT")),
    (spy_call(450, 1001), MarketOrder("BUY", 0)),
    (Bag(symbol="SPY", comboLegs=[ComboLeg(conId=4242, ratio=1, action="BUY")]),
     MarketOrder("BUY", 1)),
])
def test_invalid_orders_are_rejected(engine: OrderEngine, session: FakeSession,
                                     contract: Contract, order: Order) -> None:
    place(engine, session, 1, contract, order)
    assert session.errors() == [201] and session.of("3")[-1][2] == "Inactive"
    assert engine.fills == [] and engine.positions == {}


def test_malformed_place_order_is_321_and_changes_nothing(engine: OrderEngine,
                                                          session: FakeSession) -> None:
    call(engine, session, 3, 9, 1, "SPY")
    assert session.errors() == [321] and engine.orders == {}


def test_cancel_unknown_final_and_live(engine: OrderEngine, session: FakeSession) -> None:
    call(engine, session, 4, 1, 99, "")
    assert session.errors() == [10147]
    place(engine, session, 5, spy_call(450, 1001), LimitOrder("BUY", 1, 1.0))
    session.clear()
    call(engine, session, 4, 1, 5, "")
    assert session.ids() == ["3", "4"]
    assert session.sent[0][2] == "Cancelled" and session.errors() == [202]
    assert session.sent[1][4].startswith("Order Canceled - reason:")
    session.clear()
    call(engine, session, 4, 1, 5, "")
    assert session.errors() == [161]


def test_reusing_id_of_finished_order_is_103(engine: OrderEngine,
                                             session: FakeSession) -> None:
    place(engine, session, 2, spy_call(450, 1001), MarketOrder("BUY", 1))
    session.clear()
    place(engine, session, 2, spy_call(450, 1001), MarketOrder("BUY", 1))
    assert session.ids() == ["4"] and session.errors() == [103]
    assert len(engine.fills) == 1
    other = FakeSession(client_id=6)
    engine.attach(other)
    place(engine, other, 2, spy_call(450, 1001), MarketOrder("BUY", 1))  # other client: ok
    assert other.errors() == [] and len(engine.fills) == 2


def test_modify_live_order_updates_and_fills_when_crossed(engine: OrderEngine,
                                                          session: FakeSession) -> None:
    place(engine, session, 3, spy_call(450, 1001), LimitOrder("BUY", 1, 4.0))
    session.clear()
    place(engine, session, 3, spy_call(450, 1001), LimitOrder("BUY", 3, 4.5))
    assert session.ids() == ["5", "3"] and session.errors() == []
    (order,) = engine.orders.values()
    assert order.request.total_quantity == 3 and order.request.lmt_price == 4.5
    assert order.remaining == 3
    session.clear()
    place(engine, session, 3, spy_call(450, 1001), LimitOrder("SELL", 3, 4.5))
    place(engine, session, 3, spy_call(450, 1001), Order(action="BUY", totalQuantity=3,
                                                        orderType="LMT"))
    assert session.errors() == [201, 201]
    assert order.status == "Submitted" and order.request.action == "BUY"
    place(engine, session, 3, spy_call(450, 1001), LimitOrder("BUY", 3, 5.25))
    assert order.status == "Filled" and engine.fills[0].shares == 3
    assert engine.fills[0].price == 5.2


# ------------------------------------------------------------------ positions / account


def test_positions_avg_cost_and_realized_pnl(engine: OrderEngine, session: FakeSession,
                                             market: FakeMarket) -> None:
    market.quotes[1001] = (1.25, 1.30)
    place(engine, session, 1, spy_call(450, 1001), MarketOrder("BUY", 2))
    pos = engine.positions[("DU111", 1001)]
    assert pos.quantity == 2 and pos.avg_cost == pytest.approx(130.65)
    assert engine.fills[0].realized_pnl is None
    market.quotes[1001] = (1.80, 1.85)
    place(engine, session, 2, spy_call(450, 1001), MarketOrder("SELL", 2))
    assert pos.quantity == 0
    assert engine.fills[1].realized_pnl == pytest.approx(2 * (180 - 130.65) - 1.3)
    report = session.of("59")[-1]
    assert float(report[5]) == pytest.approx(97.4)
    values = engine.account_values("DU111")
    assert float(values["RealizedPnL"]) == pytest.approx(97.4)
    assert float(values["TotalCashValue"]) == pytest.approx(1_000_000 - 261.3 + 360 - 1.3)


def test_account_values_move_with_fills(engine: OrderEngine, session: FakeSession) -> None:
    before = {k: float(v) for k, v in engine.account_values("DU111").items()}
    place(engine, session, 1, spy_call(450, 1001), MarketOrder("BUY", 10))
    after = {k: float(v) for k, v in engine.account_values("DU111").items()}
    assert after["TotalCashValue"] == pytest.approx(before["TotalCashValue"] - 5200 - 6.5)
    assert after["GrossPositionValue"] == pytest.approx(5100)  # 10 × mid 5.1 × 100
    assert after["NetLiquidation"] == pytest.approx(before["NetLiquidation"] - 106.5)
    assert after["UnrealizedPnL"] == pytest.approx(5100 - 5206.5)
    assert after["BuyingPower"] == pytest.approx(4 * after["AvailableFunds"])
    assert after["AvailableFunds"] < before["AvailableFunds"]


def test_short_option_needs_margin(engine: OrderEngine, session: FakeSession) -> None:
    place(engine, session, 1, spy_call(460, 1002), MarketOrder("SELL", 1))
    values = {k: float(v) for k, v in engine.account_values("DU111").items()}
    assert values["InitMarginReq"] > 0 and values["MaintMarginReq"] > 0


def test_account_updates_subscription_and_pushes(engine: OrderEngine,
                                                 session: FakeSession) -> None:
    call(engine, session, 6, 2, 1, "DU111")
    ids = session.ids()
    assert ids[-2:] == ["8", "54"] and set(ids[:-2]) == {"6"}
    tags = {(m[2], m[4]) for m in session.of("6")}
    for tag in ("NetLiquidation", "TotalCashValue", "CashBalance", "EquityWithLoanValue",
                "BuyingPower", "AvailableFunds", "ExcessLiquidity", "InitMarginReq",
                "MaintMarginReq", "GrossPositionValue", "UnrealizedPnL", "RealizedPnL"):
        assert (tag, "USD") in tags
    assert ("CashBalance", "BASE") in tags and ("DayTradesRemaining", "") in tags
    session.clear()
    place(engine, session, 1, spy_call(450, 1001), MarketOrder("BUY", 1))
    portfolio = session.of("7")
    assert portfolio and portfolio[-1][2] == "1001" and portfolio[-1][13] == "1"
    assert float(portfolio[-1][16]) == pytest.approx(521.0)  # avgCost incl. min commission
    assert session.of("6")  # account values pushed after the fill
    session.clear()
    call(engine, session, 6, 2, 0, "DU111")
    place(engine, session, 2, spy_call(450, 1001), MarketOrder("BUY", 1))
    assert not session.of("7") and not session.of("6")


def test_positions_subscription(engine: OrderEngine, session: FakeSession) -> None:
    engine.inject_position("DU222", 756733, 100, 450.0)
    call(engine, session, 61, 1)
    assert session.ids() == ["61", "62"]
    assert session.sent[0][2:4] == ["DU222", "756733"] and session.sent[0][14] == "100"
    session.clear()
    place(engine, session, 1, spy_call(450, 1001), MarketOrder("BUY", 1))
    assert session.of("61")[-1][3] == "1001"
    call(engine, session, 64, 1)
    session.clear()
    place(engine, session, 2, spy_call(450, 1001), MarketOrder("BUY", 1))
    assert not session.of("61")


def test_account_updates_multi_and_summary(engine: OrderEngine, session: FakeSession) -> None:
    call(engine, session, 76, 1, 9, "DU222", "", 1)
    assert session.ids()[-1] == "74" and session.sent[-1][2] == "9"
    assert all(m[3] == "DU222" for m in session.of("73"))
    session.clear()
    call(engine, session, 62, 1, 4, "All", "NetLiquidation,BuyingPower,AccountType")
    rows = session.of("63")
    assert {(r[3], r[4]) for r in rows} >= {("DU111", "NetLiquidation"),
                                              ("DU222", "BuyingPower"),
                                              ("DU111", "AccountType")}
    assert session.ids()[-1] == "64"


# ------------------------------------------------------------------ state & queries


def test_state_survives_detach_and_fills_are_replayed(engine: OrderEngine,
                                                      session: FakeSession,
                                                      market: FakeMarket) -> None:
    place(engine, session, 1, spy_call(450, 1001), LimitOrder("BUY", 1, 5.0))
    place(engine, session, 2, spy_call(460, 1002), LimitOrder("BUY", 1, 1.0))
    engine.detach(session)
    session.clear()
    market.quotes[1001] = (4.8, 4.9)
    engine.on_prices()  # order 1 fills while nobody of client 5 is attached
    assert session.sent == [] and len(engine.fills) == 1
    again = FakeSession(client_id=5)
    engine.attach(again)
    assert engine.next_order_id(5) == 3
    call(engine, again, 5, 1)
    assert again.ids() == ["5", "3", "53"] and again.sent[0][1] == "2"
    again.clear()
    call(engine, again, 99, 0)
    assert again.ids() == ["101", "102"] and "Filled" in again.sent[0]
    again.clear()
    call(engine, again, 7, 3, 42, 0, "", "", "", "", "", "")
    assert again.ids() == ["11", "59", "55"] and again.sent[0][1] == "42"
    assert again.sent[1][2] == again.sent[0][EXEC_ID]


def test_all_open_orders_span_clients(engine: OrderEngine, session: FakeSession) -> None:
    other = FakeSession(client_id=6)
    engine.attach(other)
    place(engine, session, 1, spy_call(450, 1001), LimitOrder("BUY", 1, 1.0))
    place(engine, other, 1, spy_call(450, 1001), LimitOrder("BUY", 1, 1.0))
    session.clear()
    call(engine, session, 5, 1)
    assert session.ids() == ["5", "3", "53"]
    session.clear()
    call(engine, session, 16, 1)
    assert session.ids() == ["5", "3", "5", "3", "53"]
    call(engine, session, 58, 1)  # global cancel reaches both clients
    assert all(o.status == "Cancelled" for o in engine.orders.values())
    assert other.errors() == [202]


def test_exec_filter(engine: OrderEngine, session: FakeSession) -> None:
    other = FakeSession(client_id=6)
    engine.attach(other)
    place(engine, session, 1, spy_call(450, 1001), MarketOrder("BUY", 1))
    place(engine, other, 1, Stock("SPY", "SMART", "USD"), MarketOrder("SELL", 10))

    def execs(*flt: Any) -> list[str]:
        session.clear()
        call(engine, session, 7, 3, 1, *flt)
        return [m[SEC_TYPE] for m in session.of("11")]

    assert execs(0, "", "", "", "", "", "") == ["OPT", "STK"]
    assert execs(6, "", "", "", "", "", "") == ["STK"]
    assert execs(0, "", "", "", "OPT", "", "") == ["OPT"]
    assert execs(0, "", "", "", "", "", "SELL") == ["STK"]
    assert execs(0, "DU222", "", "", "", "", "") == []
    assert execs(0, "", "", "QQQ", "", "", "") == []
    assert execs(0, "", "20261118 11:00:00", "", "", "", "") == ["OPT", "STK"]
    assert execs(0, "", "20261118-11:30:00", "", "", "", "") == []


def test_what_if_reports_margin_without_placing(engine: OrderEngine,
                                                session: FakeSession) -> None:
    place(engine, session, 50, spy_call(460, 1002), Order(
        action="SELL", totalQuantity=1, orderType="MKT", whatIf=True))
    assert session.ids() == ["5"] and engine.orders == {} and engine.fills == []
    engine.market_open = False
    session.clear()
    place(engine, session, 51, spy_call(460, 1002), Order(
        action="SELL", totalQuantity=1, orderType="MKT", whatIf=True))
    assert session.errors() == [201] and engine.orders == {}


# ------------------------------------------------------------------ end to end


def test_engine_messages_drive_an_ib_insync_trade_to_filled(engine: OrderEngine,
                                                            market: FakeMarket) -> None:
    ib = IB()
    wrapper = ib.wrapper
    decoder = Decoder(wrapper, 176)
    session = FakeSession(client_id=5)
    engine.attach(session)
    fills: list[Any] = []
    reports: list[Any] = []
    ib.execDetailsEvent += lambda trade, fill: fills.append(fill)
    ib.commissionReportEvent += lambda trade, fill, report: reports.append(report)
    call(engine, session, 61, 1)
    place(engine, session, 7, bull_call(), LimitOrder("BUY", 1, 3.0, orderRef="e2e"))
    market.quotes[1002] = (2.3, 2.4)
    engine.on_prices()
    for msg in session.sent:
        decoder.interpret(msg)
    trade = wrapper.trades[(5, 7)]
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.avgFillPrice == 2.9
    assert trade.order.orderRef == "e2e" and trade.order.permId > 1_000_000_000
    assert [f.contract.secType for f in trade.fills] == ["BAG", "OPT", "OPT"]
    assert [f.execution.side for f in trade.fills] == ["BOT", "BOT", "SLD"]
    assert sum(f.commissionReport.commission for f in trade.fills) == pytest.approx(1.3)
    assert len(fills) == 3 and len(reports) == 3
    assert wrapper.positions["DU111"][1001].position == 1
    assert wrapper.positions["DU111"][1002].position == -1


def test_reconnected_ib_insync_sees_missed_fill_via_req_executions(
        engine: OrderEngine, session: FakeSession, market: FakeMarket) -> None:
    place(engine, session, 1, spy_call(450, 1001), LimitOrder("BUY", 1, 5.0))
    engine.detach(session)
    market.quotes[1001] = (4.8, 4.9)
    engine.on_prices()
    ib = IB()
    decoder = Decoder(ib.wrapper, 176)
    again = FakeSession(client_id=5)
    engine.attach(again)
    ib.wrapper.startReq(77)
    call(engine, again, 7, 3, 77, 0, "", "", "", "", "", "")
    for msg in again.sent:
        decoder.interpret(msg)
    (fill,) = ib.wrapper.fills.values()
    assert fill.execution.price == 4.9 and fill.commissionReport.commission == 1.0


def test_ib_insync_startup_requests_all_complete(engine: OrderEngine,
                                                 market: FakeMarket) -> None:
    """The requests IB.connectAsync makes (positions, open/completed orders, account
    updates, multi updates, executions) are all answered with their end messages."""
    first = FakeSession(client_id=5)
    engine.attach(first)
    place(engine, first, 1, spy_call(450, 1001), MarketOrder("BUY", 2))
    place(engine, first, 2, spy_call(460, 1002), LimitOrder("BUY", 1, 1.0))
    engine.detach(first)
    ib = IB()
    w = ib.wrapper
    w.clientId = 5
    decoder = Decoder(w, 176)
    s = FakeSession(client_id=5)
    engine.attach(s)
    futures = [w.startReq("positions"), w.startReq("openOrders"),
               w.startReq("completedOrders"), w.startReq("accountValues"),
               w.startReq(3), w.startReq(4), w.startReq(8)]
    call(engine, s, 61, 1)
    call(engine, s, 5, 1)
    call(engine, s, 99, 0)
    call(engine, s, 6, 2, 1, "DU111")
    call(engine, s, 76, 1, 3, "DU111", "", 0)
    call(engine, s, 76, 1, 4, "DU222", "", 0)
    call(engine, s, 7, 3, 8, 0, "", "", "", "", "", "")
    for msg in s.sent:
        decoder.interpret(msg)
    assert all(f.done() for f in futures)
    positions, open_trades, completed = (f.result() for f in futures[:3])
    assert [(p.contract.conId, p.position) for p in positions] == [(1001, 2)]
    assert [t.order.orderId for t in open_trades] == [2]
    assert open_trades[0].orderStatus.status == "Submitted"
    assert [t.orderStatus.status for t in completed] == ["Filled"]
    assert [f.execution.orderId for f in futures[6].result()] == [1]
    assert w.portfolio["DU111"][1001].position == 2
    tags = {(v.account, v.tag) for v in w.accountValues.values()}
    assert ("DU111", "NetLiquidation") in tags and ("DU222", "NetLiquidation") in tags


def test_what_if_answer_completes_ib_insync_what_if_request(engine: OrderEngine) -> None:
    ib = IB()
    decoder = Decoder(ib.wrapper, 176)
    s = FakeSession(client_id=5)
    engine.attach(s)
    future = ib.wrapper.startReq(50)
    place(engine, s, 50, spy_call(460, 1002), Order(
        action="SELL", totalQuantity=2, orderType="MKT", whatIf=True))
    for msg in s.sent:
        decoder.interpret(msg)
    state = future.result()
    # short call: premium (2 × mid 2.05 × 100) + 20% of the underlying (455 × 100 × 2)
    assert float(state.initMarginChange) == pytest.approx(410 + 0.2 * 455 * 200)
    assert float(state.initMarginBefore) == 0.0
    assert state.commission == pytest.approx(1.3) and state.commissionCurrency == "USD"
    assert engine.orders == {} and engine.positions == {}
    assert float(engine.account_values("DU111")["TotalCashValue"]) == 1_000_000


def test_multi_updates_for_all_accounts_are_pushed_after_fills(engine: OrderEngine,
                                                               session: FakeSession) -> None:
    call(engine, session, 76, 1, 9, "All", "", 1)
    assert {m[3] for m in session.of("73")} == {"DU111", "DU222"}
    session.clear()
    place(engine, session, 1, spy_call(450, 1001), MarketOrder("BUY", 1))
    assert {m[3] for m in session.of("73")} == {"DU111"}
    engine.detach(session)
    session.clear()
    engine.attach(session)
    place(engine, session, 2, spy_call(450, 1001), MarketOrder("BUY", 1))
    assert not session.of("73")  # the subscription died with the detach


def test_inject_position_validates_and_pushes(engine: OrderEngine,
                                              session: FakeSession) -> None:
    call(engine, session, 61, 1)
    session.clear()
    engine.inject_position("DU111", 1001, -3, 250.0)
    assert session.of("61")[0][14:] == ["-3", "250.0"]
    with pytest.raises(ValueError, match="con_id"):
        engine.inject_position("DU111", 9999, 1, 1.0)
    with pytest.raises(ValueError, match="account"):
        engine.inject_position("XX", 1001, 1, 1.0)


def test_executions_of_today_are_the_new_york_trading_day(market: FakeMarket) -> None:
    """A fill at 18:30 New York (23:30 UTC) is still "today" at 19:30 New York, when the UTC
    date has already turned; the next New York day it is not."""
    clock = FixedClock.new_york(date(2026, 12, 2), time(18, 30))
    engine = OrderEngine(market, ["DU111"], clock=clock)
    session = FakeSession(client_id=5)
    engine.attach(session)
    place(engine, session, 1, spy_call(450, 1001), MarketOrder("BUY", 1))

    def executions() -> list[list[str]]:
        session.clear()
        call(engine, session, 7, 3, 77, 0, "", "", "", "", "", "")
        return session.of("11")

    assert len(executions()) == 1
    clock.advance(timedelta(hours=1))  # 19:30 New York, 00:30 UTC on 12-03
    assert clock.now().date() == date(2026, 12, 3)
    assert len(executions()) == 1
    clock.set(ny_datetime(date(2026, 12, 3), time(9, 30)))
    assert executions() == []
