"""Orders end to end through the real client library: MKT, LMT rest-then-fill, cancel,
modify, BAG combo, executions + commission reports, positions and account values, and state
surviving client reconnects and gateway restarts."""

from __future__ import annotations

from typing import Any

import pytest
from sim_support import ACCOUNT, Client, market_steps

from src.simulator import SimulatedGateway

pytestmark = pytest.mark.integration

DISCONNECT_LOGS = ("Peer closed connection", "Connection reset by peer", "Socket disconnect")


def _aapl(c: Client) -> Any:
    stock = c.mod.Stock("AAPL", "SMART", "USD")
    c(lambda ib: ib.qualifyContracts(stock))
    return stock


def _done(trade: Any) -> Any:
    return lambda ib: trade.isDone()


def _status(trade: Any, *statuses: str) -> Any:
    return lambda ib: trade.orderStatus.status in statuses


def test_market_order_fills_with_execution_commission_position_account(
        client: Client, gateway: SimulatedGateway) -> None:
    stock = _aapl(client)
    cash_before = float(next(v.value for v in client(lambda ib: ib.accountValues())
                             if v.tag == "TotalCashValue" and v.currency == "USD"))
    trade = client(lambda ib: ib.placeOrder(stock, client.mod.MarketOrder("BUY", 10)))
    assert client.wait(_done(trade))
    assert trade.orderStatus.status == "Filled" and trade.orderStatus.filled == 10
    assert client.wait(lambda ib: trade.fills and trade.fills[0].commissionReport.commission)
    fill = trade.fills[0]
    assert fill.execution.side == "BOT" and fill.execution.shares == 10
    assert fill.execution.price == pytest.approx(gateway.market.quote(265598)[1], abs=2.0)
    assert fill.commissionReport.commission > 0
    assert fill.commissionReport.execId == fill.execution.execId
    assert client.wait(lambda ib: any(p.contract.conId == 265598 and p.position == 10
                                      for p in ib.positions()))
    assert client.wait(lambda ib: any(p.contract.conId == 265598 for p in ib.portfolio()))
    assert client.wait(lambda ib: any(
        v.tag == "TotalCashValue" and v.currency == "USD" and float(v.value) < cash_before
        for v in ib.accountValues()))
    assert gateway.call(lambda: gateway.engine.positions[(ACCOUNT, 265598)].quantity) == 10


def test_limit_order_rests_then_fills_when_crossed(client: Client,
                                                   gateway: SimulatedGateway) -> None:
    stock = _aapl(client)
    bid, ask, _ = gateway.call(gateway.market.quote, 265598)
    limit = round(bid - 5.0, 2)
    trade = client(lambda ib: ib.placeOrder(stock, client.mod.LimitOrder("BUY", 5, limit)))
    assert client.wait(_status(trade, "Submitted"))
    market_steps(gateway, 3)  # three fill checks at the gateway: still resting
    client(lambda ib: ib.reqCurrentTime())  # round trip: any (wrong) fill would be in
    assert trade.orderStatus.status == "Submitted" and not trade.fills
    gateway.set_price("AAPL", limit - 3.0)  # the ask drops through the limit
    assert client.wait(_done(trade))
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice <= limit


@pytest.mark.expected_ib_errors(202)  # ib_async logs "Order Canceled" (202) as an error
def test_cancel_resting_order(client: Client, gateway: SimulatedGateway) -> None:
    stock = _aapl(client)
    trade = client(lambda ib: ib.placeOrder(stock, client.mod.LimitOrder("BUY", 1, 50.0)))
    assert client.wait(_status(trade, "Submitted"))
    client(lambda ib: ib.cancelOrder(trade.order))
    assert client.wait(_status(trade, "Cancelled"))
    assert client(lambda ib: ib.reqOpenOrders()) == []


def test_modify_resting_order(client: Client, gateway: SimulatedGateway) -> None:
    stock = _aapl(client)
    trade = client(lambda ib: ib.placeOrder(stock, client.mod.LimitOrder("BUY", 2, 50.0)))
    assert client.wait(_status(trade, "Submitted"))
    trade.order.lmtPrice = 60.0
    trade.order.totalQuantity = 3
    client(lambda ib: ib.placeOrder(stock, trade.order))
    assert client.wait(lambda ib: any(t.order.lmtPrice == 60.0 and t.order.totalQuantity == 3
                                      for t in ib.reqOpenOrders()))
    orders = gateway.call(lambda: [o for o in gateway.engine.orders.values()
                                   if o.request.order_id == trade.order.orderId])
    assert len(orders) == 1 and orders[0].request.lmt_price == 60.0
    assert trade.orderStatus.status == "Submitted"


