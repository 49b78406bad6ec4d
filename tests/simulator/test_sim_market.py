"""Universe, option chains, quotes, greeks and the seeded random walk (market.py; pricing:
src/models/pricing.py)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from src.models.pricing import black_scholes
from src.simulator.market import Market, occ_symbol, weekly_expirations
from src.utils.clock import FixedClock
from src.utils.market_calendar import is_holiday

TODAY = date(2026, 11, 21)  # a Saturday


@pytest.fixture
def market() -> Market:
    return Market(seed=7, today=TODAY)


def test_default_universe_has_stocks_and_chains(market: Market) -> None:
    assert set(market.stocks) >= {"AAPL", "MSFT", "SPY"}
    for sym in ("AAPL", "SPY"):
        chain = market.chain(sym)
        assert chain is not None
        assert len(chain.expirations) >= 12 and len(chain.strikes) >= 20
        assert chain.multiplier == "100" and chain.trading_class == sym
        opts = market.match(symbol=sym, sec_type="OPT")
        assert len(opts) == len(chain.expirations) * len(chain.strikes) * 2
        spot = market.underlying_price(sym)
        assert min(chain.strikes) < spot < max(chain.strikes)
    assert market.underlying_price("SPY") > 300 and market.underlying_price("MSFT") > 100


def test_expirations_are_the_listed_weeklies() -> None:
    for today in (TODAY, date(2026, 11, 20), date(2026, 11, 19)):  # Sat, Fri, Thu
        exps = weekly_expirations(FixedClock.new_york(today, time(10, 0)), 12)
        days = [datetime.strptime(e, "%Y%m%d").date() for e in exps]
        fridays = [d + timedelta(days=4 - d.weekday()) for d in days]
        assert all(d >= today for d in days)
        # each week's Friday, or the day before when that Friday is a holiday (2026-12-25)
        assert all(d == f or (is_holiday(f) and d == f - timedelta(days=1))
                   for d, f in zip(days, fridays, strict=True))
        assert date(2026, 12, 24) in days
        assert days == sorted(set(days)) and len(days) == 12


def test_expiration_day_is_listed_until_the_close() -> None:
    friday = date(2026, 12, 4)
    before = weekly_expirations(FixedClock.new_york(friday, time(15, 59)), 2)
    after = weekly_expirations(FixedClock.new_york(friday, time(16, 0)), 2)
    assert before == ["20261204", "20261211"]
    assert after == ["20261211", "20261218"]


def test_holiday_fridays_expire_on_thursday() -> None:
    exps = weekly_expirations(FixedClock.new_york(date(2026, 12, 21)), 3)
    assert exps == ["20261224", "20261231", "20270108"]


def test_market_drops_an_expiration_at_its_close_and_prices_to_the_close() -> None:
    clock = FixedClock.new_york(date(2026, 12, 4), time(15, 0))
    m = Market(seed=1, clock=clock)
    chain = m.chain("AAPL")
    assert chain is not None and chain.expirations[0] == "20261204"
    assert m.years("20261204") == pytest.approx(1.0 / (365 * 24))  # one hour to the close
    assert m.match(symbol="AAPL", sec_type="OPT", expiry="20261204")
    clock.set(clock.now() + timedelta(hours=1, minutes=30))  # 16:30, after the close
    chain = m.chain("AAPL")
    assert chain is not None and chain.expirations[0] == "20261211"
    assert m.match(symbol="AAPL", sec_type="OPT", expiry="20261204") == []
    assert m.years("20261204") > 0  # floored: an expired line still prices finitely


def test_option_contracts_have_unique_ids_and_occ_symbols(market: Market) -> None:
    ids = [c.con_id for c in market.contracts.values()]
    assert len(ids) == len(set(ids))
    c = market.match(symbol="AAPL", sec_type="OPT", right="C")[0]
    assert c.local_symbol == occ_symbol("AAPL", c.last_trade_date, "C", c.strike)
    assert c.multiplier == "100" and c.trading_class == "AAPL"
    assert occ_symbol("AAPL", "20261218", "C", 150.0) == "AAPL  261218C00150000"
    assert occ_symbol("SPY", "20261218", "P", 592.5) == "SPY   261218P00592500"


def test_wildcard_matching(market: Market) -> None:
    chain = market.chain("AAPL")
    assert chain is not None
    exp, k = chain.expirations[0], chain.strikes[5]
    assert len(market.match(symbol="AAPL", sec_type="OPT", expiry=exp)) == len(chain.strikes) * 2
    assert len(market.match(symbol="AAPL", sec_type="OPT", expiry=exp, right="P")) == len(
        chain.strikes)
    assert len(market.match(symbol="AAPL", sec_type="OPT", strike=k, right="C")) == len(
        chain.expirations)
    one = market.match(symbol="AAPL", sec_type="OPT", expiry=exp, strike=k, right="CALL")
    assert len(one) == 1 and market.resolve(one[0]) is one[0]
    assert market.match(symbol="NOPE", sec_type="STK") == []
    assert market.match(symbol="MSFT", sec_type="OPT") == []
    assert market.match(symbol="AAPL", sec_type="STK", currency="EUR") == []


def test_random_walk_is_reproducible_per_seed() -> None:
    def path(seed: int) -> list[float]:
        m = Market(seed=seed, today=TODAY)
        out = []
        for _ in range(20):
            m.step()
            out.append(m.underlying_price("AAPL"))
        return out

    assert path(3) == path(3)
    assert path(3) != path(4)


def test_quotes_are_consistent(market: Market) -> None:
    for con_id in list(market.contracts)[::37]:
        bid, ask, last = market.quote(con_id)
        assert 0 < bid < ask
        assert market.mid(con_id) == pytest.approx((bid + ask) / 2)


def test_option_greeks_follow_moneyness(market: Market) -> None:
    chain = market.chain("AAPL")
    assert chain is not None
    exp = chain.expirations[4]
    calls = market.match(symbol="AAPL", sec_type="OPT", expiry=exp, right="C")
    puts = market.match(symbol="AAPL", sec_type="OPT", expiry=exp, right="P")
    call_deltas = [market.snapshot(c.con_id).greeks.delta for c in calls]  # type: ignore[union-attr]
    put_deltas = [market.snapshot(c.con_id).greeks.delta for c in puts]  # type: ignore[union-attr]
    assert call_deltas == sorted(call_deltas, reverse=True)  # higher strike, lower call delta
    assert all(0 <= d <= 1 for d in call_deltas) and all(-1 <= d <= 0 for d in put_deltas)
    spot = market.stocks["AAPL"].price
    for c in calls + puts:  # every quote is the kernel's for the market's own inputs
        q = market.snapshot(c.con_id)
        want = black_scholes(spot, c.strike, market.years(exp), market.implied_vol(c, spot),
                             market.rate, c.right)
        assert q.greeks is not None and q.implied_vol == market.implied_vol(c, spot)
        assert q.greeks.delta == pytest.approx(want.delta, abs=1e-12)
        assert q.greeks.gamma == pytest.approx(want.gamma, rel=1e-12, abs=1e-15)
        assert q.greeks.vega == pytest.approx(want.vega, rel=1e-12, abs=1e-15)
        assert q.greeks.theta == pytest.approx(want.theta, rel=1e-12, abs=1e-15)
    q = market.snapshot(calls[len(calls) // 2].con_id)
    assert q.greeks is not None
    assert q.bid <= q.greeks.price <= q.ask
    assert q.und_price == market.underlying_price("AAPL")


def test_set_price_moves_options(market: Market) -> None:
    c = market.match(symbol="AAPL", sec_type="OPT", right="C")[100]
    before = market.mid(c.con_id)
    market.set_price("AAPL", market.underlying_price("AAPL") + 20)
    assert market.mid(c.con_id) > before
    with pytest.raises(ValueError, match="symbol"):
        market.set_price("NOPE", 1.0)


def test_bad_universe_is_rejected() -> None:
    with pytest.raises(ValueError, match="price"):
        Market({"stocks": [{"symbol": "X", "con_id": 1, "price": -1}]})
    with pytest.raises(ValueError, match="symbol"):
        Market({"stocks": [{"con_id": 1}]})


def test_universe_from_file(tmp_path: Path) -> None:
    f = tmp_path / "u.yaml"
    f.write_text(
        "stocks:\n"
        "  - {symbol: QQQ, con_id: 320227571, price: 500.0, primary_exchange: NASDAQ,\n"
        "     options: {expirations: 3, strikes: 4, strike_step: 10, con_id_base: 900000}}\n")
    m = Market.from_file(f, seed=1, today=TODAY)
    assert list(m.stocks) == ["QQQ"]
    chain = m.chain("QQQ")
    assert chain is not None and chain.strikes == [480.0, 490.0, 500.0, 510.0]
    assert len(m.match(symbol="QQQ", sec_type="OPT")) == 3 * 4 * 2


def test_gateway_rejects_bad_options() -> None:
    from src.simulator import SimulatedGateway
    from src.simulator.server import GatewayServer

    with pytest.raises(ValueError, match="latency_ms"):
        SimulatedGateway(latency_ms=-5)
    with pytest.raises(ValueError, match="127.0.0.1"):
        GatewayServer(object(), ["DU1"], host="0.0.0.0")  # type: ignore[arg-type]
