"""The option market of :class:`~src.brokers.mock_client.MockIBKRClient` (pure functions).

The mock quotes stocks from what a test set (``set_quote``); options of a quoted stock are
listed and priced from that quote so that option chains can be built through the client
protocol alone:

* listing (a wildcard ``contract_details`` query: an option contract without strike or right):
  the :data:`LISTED_EXPIRATIONS` weekly expirations still trading at the mock's clock
  (:func:`~src.utils.market_calendar.listed_weeklies`) × :data:`STRIKES_EACH_SIDE` strikes each
  side of the money on the placeholder's strike grid × calls and puts, with IB's OCC local
  symbols (``"AAPL  261218C00150000"``);
* quotes: the shared Black-Scholes kernel at the stock's last price (else its mid), the
  stock's volatility (flat: no smile), :data:`~src.brokers.ibkr_api.RISK_FREE_RATE`, the time to
  the expiration's 16:00 New York close on the mock's clock; bid/ask 1 % (at least 0.01) around
  the model price.

:func:`seed_universe` gives a mock the placeholder's symbols and starting prices (what the
service's ``mock`` backend answers quotes and chains for).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from src.brokers import translate
from src.brokers.compat import Option as IBOption
from src.brokers.ibkr_api import (
    COMMISSION_PER_CONTRACT,
    MIN_COMMISSION,
    MULTIPLIER,
    RISK_FREE_RATE,
    UNIVERSE,
    occ_symbol,
)
from src.models.pricing import black_scholes
from src.utils.clock import Clock
from src.utils.market_calendar import listed_weeklies, years_to_expiry

LISTED_EXPIRATIONS: Final = 6
STRIKES_EACH_SIDE: Final = 10
DEFAULT_VOL: Final = 0.25

__all__ = ["COMMISSION_PER_CONTRACT", "DEFAULT_VOL", "LISTED_EXPIRATIONS", "MIN_COMMISSION",
           "MULTIPLIER", "RISK_FREE_RATE", "STRIKES_EACH_SIDE", "commission", "is_option",
           "is_wildcard", "listing", "local_symbol", "option_prices", "seed_universe", "spot_of"]


def is_option(contract: Any) -> bool:
    return getattr(contract, "secType", "") in ("OPT", "FOP")


def is_wildcard(contract: Any) -> bool:
    """An option query without a strike or a right (IB answers it with every listing)."""
    strike = translate.finite(getattr(contract, "strike", None))
    return is_option(contract) and (not strike or getattr(contract, "right", "") not in (
        "C", "P", "CALL", "PUT"))


def spot_of(quote: tuple[float | None, float | None, float | None]) -> float | None:
    """The stock's price for option pricing: last, else the bid/ask mid."""
    bid, ask, last = quote
    if last is not None and last > 0:
        return last
    if bid is not None and ask is not None and 0 < bid <= ask:
        return (bid + ask) / 2
    return None


def strike_step(price: float) -> float:
    """The placeholder's strike grid (5 above 100, 2.5 above 25, else 1)."""
    return 5.0 if price >= 100 else 2.5 if price >= 25 else 1.0


def local_symbol(contract: Any) -> str:
    """IB's OCC local symbol of an option contract."""
    expiry = translate.parse_expiry(str(contract.lastTradeDateOrContractMonth))
    return occ_symbol(contract.symbol, expiry, str(contract.right)[:1], float(contract.strike))


def listing(query: Any, spot: float, clock: Clock) -> list[Any]:
    """The option contracts a wildcard ``query`` names (its expiration and right when given),
    unqualified (no conId), with their local symbols."""
    step = strike_step(spot)
    atm = round(spot / step) * step
    strikes = [atm + step * i for i in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1)
               if atm + step * i > 0]
    wanted_expiry = str(getattr(query, "lastTradeDateOrContractMonth", "") or "")
    right = str(getattr(query, "right", "") or "")[:1]
    out = []
    for expiration in listed_weeklies(clock, LISTED_EXPIRATIONS):
        expiry = translate.expiry_str(expiration)
        if wanted_expiry and not expiry.startswith(wanted_expiry):
            continue
        for r in ("C", "P"):
            if right in ("C", "P") and r != right:
                continue
            for strike in strikes:
                c = IBOption(query.symbol, expiry, strike, r, exchange="SMART", currency="USD")
                c.multiplier = str(MULTIPLIER)
                c.tradingClass = query.symbol
                c.localSymbol = local_symbol(c)
                out.append(c)
    return out


def option_prices(contract: Any, spot: float, vol: float, clock: Clock
                  ) -> tuple[float, float, float]:
    """(bid, ask, model price) of an option contract at ``spot`` and ``vol``."""
    expiration: date = translate.parse_expiry(str(contract.lastTradeDateOrContractMonth))
    years = years_to_expiry(expiration, clock)
    price = black_scholes(spot, float(contract.strike), years, vol, RISK_FREE_RATE,
                          str(contract.right)[:1]).price
    half = max(0.01, price * 0.01)
    return max(0.0, round(price - half, 4)), round(price + half, 4), round(price, 4)


def commission(quantity: float) -> float:
    """The placeholder's commission for one execution of ``quantity`` contracts."""
    return max(MIN_COMMISSION, COMMISSION_PER_CONTRACT * abs(quantity))


def seed_universe(mock: Any) -> None:
    """Quote the placeholder's symbols on ``mock`` (last = the starting price, bid/ask ∓0.01,
    the symbol's volatility)."""
    for symbol, (price, vol) in UNIVERSE.items():
        mock.set_quote(symbol, round(price - 0.01, 2), round(price + 0.01, 2), price, vol=vol)
