"""order_codec against ib_insync 0.9.86 or ib_async 2.x (whichever this environment holds).

placeOrder: real ib_insync Contract/Order objects go through ``Client.placeOrder`` with the
socket replaced by a capture; our decoder must recover every field. Encoders: our fields go
through the library's own ``Decoder.interpret`` into a real ``Wrapper`` and must come out as
the right Trade / Fill / CommissionReport / Position / PortfolioItem / AccountValue.
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType
from typing import Any

import pytest

from src.brokers import compat
from src.brokers.compat import (
    Bag,
    Client,
    ComboLeg,
    Contract,
    LimitOrder,
    MarketOrder,
    Option,
    Order,
    OrderComboLeg,
    PriceCondition,
    Stock,
    TagValue,
)
from src.simulator import order_codec as codec
from src.simulator.types import ComboLegSpec, OrderRequest, SimContract, SimFill, SimOrder

VERSIONS = [157, 158, 163, 166, 170, 176]


def capture_place_order(contract: Contract, order: Order, version: int, order_id: int = 7,
                        lib: str = compat.LIBRARY) -> list[str]:
    """The placeOrder fields (after msg id 3) the library's own Client encoder sends."""
    assert lib == compat.LIBRARY  # one library per environment (they share eventkit)
    client = Client(wrapper=None)
    client._serverVersion = version
    client.connState = Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append
    client.placeOrder(order_id, contract, order)
    assert len(sent) == 1
    fields = sent[0].split("\0")
    assert fields[-1] == "" and fields[0] == "3"
    return fields[1:-1]


CLIENTS = [compat.LIBRARY]  # the library of this environment


def aapl() -> Stock:
    return Stock("AAPL", "SMART", "USD", conId=265598, primaryExchange="NASDAQ")


def spy_call(strike: float, con_id: int) -> Option:
    return Option("SPY", "20261218", strike, "C", "SMART", "100", "USD", conId=con_id,
                  localSymbol=f"SPY   261218C00{int(strike)}000", tradingClass="SPY")


def bull_call() -> Bag:
    return Bag(symbol="SPY", exchange="SMART", currency="USD", comboLegs=[
        ComboLeg(conId=1001, ratio=1, action="BUY", exchange="SMART"),
        ComboLeg(conId=1002, ratio=2, action="SELL", exchange="CBOE", openClose=1)])


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lib", CLIENTS)
def test_stock_market_order_round_trips(version: int, lib: str) -> None:
    order = MarketOrder("BUY", 100, account="DU123", orderRef="ref-1", tif="DAY")
    fields = capture_place_order(aapl(), order, version, lib=lib)
    req = codec.decode_place_order(fields, version)
    assert (req.order_id, req.action, req.total_quantity, req.order_type) == \
        (7, "BUY", 100.0, "MKT")
    assert req.lmt_price is None and req.aux_price is None
    assert (req.tif, req.account, req.order_ref, req.transmit) == ("DAY", "DU123", "ref-1", True)
    c = req.contract
    assert (c.con_id, c.symbol, c.sec_type, c.exchange, c.primary_exchange, c.currency) == \
        (265598, "AAPL", "STK", "SMART", "NASDAQ", "USD")
    assert c.combo_legs == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lib", CLIENTS)
def test_option_limit_order_round_trips(version: int, lib: str) -> None:
    order = LimitOrder("SELL", 3, 2.45, tif="GTC", outsideRth=True, transmit=False,
                       parentId=5, ocaGroup="oca1")
    fields = capture_place_order(spy_call(450, 1001), order, version, lib=lib)
    req = codec.decode_place_order(fields, version)
    assert (req.action, req.total_quantity, req.order_type, req.lmt_price) == \
        ("SELL", 3.0, "LMT", 2.45)
    assert (req.tif, req.outside_rth, req.transmit, req.parent_id, req.oca_group) == \
        ("GTC", True, False, 5, "oca1")
    c = req.contract
    assert (c.con_id, c.sec_type, c.last_trade_date, c.strike, c.right, c.multiplier) == \
        (1001, "OPT", "20261218", 450.0, "C", "100")
    assert (c.local_symbol, c.trading_class) == ("SPY   261218C00450000", "SPY")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lib", CLIENTS)