def test_bag_combo_of_two_aapl_options(client: Client, gateway: SimulatedGateway) -> None:
    mod = client.mod
    chain = gateway.market.chain("AAPL")
    assert chain is not None
    exp, k = chain.expirations[3], chain.strikes[len(chain.strikes) // 2]
    long_leg = mod.Option("AAPL", exp, k, "C", "SMART")
    short_leg = mod.Option("AAPL", exp, k + 10, "C", "SMART")
    client(lambda ib: ib.qualifyContracts(long_leg, short_leg))
    bag = mod.Contract(symbol="AAPL", secType="BAG", exchange="SMART", currency="USD",
                       comboLegs=[mod.ComboLeg(conId=long_leg.conId, ratio=1, action="BUY",
                                               exchange="SMART"),
                                  mod.ComboLeg(conId=short_leg.conId, ratio=1, action="SELL",
                                               exchange="SMART")])
    trade = client(lambda ib: ib.placeOrder(bag, mod.MarketOrder("BUY", 2)))
    assert client.wait(_done(trade))
    assert trade.orderStatus.status == "Filled"
    assert client.wait(lambda ib: len(trade.fills) == 3)  # combo + 2 legs
    legs = {f.contract.conId: f.execution.side for f in trade.fills if f.contract.secType == "OPT"}
    assert legs == {long_leg.conId: "BOT", short_leg.conId: "SLD"}
    assert client.wait(lambda ib: {(p.contract.conId, p.position) for p in ib.positions()}
                       >= {(long_leg.conId, 2.0), (short_leg.conId, -2.0)})


@pytest.mark.expected_ib_errors(201)
def test_market_closed_rejects_with_201(client: Client, gateway: SimulatedGateway) -> None:
    stock = _aapl(client)
    gateway.call(setattr, gateway.engine, "market_open", False)
    errors: list[int] = []
    client(lambda ib: ib.errorEvent.connect(lambda req, code, *rest: errors.append(code)))
    trade = client(lambda ib: ib.placeOrder(stock, client.mod.MarketOrder("BUY", 1)))
    assert client.wait(lambda ib: 201 in errors)
    assert client.wait(_status(trade, "Inactive", "Cancelled"))
    client(lambda ib: ib.reqCurrentTime())  # round trip: a (wrong) fill would have arrived
    assert not trade.fills


@pytest.mark.expected_ib_errors(103)
def test_reusing_a_finished_order_id_is_103(client: Client, gateway: SimulatedGateway) -> None:
    stock = _aapl(client)
    trade = client(lambda ib: ib.placeOrder(stock, client.mod.MarketOrder("BUY", 1)))
    assert client.wait(_done(trade))
    errors: list[int] = []
    client(lambda ib: ib.errorEvent.connect(lambda req, code, *rest: errors.append(code)))
    client(lambda ib: ib.client.placeOrder(trade.order.orderId, stock,
                                           client.mod.MarketOrder("BUY", 1)))
    assert client.wait(lambda ib: 103 in errors)


def _resting_and_filled(client: Client) -> tuple[Any, Any]:
    stock = _aapl(client)
    filled = client(lambda ib: ib.placeOrder(stock, client.mod.MarketOrder("BUY", 4)))
    assert client.wait(_done(filled))
    resting = client(lambda ib: ib.placeOrder(stock, client.mod.LimitOrder("BUY", 1, 40.0)))
    assert client.wait(_status(resting, "Submitted"))
    return filled, resting


def _check_state_after_reconnect(client: Client, filled: Any, resting: Any) -> None:
    open_ids = {t.order.orderId for t in client(lambda ib: ib.openTrades())}
    assert resting.order.orderId in open_ids
    exec_ids = {f.execution.execId for f in client(lambda ib: ib.reqExecutions())}
    assert filled.fills[0].execution.execId in exec_ids
    assert any(p.contract.conId == 265598 and p.position == 4
               for p in client(lambda ib: ib.positions()))
    # order ids continue after the ones already used
    assert client(lambda ib: ib.client.getReqId()) > resting.order.orderId


def test_orders_and_executions_survive_client_reconnect(client: Client,
                                                        gateway: SimulatedGateway) -> None:
    filled, resting = _resting_and_filled(client)
    client(lambda ib: ib.disconnect())
    client.connect(1)
    _check_state_after_reconnect(client, filled, resting)


@pytest.mark.expected_ib_errors(*DISCONNECT_LOGS)
def test_orders_and_executions_survive_gateway_restart(client: Client,
                                                       gateway: SimulatedGateway) -> None:
    filled, resting = _resting_and_filled(client)
    gateway.kill()
    assert client.wait(lambda ib: not ib.isConnected())
    gateway.restart()
    client.connect(1)
    _check_state_after_reconnect(client, filled, resting)
