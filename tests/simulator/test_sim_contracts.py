"""Contract details (exact, wildcard, unknown) and reqSecDefOptParams."""

from __future__ import annotations

import time

import pytest
from sim_support import Client

from src.simulator import SimulatedGateway

pytestmark = pytest.mark.integration


def _chain(gw: SimulatedGateway, sym: str = "AAPL") -> tuple[list[str], list[float]]:
    chain = gw.market.chain(sym)
    assert chain is not None
    return chain.expirations, chain.strikes


def test_qualify_stocks_blocking(client: Client) -> None:
    mod = client.mod
    stocks = [mod.Stock(s, "SMART", "USD") for s in ("AAPL", "MSFT", "SPY")]
    got = client(lambda ib: ib.qualifyContracts(*stocks))
    assert [c.conId for c in got] == [265598, 272093, 756733]
    assert got[0].primaryExchange == "NASDAQ" and got[0].exchange == "SMART"


def test_qualify_option_async(client: Client, gateway: SimulatedGateway) -> None:
    exps, strikes = _chain(gateway)
    opt = client.mod.Option("AAPL", exps[2], strikes[10], "C", "SMART")
    [q] = client.aw(lambda ib: ib.qualifyContractsAsync(opt))
    assert q.conId > 0
    assert q.localSymbol == f"AAPL  {exps[2][2:]}C{int(strikes[10] * 1000):08d}"
    assert q.multiplier == "100" and q.tradingClass == "AAPL"
    assert q.lastTradeDateOrContractMonth == exps[2]


def test_contract_details_fields(client: Client, gateway: SimulatedGateway) -> None:
    exps, strikes = _chain(gateway)
    opt = client.mod.Option("AAPL", exps[0], strikes[0], "P", "SMART")
    [cd] = client.aw(lambda ib: ib.reqContractDetailsAsync(opt))
    assert cd.underConId == 265598 and cd.minTick == 0.01
    assert cd.contract.right == "P" and cd.contract.strike == strikes[0]
    assert "SMART" in cd.validExchanges.split(",") and "LMT" in cd.orderTypes.split(",")


def test_wildcard_option_requests(client: Client, gateway: SimulatedGateway) -> None:
    exps, strikes = _chain(gateway)
    Option = client.mod.Option
    no_strike = client(lambda ib: ib.reqContractDetails(Option("AAPL", exps[1], 0, "C", "SMART")))
    assert len(no_strike) == len(strikes)
    assert {cd.contract.lastTradeDateOrContractMonth for cd in no_strike} == {exps[1]}
    no_right = client(lambda ib: ib.reqContractDetails(Option("AAPL", exps[1], exchange="SMART")))
    assert len(no_right) == 2 * len(strikes)
    no_expiry = client(lambda ib: ib.reqContractDetails(
        Option("AAPL", "", strikes[3], "P", "SMART")))
    assert len(no_expiry) == len(exps)
    spy_exps, spy_strikes = _chain(gateway, "SPY")
    month = client(lambda ib: ib.reqContractDetails(
        Option("SPY", spy_exps[0][:6], spy_strikes[0], "C", "SMART")))
    assert len(month) == sum(e.startswith(spy_exps[0][:6]) for e in spy_exps)


@pytest.mark.expected_ib_errors(200)
def test_unknown_symbol_is_error_200_without_waiting(client: Client) -> None:
    unknown = client.mod.Stock("ZZZZ", "SMART", "USD")
    t0 = time.perf_counter()
    assert client(lambda ib: ib.reqContractDetails(unknown)) == []
    # ib_insync returns [], ib_async [None] for an unknown contract
    assert not any(client.aw(lambda ib: ib.qualifyContractsAsync(unknown)))
    assert time.perf_counter() - t0 < 1.0  # an unanswered request would hang much longer
    errors: list[int] = []
    client(lambda ib: ib.errorEvent.connect(lambda *a: errors.append(a[1])))
    client(lambda ib: ib.reqContractDetails(client.mod.Stock("QQQQ", "SMART", "USD")))
    assert errors == [200]


def test_sec_def_opt_params(client: Client, gateway: SimulatedGateway) -> None:
    exps, strikes = _chain(gateway)
    chains = client.aw(lambda ib: ib.reqSecDefOptParamsAsync("AAPL", "", "STK", 265598))
    assert len(chains) == 1
    ch = chains[0]
    assert ch.exchange == "SMART" and ch.tradingClass == "AAPL" and ch.multiplier == "100"
    assert int(ch.underlyingConId) == 265598
    assert sorted(ch.expirations) == exps and sorted(ch.strikes) == strikes
    assert len(ch.expirations) >= 12 and len(ch.strikes) >= 20
