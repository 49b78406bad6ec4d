"""Option chains through the client protocol alone (for :class:`~src.brokers.client_broker.
ClientBroker`): one wildcard ``contract_details`` query, then one quote per option.

1. the underlying's quote (``request_market_data`` on the stock; its line is kept);
2. one wildcard ``contract_details`` (an option contract without expiration, strike, right):
   every listed option of the symbol;
3. the ``ibkr.chain_expirations`` nearest expirations still trading
   (:func:`~src.utils.market_calendar.first_live_expiry`), in each the ``ibkr.chain_strikes``
   strikes nearest the underlying listed as both call and put;
4. a quote per option (``request_market_data``, then ``cancel_market_data``: no line is kept);
   the protocol's :class:`~src.brokers.client_types.Quote` carries no greeks, so the implied
   volatility is solved from the quote's mid (else its last) and the greeks come from the
   shared Black-Scholes kernel at the underlying's price (``RISK_FREE_RATE``, time to the
   expiration's 16:00 New York close on the injected clock); rho stays 0.0, as with IB's
   model greeks; the Option itself is built by :func:`~src.brokers.translate.option_from_ticker`.

Unlike the adapter's :mod:`~src.brokers.market_data` this sends its requests one after the
other (no batching, no pacing, no cache): fine for the mock and a small chain, slow against a
real gateway with thousands of listings.
"""

from __future__ import annotations

import contextlib
import statistics
from types import SimpleNamespace
from typing import Any

from src.brokers import translate
from src.brokers.client_protocol import IBKRClientProtocol
from src.brokers.client_types import ContractInfo, Quote
from src.brokers.compat import Option as IBOption
from src.brokers.compat import Stock
from src.brokers.errors import BrokerError, ContractNotFound
from src.brokers.ibkr_api import RISK_FREE_RATE
from src.models.option import Option
from src.models.pricing import black_scholes, implied_vol
from src.utils.clock import Clock
from src.utils.logger import log_info, log_warning
from src.utils.market_calendar import first_live_expiry, years_to_expiry


def stock(symbol: str) -> Any:
    return Stock(symbol, "SMART", "USD")


def option_contract(info: ContractInfo) -> Any:
    """An ib_insync ``Option`` for a listed contract (conId and local symbol kept)."""
    c = IBOption(info.symbol, info.expiry, float(info.strike or 0.0), info.right,
                 exchange="SMART", currency="USD")
    c.conId = info.con_id
    c.localSymbol = info.local_symbol
    c.multiplier = info.multiplier
    c.tradingClass = info.trading_class
    return c


def model_greeks(quote: Quote, info: ContractInfo, spot: float, clock: Clock) -> Any:
    """IB's ``OptionComputation`` fields (impliedVol, delta, gamma, theta, vega) from the
    kernel, or None when no volatility prices the quote."""
    bid, ask, last = (translate.clean(quote.bid), translate.clean(quote.ask),
                      translate.clean(quote.last))
    price = (bid + ask) / 2 if bid is not None and ask is not None and 0 < bid <= ask else last
    if price is None or not info.strike:
        return None
    years = years_to_expiry(translate.parse_expiry(info.expiry), clock)
    vol = implied_vol(price, spot, info.strike, years, RISK_FREE_RATE, info.right)
    if vol is None:
        return None
    g = black_scholes(spot, info.strike, years, vol, RISK_FREE_RATE, info.right)
    return SimpleNamespace(impliedVol=vol, delta=g.delta, gamma=g.gamma, theta=g.theta,
                           vega=g.vega)


def pick(listed: list[ContractInfo], expiry: str, spot: float, count: int) -> list[ContractInfo]:
    """Calls and puts of the ``count`` strikes nearest ``spot`` listed in ``expiry`` (strikes
    listed as both rights when there are any)."""
    mine = [i for i in listed if i.expiry == expiry]
    calls = {i.strike for i in mine if i.right == "C"}
    puts = {i.strike for i in mine if i.right == "P"}
    pool = (calls & puts) or (calls | puts)
    chosen = set(translate.nearest_strikes([s for s in pool if s], spot, count))
    seen: set[tuple[str, float]] = set()
    out = []
    for i in sorted(mine, key=lambda i: (i.right, i.strike or 0.0)):
        key = (i.right, i.strike or 0.0)
        if i.strike in chosen and key not in seen:
            seen.add(key)
            out.append(i)
    return out


def option_chain(client: IBKRClientProtocol, symbol: str, clock: Clock) -> list[Option]:
    """The chain of ``symbol`` (see the module doc); raises ``BrokerError`` on trouble."""
    settings = client.settings
    underlying = client.request_market_data(stock(symbol))
    details = client.contract_details(IBOption(symbol, "", exchange="SMART", currency="USD"))
    listed = [d.contract for d in details
              if d.contract.strike and d.contract.right in ("C", "P") and d.contract.expiry]
    spot = translate.underlying_price(underlying)
    if spot is None:
        strikes = sorted({i.strike for i in listed if i.strike})
        if not strikes:
            raise ContractNotFound(f"No option chain found for {symbol}", 200)
        spot = float(statistics.median(strikes))
        log_warning(f"No price for {symbol}: centring strikes on {spot}")
    expirations = translate.nearest_expirations({i.expiry for i in listed},
                                                first_live_expiry(clock),
                                                settings.chain_expirations)
    if not expirations:
        raise ContractNotFound(f"No future expirations for {symbol}", 200)
    options: list[Option] = []
    for expiry in expirations:
        for info in pick(listed, expiry, spot, settings.chain_strikes):
            contract = option_contract(info)
            try:
                quote = client.request_market_data(contract)
            finally:
                with contextlib.suppress(BrokerError):  # the line is gone either way
                    client.cancel_market_data(contract)
            ticker = SimpleNamespace(bid=quote.bid, ask=quote.ask, last=quote.last,
                                     volume=quote.volume, data_type=quote.data_type,
                                     modelGreeks=model_greeks(quote, info, spot, clock))
            options.append(translate.option_from_ticker(ticker, contract, symbol))
    options.sort(key=lambda o: (o.expiration, o.option_type, o.strike))
    log_info(f"Retrieved {len(options)} options for {symbol}")
    return options
