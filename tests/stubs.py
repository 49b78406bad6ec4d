"""The stub kit: named builders of ib_insync test doubles and data, shared by every test.

``mock_ib(...)`` returns a ``MagicMock(spec=IB)`` that behaves like a small gateway: real
eventkit ``Event``s for every IB event, ``*Async`` request methods as ``AsyncMock``s answering
from a tiny market (AAPL stock + an option chain), ``placeOrder`` building real ``Trade``s and
answering asynchronously on the loop (ack / reject / silent), ``cancelOrder`` firing the status
event synchronously (like ib_insync does). Data builders use REAL ib_insync classes so attribute
names are checked.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import clock_support

from src.brokers.compat import (
    IB,
    AccountValue,
    CommissionReport,
    Contract,
    ContractDetails,
    Event,
    Execution,
    Fill,
    OptionChain,
    OptionComputation,
    Order,
    OrderStatus,
    PortfolioItem,
    Position,
    Stock,
    Ticker,
    Trade,
)
from src.brokers.compat import Option as IBOption
from src.models.option import Option, OptionSpread

ACCOUNT = "DU12345"
AAPL_CON_ID = 265598
AAPL_PRICE = 150.25
STRIKES = (140.0, 145.0, 147.5, 150.0, 152.5, 155.0, 160.0, 165.0)


def expiry(days: int = 30) -> date:
    return clock_support.today() + timedelta(days=days)


def expiries(n: int = 5) -> list[str]:
    start = clock_support.today()
    return [(start + timedelta(days=7 * (i + 1))).strftime("%Y%m%d") for i in range(n)]


def option_con_id(exp: str, strike: float, right: str) -> int:
    """Deterministic conId of a listed AAPL option."""
    return 500_000_000 + int(exp[2:]) % 1_000_000 * 100 + int(strike * 2) * 2 + (right == "P")


# --- models --------------------------------------------------------------------------------


def aapl_option(option_type: str, strike: float, days: int = 30, **quote: float) -> Option:
    return Option(symbol=f"AAPL{strike:g}{option_type[0].upper()}", underlying="AAPL",
                  option_type=option_type, strike=strike, expiration=expiry(days), **quote)


def aapl_bull_call(days: int = 30) -> OptionSpread:
    """LONG leg the lower call (150), SHORT leg the higher call (155)."""
    return OptionSpread(symbol="AAPL", spread_type="BULL_CALL",
                        long_leg=aapl_option("call", 150.0, days, bid=5.2, ask=5.3),
                        short_leg=aapl_option("call", 155.0, days, bid=2.4, ask=2.5))


def aapl_bear_put(days: int = 30) -> OptionSpread:
    """LONG leg the higher put (155), SHORT leg the lower put (150)."""
    return OptionSpread(symbol="AAPL", spread_type="BEAR_PUT",
                        long_leg=aapl_option("put", 155.0, days, bid=6.1, ask=6.2),
                        short_leg=aapl_option("put", 150.0, days, bid=3.9, ask=4.0))


# --- ib_insync data ------------------------------------------------------------------------


def aapl_stock() -> Stock:
    c = Stock("AAPL", "SMART", "USD")
    c.conId = AAPL_CON_ID
    c.localSymbol = "AAPL"
    c.primaryExchange = "NASDAQ"
    return c


def make_ticker(contract: Contract, **fields: Any) -> Ticker:
    """A Ticker with ``fields`` set. Set after construction: ib_async's ``Ticker.__post_init__``
    resets every price and size to ``nan`` whatever the constructor was given (ib_insync keeps
    them); the wrapper fills tickers the same way, one attribute at a time."""
    ticker = Ticker(contract=contract)
    for name, value in fields.items():
        setattr(ticker, name, value)
    return ticker


def aapl_ticker(**values: float) -> Ticker:
    """A filled AAPL stock ticker (override any field, e.g. ``bid=math.nan``)."""
    fields: dict[str, Any] = dict(bid=150.20, ask=150.30, last=150.25, volume=1_000_000.0,
                                  high=151.50, low=149.75, close=150.00)
    fields.update(values)
    return make_ticker(aapl_stock(), **fields)


def empty_ticker(contract: Contract | None = None) -> Ticker:
    return Ticker(contract=contract or aapl_stock())


def option_contract(exp: str, strike: float, right: str, symbol: str = "AAPL") -> IBOption:
    c = IBOption(symbol, exp, strike, right, exchange="SMART", currency="USD")
    c.conId = option_con_id(exp, strike, right)
    c.localSymbol = f"{symbol:<6}{exp[2:]}{right}{int(strike * 1000):08d}"
    c.tradingClass = symbol
    c.multiplier = "100"
    return c


def greeks(delta: float = 0.60, gamma: float = 0.05, theta: float = -0.10, vega: float = 0.15,
           iv: float = 0.25) -> OptionComputation:
    return OptionComputation(0, iv, delta, 5.25, 0.0, gamma, vega, theta, AAPL_PRICE)


def option_ticker(contract: Contract, **values: Any) -> Ticker:
    right = getattr(contract, "right", "C")
    fields: dict[str, Any] = dict(
        bid=5.20, ask=5.30, last=5.25, volume=1500.0,
        modelGreeks=greeks(delta=0.6 if right == "C" else -0.4))
    fields.update(values)
    return make_ticker(contract, **fields)


def option_tickers(contracts: list[Contract]) -> list[Ticker]:
    return [option_ticker(c) for c in contracts]


def option_chain(exps: list[str] | None = None, strikes: tuple[float, ...] = STRIKES
                 ) -> OptionChain:
    return OptionChain("SMART", AAPL_CON_ID, "AAPL", "100", list(exps or expiries()),
                       list(strikes))


def account_values(account: str = ACCOUNT) -> list[AccountValue]:
    rows = [("CashBalance", "100000.00", "USD"), ("CashBalance", "99999.00", "BASE"),
            ("EquityWithLoanValue", "150000.00", "USD"), ("BuyingPower", "300000.00", "USD"),
            ("NetLiquidation", "151000.50", "USD"), ("DayTradesRemaining", "3", ""),
            ("AvailableFunds", "not-a-number", "USD"), ("NetLiquidation", "1.0", "EUR")]
    return [AccountValue(account, tag, value, cur, "") for tag, value, cur in rows]


def stock_contract(symbol: str, con_id: int) -> Contract:
    c = Stock(symbol, "SMART", "USD")
    c.conId = con_id
    c.localSymbol = symbol
    return c


def positions(*rows: tuple[str, float, float], account: str = ACCOUNT) -> list[Position]:
    """``positions(("AAPL", 100, 150.25), ...)`` → real ``Position``s of stocks."""
    rows = rows or (("AAPL", 100.0, 150.25), ("MSFT", 50.0, 220.75))
    return [Position(account, stock_contract(sym, 1000 + i), qty, cost)
            for i, (sym, qty, cost) in enumerate(rows)]


def portfolio_item(symbol: str, qty: float, cost: float, price: float, con_id: int = 1000,
                   account: str = ACCOUNT, realized: float = 0.0) -> PortfolioItem:
    return PortfolioItem(stock_contract(symbol, con_id), qty, price, qty * price, cost,
                         qty * (price - cost), realized, account)


def trade(status: str = "Submitted", order_id: int = 123, *, perm_id: int = 0,
          order_ref: str = "", filled: float = 0.0, remaining: float = 1.0,
          avg_fill_price: float = 0.0, client_id: int = 1, quantity: float = 1.0) -> Trade:
    order = Order(orderId=order_id, clientId=client_id, permId=perm_id, action="BUY",
                  totalQuantity=quantity, orderType="LMT", lmtPrice=2.85, orderRef=order_ref)
    st = OrderStatus(orderId=order_id, status=status, filled=filled, remaining=remaining,
                     avgFillPrice=avg_fill_price, permId=perm_id, clientId=client_id)
    return Trade(Contract(symbol="AAPL", secType="BAG", exchange="SMART", currency="USD"),
                 order, st, [], [])


def fill(exec_id: str = "0001.01", *, order_id: int = 123, perm_id: int = 0, shares: float = 1,
         price: float = 2.90, sec_type: str = "BAG", order_ref: str = "", client_id: int = 1,
         commission: float | None = None) -> Fill:
    ex = Execution(execId=exec_id, time=clock_support.PINNED_NOW, acctNumber=ACCOUNT,
                   side="BOT", shares=shares, price=price, permId=perm_id, clientId=client_id,
                   orderId=order_id, orderRef=order_ref)
    report = CommissionReport() if commission is None else commission_report(exec_id, commission)
    return Fill(Contract(symbol="AAPL", secType=sec_type), ex, report,
                clock_support.PINNED_NOW)


def commission_report(exec_id: str = "0001.01", commission: float = 1.30) -> CommissionReport:
    return CommissionReport(execId=exec_id, commission=commission, currency="USD",
                            realizedPNL=1.7976931348623157e308)


# --- the mock IB ---------------------------------------------------------------------------


@dataclass
class StubState:
    """What the mock IB knows and how it behaves (tests change it freely)."""

    connected: bool = False
    accounts: list[str] = field(default_factory=lambda: [ACCOUNT])
    stocks: dict[str, int] = field(default_factory=lambda: {"AAPL": AAPL_CON_ID})
    expirations: list[str] = field(default_factory=expiries)
    strikes: tuple[float, ...] = STRIKES
    stock_tickers: dict[str, Ticker] = field(default_factory=dict)
    option_lines: list[Contract] = field(default_factory=list)  # streaming option requests
    on_place: str = "ack"  # ack | reject | validation_error | silent | raise
    reject_code: int = 201
    reject_message: str = "Order rejected - reason: market is closed"
    ack_status: str = "Submitted"
    trades: list[Trade] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    account_values: list[AccountValue] = field(default_factory=account_values)
    positions: list[Position] = field(default_factory=positions)
    portfolio: list[PortfolioItem] = field(default_factory=list)
    order_ids: Any = field(default_factory=lambda: itertools.count(100))
    connect_error: BaseException | None = None
    connect_calls: int = 0
    placed: list[tuple[Contract, Order]] = field(default_factory=list)
    cancel_status: str | None = "Cancelled"  # None: cancel never confirmed
    wildcard: str = "full"  # wildcard contract details: full | empty | error | truncate
    unqualifiable: set[float] = field(default_factory=set)  # strikes qualifyContracts refuses


def _qualify(state: StubState, contract: Contract) -> Contract | None:
    if contract.secType == "STK":
        con_id = state.stocks.get(contract.symbol)
        if con_id is None:
            return None
        contract.conId = con_id
        contract.localSymbol = contract.symbol
        return contract
    if contract.secType == "OPT":
        exp, strike, right = contract.lastTradeDateOrContractMonth, contract.strike, contract.right
        if contract.symbol not in state.stocks or strike not in state.strikes \
                or strike in state.unqualifiable:
            return None
        q = option_contract(exp, strike, right, contract.symbol)
        contract.conId, contract.localSymbol = q.conId, q.localSymbol
        contract.tradingClass, contract.multiplier = q.tradingClass, q.multiplier
        return contract
    return None


def mock_ib(state: StubState | None = None) -> MagicMock:
    """A ``MagicMock(spec=IB)`` wired to ``state`` (``ib.stub`` is the state)."""
    st = state or StubState()
    ib = MagicMock(spec=IB)
    ib.stub = st
    for name in IB.events:
        setattr(ib, name, Event(name))
    ib.client = MagicMock()
    ib.client.apiError = Event("apiError")
    ib.client.MaxRequests = 45
    req_ids = itertools.count(1)
    ib.client.getReqId.side_effect = lambda: next(req_ids)
    ib.wrapper = MagicMock()
    ib.wrapper.reqId2Ticker = {}

    async def connect_async(*args: Any, **kwargs: Any) -> Any:
        st.connect_calls += 1
        if st.connect_error is not None:
            raise st.connect_error
        st.connected = True
        ib.connectedEvent.emit()
        return ib

    def disconnect() -> None:
        was = st.connected
        st.connected = False
        if was:
            ib.disconnectedEvent.emit()

    ib.connectAsync = AsyncMock(side_effect=connect_async)
    ib.connect = MagicMock(side_effect=AssertionError("sync connect on the loop thread"))
    ib.isConnected.side_effect = lambda: st.connected
    ib.disconnect.side_effect = disconnect
    ib.managedAccounts.side_effect = lambda: list(st.accounts)

    async def qualify(*contracts: Contract) -> list[Contract]:
        return [q for q in (_qualify(st, c) for c in contracts) if q is not None]

    ib.qualifyContractsAsync = AsyncMock(side_effect=qualify)

    async def sec_def(symbol: str, fut_exchange: str, sec_type: str, con_id: int) -> list[Any]:
        if symbol not in st.stocks:
            return []
        return [option_chain(st.expirations, st.strikes),
                OptionChain("CBOE", st.stocks[symbol], symbol, "100", st.expirations[:1],
                            [1.0])]

    ib.reqSecDefOptParamsAsync = AsyncMock(side_effect=sec_def)

    async def details(contract: Contract) -> list[ContractDetails]:
        if contract.secType != "OPT" or contract.symbol not in st.stocks:
            return []
        exp = contract.lastTradeDateOrContractMonth
        if not contract.strike and st.wildcard == "error":
            raise RuntimeError("Error validating request: wildcard refused")
        if not contract.strike and st.wildcard == "empty":
            return []
        strikes = st.strikes[:3] if not contract.strike and st.wildcard == "truncate" \
            else st.strikes
        return [ContractDetails(contract=option_contract(exp, s, r, contract.symbol))
                for s in strikes for r in ("C", "P")]

    ib.reqContractDetailsAsync = AsyncMock(side_effect=details)

    async def tickers(*contracts: Contract, **kw: Any) -> list[Ticker]:
        return option_tickers(list(contracts))

    ib.reqTickersAsync = AsyncMock(side_effect=tickers)
    ib.reqAccountUpdatesAsync = AsyncMock(return_value=None)

    def req_mkt_data(contract: Contract, *args: Any, **kwargs: Any) -> Ticker:
        if contract.secType == "OPT":  # a streaming option line (a chain kept streaming)
            t = option_ticker(contract)
            st.option_lines.append(contract)
            ib.wrapper.reqId2Ticker[len(ib.wrapper.reqId2Ticker) + 1000] = t
            return t
        t = st.stock_tickers.get(contract.symbol) or aapl_ticker()
        st.stock_tickers[contract.symbol] = t
        ib.wrapper.reqId2Ticker[len(ib.wrapper.reqId2Ticker) + 1000] = t
        return t

    ib.reqMktData.side_effect = req_mkt_data
    ib.ticker.return_value = None

    def place_order(contract: Contract, order: Order) -> Trade:
        if st.on_place == "raise":
            raise Exception("Market is closed")
        order.orderId = order.orderId or next(st.order_ids)
        order.clientId = 1
        status = OrderStatus(orderId=order.orderId, status="PendingSubmit")
        t = Trade(contract, order, status, [], [])
        st.trades.append(t)
        st.placed.append((contract, order))
        loop = asyncio.get_running_loop()
        if st.on_place == "ack":
            loop.call_soon(set_status, t, st.ack_status)
        elif st.on_place == "reject":
            loop.call_soon(reject, t)
        elif st.on_place == "validation_error":
            loop.call_soon(validation_error, t)
        return t

    def set_status(t: Trade, status: str, **values: Any) -> None:
        t.orderStatus.status = status
        for k, v in values.items():
            setattr(t.orderStatus, k, v)
        ib.orderStatusEvent.emit(t)

    def reject(t: Trade) -> None:
        # exactly what ib_insync's Wrapper.error does for an order error, then the event
        t.orderStatus.status = "Cancelled"
        ib.orderStatusEvent.emit(t)
        ib.errorEvent.emit(t.order.orderId, st.reject_code, st.reject_message, t.contract)

    def validation_error(t: Trade) -> None:
        # what ib_async 2.x's Wrapper.error does for one of its "warning" codes (321, 399, ...)
        # on an order: status ValidationError (the order stays active), then the error event
        t.orderStatus.status = "ValidationError"
        ib.orderStatusEvent.emit(t)
        ib.errorEvent.emit(t.order.orderId, st.reject_code, st.reject_message, t.contract)

    def cancel_order(order: Order, *args: Any) -> Trade | None:
        t = next((x for x in st.trades if x.order.orderId == order.orderId), None)
        if t is not None and st.cancel_status is not None:
            set_status(t, st.cancel_status)  # synchronously, inside cancelOrder
        return t

    ib.placeOrder.side_effect = place_order
    ib.cancelOrder.side_effect = cancel_order
    ib.set_status = set_status
    ib.trades.side_effect = lambda: list(st.trades)
    ib.openTrades.side_effect = lambda: [t for t in st.trades if not t.isDone()]
    ib.fills.side_effect = lambda: list(st.fills)
    ib.accountValues.side_effect = lambda account="": [
        v for v in st.account_values if not account or v.account == account]
    ib.positions.side_effect = lambda account="": [
        p for p in st.positions if not account or p.account == account]
    ib.portfolio.side_effect = lambda account="": [
        p for p in st.portfolio if not account or p.account == account]
    return ib


def nan_ticker() -> Ticker:
    """A ticker as IB leaves it before any tick (and -1 'no quote' bid/ask)."""
    return make_ticker(aapl_stock(), bid=-1.0, ask=-1.0, last=math.nan)