def test_bag_order_with_legs_prices_and_routing_round_trips(version: int, lib: str) -> None:
    order = LimitOrder("BUY", 2, 1.25, orderRef="spread-9", account="DU999")
    order.orderComboLegs = [OrderComboLeg(price=3.1), OrderComboLeg()]
    order.smartComboRoutingParams = [TagValue("NonGuaranteed", "1")]
    fields = capture_place_order(bull_call(), order, version, lib=lib)
    req = codec.decode_place_order(fields, version)
    assert req.contract.sec_type == "BAG" and req.contract.symbol == "SPY"
    assert req.contract.combo_legs == [
        ComboLegSpec(1001, 1, "BUY", "SMART", 0, 0, "", -1),
        ComboLegSpec(1002, 2, "SELL", "CBOE", 1, 0, "", -1)]
    assert req.order_combo_leg_prices == [3.1, None]
    assert req.smart_combo_routing_params == [("NonGuaranteed", "1")]
    assert (req.order_ref, req.account, req.lmt_price, req.total_quantity) == \
        ("spread-9", "DU999", 1.25, 2.0)


@pytest.mark.parametrize("version", [163, 176])
@pytest.mark.parametrize("lib", CLIENTS)
def test_optional_blocks_are_skipped_exactly(version: int, lib: str) -> None:
    order = LimitOrder("BUY", 1, 10.0, algoStrategy="Adaptive",
                       algoParams=[TagValue("adaptivePriority", "Normal")],
                       hedgeType="D", hedgeParam="0.5", whatIf=True)
    order.conditions = [PriceCondition(price=400.0, conId=265598, exch="SMART")]
    order.deltaNeutralOrderType = "MKT"
    order.scalePriceIncrement = 0.05
    fields = capture_place_order(aapl(), order, version, lib=lib)
    req = codec.decode_place_order(fields, version)
    assert req.what_if and req.lmt_price == 10.0


def test_peg_mid_tail_for_170_plus() -> None:
    order = Order(action="BUY", totalQuantity=1, orderType="PEG MID", lmtPrice=1.0,
                  midOffsetAtWhole=0.01, midOffsetAtHalf=0.005)
    fields = capture_place_order(aapl(), order, 176)
    assert codec.decode_place_order(fields, 176).order_type == "PEG MID"
    order = Order(action="BUY", totalQuantity=1, orderType="PEG BEST", lmtPrice=1.0,
                  competeAgainstBestOffset=math.inf)
    fields = capture_place_order(aapl(), order, 176)
    assert codec.decode_place_order(fields, 176).order_type == "PEG BEST"


def test_bad_messages_raise_value_error_naming_the_field() -> None:
    fields = capture_place_order(aapl(), MarketOrder("BUY", 1), 176)
    with pytest.raises(ValueError, match="trailing"):
        codec.decode_place_order([*fields, "x"], 176)
    with pytest.raises(ValueError, match="ended before"):
        codec.decode_place_order(fields[:-3], 176)
    bad = list(fields)
    bad[0] = "seven"
    with pytest.raises(ValueError, match="orderId"):
        codec.decode_place_order(bad, 176)
    with pytest.raises(ValueError, match="server_version"):
        codec.decode_place_order(fields, 100)


# ------------------------------------------------------------------ encoders → library

LIBS = [compat.LIBRARY]


class Lib:
    """A real IB() of the library, its Wrapper and a Decoder at ``version``."""

    def __init__(self, name: str, version: int) -> None:
        self.mod: ModuleType = importlib.import_module(name)
        decoder_mod = importlib.import_module(f"{name}.decoder")
        self.ib: Any = self.mod.IB()
        self.wrapper: Any = self.ib.wrapper
        self.wrapper.clientId = 5
        self.decoder: Any = decoder_mod.Decoder(self.wrapper, version)
        self.errors: list[Exception] = []

    def feed(self, fields: list[codec.Field]) -> None:
        self.decoder.interpret(list(codec.iter_fields(fields)))


