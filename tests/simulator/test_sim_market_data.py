"""Streaming and snapshot market data, option greeks, cancelMktData, marketDataType."""

from __future__ import annotations

import math
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from model_support import assert_true_to_model, gateway_inputs
from sim_support import Client, market_steps

from src.simulator import SimulatedGateway

pytestmark = pytest.mark.integration


def _valid(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _options(client: Client, gw: SimulatedGateway, n: int, sym: str = "AAPL") -> list[Any]:
    chain = gw.market.chain(sym)
    assert chain is not None
    out = []
    for exp in chain.expirations:
        for k in chain.strikes:
            for right in ("C", "P"):
                out.append(client.mod.Option(sym, exp, k, right, "SMART"))
                if len(out) == n:
                    return out
    return out


def _as_option(t: Any) -> SimpleNamespace:
    """A ticker's model greeks in the shape model_support checks."""
    c, g = t.contract, t.modelGreeks
    return SimpleNamespace(
        symbol=c.localSymbol, underlying=c.symbol, strike=c.strike,
        option_type="call" if c.right == "C" else "put",
        expiration=datetime.strptime(c.lastTradeDateOrContractMonth, "%Y%m%d").date(),
        implied_volatility=g.impliedVol, delta=g.delta, gamma=g.gamma, vega=g.vega,
        theta=g.theta)


def test_streaming_stock_quote_updates_then_cancel(client: Client,
                                                    gateway: SimulatedGateway) -> None:
    stock = client.mod.Stock("AAPL", "SMART", "USD")
    client(lambda ib: ib.qualifyContracts(stock))
    ticker = client(lambda ib: ib.reqMktData(stock))
    updates: list[float] = []
    ticker.updateEvent += lambda t: updates.append(t.last)
    assert client.wait(lambda ib: len(updates) >= 3)  # a few random-walk steps ticked it
    for name in ("bid", "ask", "last", "bidSize", "askSize", "high", "low", "close", "volume"):
        assert _valid(getattr(ticker, name)) and getattr(ticker, name) > 0, name
    assert ticker.bid < ticker.ask and ticker.low <= ticker.last <= ticker.high
    assert len(updates) >= 3
    assert gateway.stats()["market_data_lines"] == 1

    client(lambda ib: ib.cancelMktData(stock))
    client(lambda ib: ib.reqCurrentTime())  # round trip: the cancel has been processed
    assert gateway.stats()["market_data_lines"] == 0
    assert any(msg_id == 2 for _, msg_id, _ in gateway.requests)
    frozen = ticker.time
    market_steps(gateway, 3)  # three steps that would each have ticked the line
    client(lambda ib: ib.reqCurrentTime())  # round trip: such ticks would have arrived
    assert ticker.time == frozen  # no more ticks after cancelMktData


def test_snapshot_stock_blocking(client: Client, gateway: SimulatedGateway) -> None:
    stocks = [client.mod.Stock(s, "SMART", "USD") for s in ("AAPL", "MSFT", "SPY")]
    client(lambda ib: ib.qualifyContracts(*stocks))
    tickers = client(lambda ib: ib.reqTickers(*stocks))
    for t in tickers:
        assert 0 < t.bid < t.ask and t.last > 0 and t.close > 0 and t.volume > 0
        assert abs(t.last - gateway.market.underlying_price(t.contract.symbol)) < 5
    assert gateway.stats()["market_data_lines"] == 0  # snapshots are not lines


def test_snapshot_option_chain_with_greeks_async(client: Client,
                                                 gateway: SimulatedGateway) -> None:
    opts = _options(client, gateway, 40)
    client.aw(lambda ib: ib.qualifyContractsAsync(*opts))
    assert all(o.conId for o in opts)
    tickers = client.aw(lambda ib: ib.reqTickersAsync(*opts))
    assert len(tickers) == 40
    spot = gateway.market.underlying_price("AAPL")
    for t in tickers:
        g = t.modelGreeks
        assert g is not None and 0 < t.bid < t.ask
        assert g.impliedVol > 0
        assert t.bid <= g.optPrice <= t.ask
        assert abs(g.undPrice - spot) < 5
        assert_true_to_model(_as_option(t), **gateway_inputs(gateway, _as_option(t)))
        assert t.bidGreeks is not None and t.askGreeks is not None and t.lastGreeks is not None
    first_exp = opts[0].lastTradeDateOrContractMonth
    calls = sorted((t for t in tickers if t.contract.right == "C"
                    and t.contract.lastTradeDateOrContractMonth == first_exp),
                   key=lambda t: t.contract.strike)
    deltas = [t.modelGreeks.delta for t in calls]
    assert deltas == sorted(deltas, reverse=True)  # delta falls as the strike rises


def test_streaming_option_greeks(client: Client, gateway: SimulatedGateway) -> None:
    [opt] = _options(client, gateway, 1, "SPY")
    client(lambda ib: ib.qualifyContracts(opt))
    ticker = client(lambda ib: ib.reqMktData(opt))
    assert client.wait(lambda ib: ticker.modelGreeks is not None and ticker.bid > 0)
    assert ticker.modelGreeks is not None and ticker.modelGreeks.delta > 0
    assert 0 < ticker.bid < ticker.ask
    client(lambda ib: ib.cancelMktData(opt))


def test_market_data_type(client: Client, gateway: SimulatedGateway) -> None:
    stock = client.mod.Stock("MSFT", "SMART", "USD")
    client(lambda ib: ib.qualifyContracts(stock))
    client(lambda ib: ib.reqMarketDataType(3))
    [t] = client(lambda ib: ib.reqTickers(stock))
    assert t.marketDataType == 1  # live permitted: "live data is always returned instead"
    assert any(m == 59 for _, m, _ in gateway.requests)
    gateway.set_entitlement("MSFT", "delayed")
    [t] = client(lambda ib: ib.reqTickers(stock))
    assert t.marketDataType == 3 and t.bid > 0  # delayed ticks (66-76) fill the same fields


def test_combo_market_data(client: Client, gateway: SimulatedGateway) -> None:
    mod = client.mod
    a, b = _options(client, gateway, 4)[0], _options(client, gateway, 4)[2]
    client(lambda ib: ib.qualifyContracts(a, b))
    bag = mod.Contract(symbol="AAPL", secType="BAG", exchange="SMART", currency="USD",
                       comboLegs=[mod.ComboLeg(conId=a.conId, ratio=1, action="BUY",
                                               exchange="SMART"),
                                  mod.ComboLeg(conId=b.conId, ratio=1, action="SELL",
                                               exchange="SMART")])
    [t] = client(lambda ib: ib.reqTickers(bag))
    qa, qb = gateway.market.snapshot(a.conId), gateway.market.snapshot(b.conId)
    assert t.bid < t.ask
    assert t.bid == pytest.approx(qa.bid - qb.ask, abs=0.05)


def test_prices_are_reproducible_per_seed() -> None:
    def run(seed: int) -> list[float]:
        with SimulatedGateway(port=0, seed=seed, step_seconds=1000) as gw:
            out = []
            for _ in range(5):
                gw.call(gw.market.step)
                out.append(gw.call(gw.market.underlying_price, "SPY"))
            return out

    assert run(11) == run(11) and run(11) != run(12)
