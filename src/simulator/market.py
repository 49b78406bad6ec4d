"""The simulated market: universe (from universe.yaml), seeded random walk, quotes, greeks.

Everything here runs on the gateway's loop thread (see the seam); no locks.

Time comes from one injected :class:`~src.utils.clock.Clock` (New York): the listed weekly
expirations are the exchange's (:mod:`src.utils.market_calendar`: a Friday holiday moves the
expiration to the business day before), an expiration is listed until the 16:00 New York close of
its day and dropped from the chain and from contract lookups at the close, and time to expiry for
pricing runs from the clock's instant to that close (floored at half an hour).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from src.models.pricing import Greeks, black_scholes
from src.simulator.types import SimContract
from src.utils import market_calendar
from src.utils.clock import Clock, clock_for, trading_date

STOCK_EXCHANGES = ("SMART", "NASDAQ", "NYSE", "ARCA", "BATS", "IEX", "ISLAND", "AMEX")
OPTION_EXCHANGES = ("SMART", "CBOE", "AMEX", "ISE", "PHLX", "BOX", "MIAX", "PSE", "BATS")


@dataclass
class StockState:
    contract: SimContract
    price: float
    close: float
    volatility: float
    spread: float
    high: float = 0.0
    low: float = 0.0
    volume: float = 0.0
    bid_size: float = 100.0
    ask_size: float = 100.0
    last_size: float = 100.0


@dataclass
class Chain:
    symbol: str
    under_con_id: int
    trading_class: str
    expirations: list[str]
    strikes: list[float]
    multiplier: str = "100"
    con_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Quote:
    """Everything a market-data line publishes for one contract at one step."""

    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    last_size: float
    high: float
    low: float
    close: float
    volume: float
    greeks: Greeks | None = None
    implied_vol: float = 0.0
    und_price: float = 0.0


def occ_symbol(symbol: str, expiry: str, right: str, strike: float) -> str:
    """OCC-style local symbol: ``"AAPL  261218C00150000"``."""
    return f"{symbol:<6}{expiry[2:]}{right}{int(round(strike * 1000)):08d}"


def weekly_expirations(clock: Clock, count: int) -> list[str]:
    """The ``count`` weekly expirations listed at the clock's instant, as YYYYMMDD (each week's
    Friday, or the business day before when it is a holiday; today's until the 16:00 close)."""
    return [d.strftime("%Y%m%d") for d in market_calendar.listed_weeklies(clock, count)]


def _expiry_date(exp: str) -> date:
    return date(int(exp[:4]), int(exp[4:6]), int(exp[6:]))


def _right(value: str) -> str:
    v = value.upper()
    return {"CALL": "C", "PUT": "P", "?": ""}.get(v, v)


def load_universe(path: str | Path | None = None) -> dict[str, Any]:
    if path is None:
        text = resources.files("src.simulator").joinpath("universe.yaml").read_text()
    else:
        text = Path(path).read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("stocks"), list):
        raise ValueError("universe: top-level 'stocks' list is required")
    return data