@pytest.fixture(autouse=True)
def _fail_on_decoder_errors(caplog: pytest.LogCaptureFixture) -> Any:
    yield
    bad = [r for r in caplog.get_records("call")
           if r.name.endswith("Decoder") and r.levelname == "ERROR"]
    assert not bad, bad[0].getMessage()


def sim_option(con_id: int, strike: float) -> SimContract:
    return SimContract(con_id=con_id, symbol="SPY", sec_type="OPT", last_trade_date="20261218",
                       strike=strike, right="C", multiplier="100",
                       local_symbol=f"SPY   261218C00{int(strike)}000", trading_class="SPY")


def sim_bag() -> SimContract:
    return SimContract(con_id=28812380, symbol="SPY", sec_type="BAG",
                       combo_legs=[ComboLegSpec(1001, 1, "BUY"), ComboLegSpec(1002, 1, "SELL")],
                       combo_legs_descrip="1001|1,1002|1")


def sim_order(contract: SimContract, status: str = "Submitted", **kw: Any) -> SimOrder:
    req = OrderRequest(order_id=11, contract=contract, action="BUY", total_quantity=2,
                       order_type="LMT", lmt_price=1.35, order_ref="bull-1", account="DU1",
                       client_id=5, **kw)
    return SimOrder(request=req, perm_id=1380000001, client_id=5, status=status, remaining=2)


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("version", [163, 176])
def test_open_order_and_status_build_the_trade(lib: str, version: int) -> None:
    L = Lib(lib, version)
    order = sim_order(sim_bag(), order_combo_leg_prices=[None, 0.5],
                      smart_combo_routing_params=[("NonGuaranteed", "1")])
    L.feed(codec.encode_open_order(order, version))
    L.feed(codec.encode_order_status(order))
    trade = L.wrapper.trades[(5, 11)]
    assert trade.order.permId == 1380000001 and trade.order.orderRef == "bull-1"
    assert trade.order.lmtPrice == 1.35 and trade.order.totalQuantity == 2
    assert trade.order.account == "DU1" and trade.order.action == "BUY"
    assert [leg.conId for leg in trade.contract.comboLegs] == [1001, 1002]
    assert [leg.action for leg in trade.contract.comboLegs] == ["BUY", "SELL"]
    assert trade.contract.secType == "BAG" and trade.contract.conId == 28812380
    assert trade.order.smartComboRoutingParams[0].tag == "NonGuaranteed"
    assert trade.order.orderComboLegs[1].price == 0.5
    assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 2


@pytest.mark.parametrize("lib", LIBS)
def test_fill_sequence_builds_fill_and_commission_report(lib: str) -> None:
    L = Lib(lib, 176)
    order = sim_order(sim_option(1001, 450))
    L.feed(codec.encode_open_order(order, 176))
    fill = SimFill(exec_id="0000e0d5.1.01.01", order_id=11, perm_id=1380000001, client_id=5,
                   contract=sim_option(1001, 450), side="BOT", shares=2, price=1.3,
                   time="20261121  14:30:05", account="DU1", cum_qty=2, avg_price=1.3,
                   order_ref="bull-1", commission=1.3, realized_pnl=None)
    L.feed(codec.encode_exec_details(-1, fill))
    order.status, order.filled, order.remaining, order.avg_fill_price = "Filled", 2, 0, 1.3
    L.feed(codec.encode_order_status(order))
    L.feed(codec.encode_open_order(order, 176))
    L.feed(codec.encode_commission_report(fill))
    trade = L.wrapper.trades[(5, 11)]
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.avgFillPrice == 1.3
    assert len(trade.fills) == 1
    f = trade.fills[0]
    assert (f.execution.execId, f.execution.side, f.execution.shares, f.execution.price) == \
        ("0000e0d5.1.01.01", "BOT", 2, 1.3)
    assert f.execution.time.isoformat() == "2026-11-21T14:30:05+00:00"
    assert f.contract.conId == 1001 and f.contract.right == "C"
    assert f.commissionReport.commission == 1.3 and f.commissionReport.currency == "USD"
    assert f.commissionReport.realizedPNL == 0.0  # UNSET → 0 in the library
    fill.realized_pnl = -12.5
    fill.exec_id = "0000e0d5.1.01.02"
    L.feed(codec.encode_exec_details(-1, fill))
    L.feed(codec.encode_commission_report(fill))
    assert trade.fills[1].commissionReport.realizedPNL == -12.5


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("version", [163, 176])
def test_completed_order_builds_trade(lib: str, version: int) -> None:
    L = Lib(lib, version)
    order = sim_order(sim_bag(), status="Filled")
    order.filled, order.remaining = 2, 0
    order.completed_time, order.completed_status = "20261121 14:30:05 UTC", "Filled"
    L.wrapper.startReq("completedOrders")
    L.feed(codec.encode_completed_order(order, version))
    L.feed(codec.encode_completed_orders_end())
    trade = L.wrapper.trades[1380000001]
    assert trade.orderStatus.status == "Filled" and trade.order.orderRef == "bull-1"
    assert trade.order.filledQuantity == 2 and len(trade.contract.comboLegs) == 2
    assert "completedOrders" not in L.wrapper._futures  # end message closed the request


@pytest.mark.parametrize("lib", LIBS)
def test_account_messages_build_positions_portfolio_and_values(lib: str) -> None:
    L = Lib(lib, 176)
    c = sim_option(1001, 450)
    L.feed(codec.encode_position("DU1", c, 3, 130.65))
    L.feed(codec.encode_position_end())
    pos = L.wrapper.positions["DU1"][1001]
    assert (pos.position, pos.avgCost, pos.contract.secType) == (3, 130.65, "OPT")
    L.feed(codec.encode_portfolio(c, 3, 1.45, 435.0, 130.65, 43.05, 0.0, "DU1"))
    item = L.wrapper.portfolio["DU1"][1001]
    assert (item.marketPrice, item.marketValue, item.unrealizedPNL) == (1.45, 435.0, 43.05)
    L.feed(codec.encode_account_value("NetLiquidation", "1000043.05", "USD", "DU1"))
    L.feed(codec.encode_account_time("14:30"))
    L.feed(codec.encode_account_download_end("DU1"))
    L.feed(codec.encode_account_update_multi(4, "DU1", "", "BuyingPower", "4000000.00", "USD"))
    L.feed(codec.encode_account_update_multi_end(4))
    values = {(v.tag, v.currency): v.value for v in L.wrapper.accountValues.values()}
    assert values[("NetLiquidation", "USD")] == "1000043.05"
    assert values[("BuyingPower", "USD")] == "4000000.00"
    L.feed(codec.encode_account_summary(3, "DU1", "TotalCashValue", "99.00", "USD"))
    L.feed(codec.encode_account_summary_end(3))
    assert L.wrapper.acctSummary[("DU1", "TotalCashValue", "USD")].value == "99.00"


@pytest.mark.parametrize("lib", LIBS)
def test_end_messages_finish_requests(lib: str) -> None:
    L = Lib(lib, 176)
    futures = {"openOrders": L.wrapper.startReq("openOrders"),
               9: L.wrapper.startReq(9), "positions": L.wrapper.startReq("positions")}
    L.feed(codec.encode_open_order_end())
    L.feed(codec.encode_exec_details_end(9))
    L.feed(codec.encode_position_end())
    assert all(f.done() for f in futures.values())


def test_wire_text_follows_the_seam_rule() -> None:
    assert list(codec.iter_fields([None, True, False, 3, 1.5, "x", 150.0])) == \
        ["", "1", "0", "3", "1.5", "x", "150.0"]