class Market:
    """Contracts, prices and quotes of the simulated gateway."""

    def __init__(self, universe: Mapping[str, Any] | None = None, *, seed: int = 0,
                 today: date | None = None, clock: Clock | None = None) -> None:
        uni = dict(universe) if universe is not None else load_universe()
        self.clock: Clock = clock_for(today, clock)
        self.rate = float(uni.get("risk_free_rate", 0.04))
        self.step_seconds = float(uni.get("step_seconds", 0.25))
        if self.step_seconds <= 0:
            raise ValueError("universe: step_seconds must be > 0")
        self.step_volatility = float(uni.get("step_volatility", 0.0004))
        self.seed = seed  # other seeded streams (the fill rules) derive from it
        self.rng = random.Random(seed)
        self.version = 0
        self.contracts: dict[int, SimContract] = {}
        self.stocks: dict[str, StockState] = {}
        self.chains: dict[str, Chain] = {}
        self._options_by_symbol: dict[str, list[SimContract]] = {}
        self._by_local: dict[str, SimContract] = {}
        self._closes: dict[str, datetime] = {}  # expiration -> its 16:00 New York close
        self._cache: dict[int, tuple[int, Quote]] = {}
        for spec in uni["stocks"]:
            self._add_stock(spec)

    @classmethod
    def from_file(cls, path: str | Path | None = None, *, seed: int = 0,
                  today: date | None = None, clock: Clock | None = None) -> Market:
        return cls(load_universe(path), seed=seed, today=today, clock=clock)

    @property
    def today(self) -> date:
        """The clock's New York trading date."""
        return trading_date(self.clock)

    # -- time ---------------------------------------------------------------------------
    def is_live(self, expiry: str) -> bool:
        """Is ``expiry`` (YYYYMMDD) still trading at the clock's instant (before its close)?"""
        close = self._closes.get(expiry)
        return close is None or self.clock.now() < close

    def years(self, expiry: str) -> float:
        """Time to ``expiry``'s close in years, from the clock (floored, see the calendar)."""
        close = self._closes[expiry]
        seconds = (close - self.clock.now()).total_seconds()
        return max(market_calendar.MIN_YEARS, seconds / (365.0 * 86400.0))

    # -- construction -------------------------------------------------------------------
    def _add_stock(self, spec: Mapping[str, Any]) -> None:
        try:
            symbol = str(spec["symbol"]).upper()
            con_id = int(spec["con_id"])
            price = float(spec["price"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"universe: stock needs symbol, con_id, price ({e})") from None
        if price <= 0:
            raise ValueError(f"universe: price of {symbol} must be > 0")
        c = SimContract(
            con_id=con_id, symbol=symbol, sec_type="STK",
            primary_exchange=str(spec.get("primary_exchange", "NASDAQ")),
            local_symbol=symbol, trading_class=symbol, long_name=str(spec.get("long_name", symbol)),
            min_tick=float(spec.get("min_tick", 0.01)),
        )
        self._register(c)
        self.stocks[symbol] = StockState(
            contract=c, price=price, close=float(spec.get("close", price)),
            volatility=float(spec.get("volatility", 0.25)), spread=float(spec.get("spread", 0.02)),
            high=price, low=price, volume=float(spec.get("volume", 1_000_000)),
        )
        opt = spec.get("options")
        if opt:
            self._add_chain(c, price, opt)

    def _add_chain(self, under: SimContract, price: float, opt: Mapping[str, Any]) -> None:
        n_exp = int(opt.get("expirations", 12))
        n_strikes = int(opt.get("strikes", 30))
        step = float(opt.get("strike_step", 5.0))
        base = int(opt["con_id_base"]) if "con_id_base" in opt else under.con_id * 1000
        if n_exp < 1 or n_strikes < 1 or step <= 0:
            raise ValueError(f"universe: bad option chain spec for {under.symbol}")
        expirations = weekly_expirations(self.clock, n_exp)
        centre = round(price / step) * step
        strikes = [round(centre + (i - n_strikes // 2) * step, 4) for i in range(n_strikes)]
        strikes = [k for k in strikes if k > 0]
        chain = Chain(under.symbol, under.con_id, under.symbol, expirations, strikes)
        options: list[SimContract] = []
        for ei, exp in enumerate(expirations):
            self._closes[exp] = market_calendar.expiry_close(_expiry_date(exp))
            for si, k in enumerate(strikes):
                for ri, right in enumerate(("C", "P")):
                    c = SimContract(
                        con_id=base + ei * 1000 + si * 2 + ri, symbol=under.symbol,
                        sec_type="OPT", last_trade_date=exp, strike=k, right=right,
                        multiplier="100", local_symbol=occ_symbol(under.symbol, exp, right, k),
                        trading_class=under.symbol, long_name=under.long_name,
                    )
                    self._register(c)
                    options.append(c)
                    chain.con_ids.append(c.con_id)
        self.chains[under.symbol] = chain
        self._options_by_symbol[under.symbol] = options

    def _register(self, c: SimContract) -> None:
        if c.con_id in self.contracts:
            raise ValueError(f"universe: duplicate con_id {c.con_id}")
        self.contracts[c.con_id] = c
        self._by_local[c.local_symbol.replace(" ", "")] = c

    # -- lookup (seam) ------------------------------------------------------------------
    def contract(self, con_id: int) -> SimContract | None:
        return self.contracts.get(con_id)

    def resolve(self, c: SimContract) -> SimContract | None:
        if c.con_id:
            return self.contracts.get(c.con_id)
        found = self.match(symbol=c.symbol, sec_type=c.sec_type, expiry=c.last_trade_date,
                           strike=c.strike, right=c.right, currency=c.currency,
                           local_symbol=c.local_symbol, trading_class=c.trading_class)
        return found[0] if len(found) == 1 else None

    def match(self, *, con_id: int = 0, symbol: str = "", sec_type: str = "", expiry: str = "",
              strike: float = 0.0, right: str = "", currency: str = "", exchange: str = "",
              local_symbol: str = "", trading_class: str = "", multiplier: str = ""
              ) -> list[SimContract]:
        """Every contract matching the given fields (blank/zero fields match anything),
        the way IB answers reqContractDetails (wildcard option requests included)."""
        symbol = symbol.upper()
        if con_id:
            c = self.contracts.get(con_id)
            ok = c is not None and (not symbol or c.symbol == symbol) and (
                not sec_type or c.sec_type == sec_type)
            return [c] if ok and c is not None else []
        if local_symbol:
            c = self._by_local.get(local_symbol.replace(" ", ""))
            ok = c is not None and (not symbol or c.symbol == symbol)
            return [c] if ok and c is not None else []
        if not symbol or (currency and currency.upper() != "USD"):
            return []
        stock = self.stocks.get(symbol)
        if stock is None:
            return []
        exchange = exchange.upper()
        r = _right(right)
        now = self.clock.now()
        if sec_type == "STK" or (sec_type == "" and not (expiry or strike or r)):
            ok = not exchange or exchange in STOCK_EXCHANGES
            return [stock.contract] if ok else []
        if sec_type not in ("OPT", ""):
            return []
        if exchange and exchange not in OPTION_EXCHANGES:
            return []
        if multiplier and multiplier != "100":
            return []
        if trading_class and trading_class != symbol:
            return []
        out = [
            c for c in self._options_by_symbol.get(symbol, ())
            if (not expiry or c.last_trade_date.startswith(expiry))
            and now < self._closes[c.last_trade_date]
            and (not strike or abs(c.strike - strike) < 1e-6)
            and (not r or c.right == r)
        ]
        return out

    def chain(self, symbol: str) -> Chain | None:
        """The option chain of ``symbol`` as listed now (expirations past their close dropped)."""
        chain = self.chains.get(symbol.upper())
        if chain is None:
            return None
        live = [e for e in chain.expirations if self.is_live(e)]
        return chain if len(live) == len(chain.expirations) else replace(chain, expirations=live)

    # -- prices (seam) ------------------------------------------------------------------
    def underlying_price(self, symbol: str) -> float:
        st = self.stocks.get(symbol.upper())
        if st is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        return round(st.price, 2)

    def quote(self, con_id: int) -> tuple[float, float, float]:
        q = self.snapshot(con_id)
        return q.bid, q.ask, q.last

    def mid(self, con_id: int) -> float:
        q = self.snapshot(con_id)
        return round((q.bid + q.ask) / 2.0, 4)

    def implied_vol(self, c: SimContract, spot: float) -> float:
        vol = self.stocks[c.symbol].volatility
        m = math.log(c.strike / spot)
        return max(0.05, vol * (1.0 + 0.8 * m * m) - 0.15 * m)

    def snapshot(self, con_id: int) -> Quote:
        """The current quote of ``con_id`` (KeyError if unknown)."""
        cached = self._cache.get(con_id)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        c = self.contracts.get(con_id)
        if c is None:
            raise KeyError(f"unknown con_id {con_id}")
        q = self._stock_quote(c) if c.sec_type == "STK" else self._option_quote(c)
        self._cache[con_id] = (self.version, q)
        return q

    def _stock_quote(self, c: SimContract) -> Quote:
        st = self.stocks[c.symbol]
        last = round(st.price, 2)
        half = max(0.01, round(st.spread / 2.0, 2))
        return Quote(
            bid=round(last - half, 2), ask=round(last + half, 2), last=last,
            bid_size=st.bid_size, ask_size=st.ask_size, last_size=st.last_size,
            high=round(st.high, 2), low=round(st.low, 2), close=round(st.close, 2),
            volume=st.volume,
        )

    def _option_quote(self, c: SimContract) -> Quote:
        st = self.stocks[c.symbol]
        spot = st.price
        iv = self.implied_vol(c, spot)
        g = black_scholes(spot, c.strike, self.years(c.last_trade_date), iv, self.rate, c.right)
        theo = max(g.price, 0.01)
        half = max(0.01, min(0.25, round(theo * 0.02, 2)))
        bid = max(0.01, round(theo - half, 2))
        ask = round(max(bid + 0.01, theo + half), 2)
        g0 = black_scholes(st.close, c.strike, self.years(c.last_trade_date),
                           self.implied_vol(c, st.close), self.rate, c.right)
        seed = c.con_id % 97
        return Quote(
            bid=bid, ask=ask, last=round(theo, 2), bid_size=float(10 + seed % 40),
            ask_size=float(10 + (seed * 7) % 40), last_size=float(1 + seed % 9),
            high=round(max(theo, g0.price) * 1.03 + 0.01, 2),
            low=max(0.01, round(min(theo, g0.price) * 0.97, 2)),
            close=max(0.01, round(g0.price, 2)), volume=float(100 + seed * 37),
            greeks=Greeks(theo, g.delta, g.gamma, g.vega, g.theta), implied_vol=iv,
            und_price=round(spot, 2),
        )

    # -- random walk --------------------------------------------------------------------
    def step(self) -> None:
        """Advance every underlying one seeded random-walk step."""
        rng = self.rng
        for st in self.stocks.values():
            z = rng.gauss(0.0, 1.0)
            st.price = max(0.05, st.price * math.exp(self.step_volatility * z))
            st.high = max(st.high, st.price)
            st.low = min(st.low, st.price)
            st.bid_size = float(rng.randint(1, 20) * 100)
            st.ask_size = float(rng.randint(1, 20) * 100)
            st.last_size = float(rng.randint(1, 10) * 100)
            st.volume += float(rng.randint(0, 50) * 100)
        self.version += 1

    def set_price(self, symbol: str, price: float) -> None:
        """Test hook: move an underlying to ``price`` (options reprice from it)."""
        st = self.stocks.get(symbol.upper())
        if st is None:
            raise ValueError(f"symbol: unknown {symbol!r}")
        if price <= 0:
            raise ValueError("price must be > 0")
        st.price = float(price)
        st.high = max(st.high, st.price)
        st.low = min(st.low, st.price)
        self.version += 1

