"""Market-data permissions: which kind of data a ticker carries, and IB's refusals as clear errors.

Most paper accounts have no market-data subscriptions. IB then refuses a ``reqMktData`` with
354 / 10089 / 10090 / 10168 (not subscribed) or 10197 (a competing live session holds the
data); ib_insync and ib_async end a snapshot at once with an empty ticker and leave a
streaming line registered and silent. The adapter turns the refusal into an error naming the
symbol, IB's code and text, and the setting to change, and raises it at once.

``ibkr.market_data_type`` (sent with ``reqMarketDataType`` on every connect) decides whether
delayed data is acceptable — IB itself serves live data where it is permitted and delayed data
otherwise once type 3 or 4 is set ("If live data is available, it will always be returned
instead of delayed data", https://interactivebrokers.github.io/tws-api/delayed_data.html):

* 1 live only (default), 2 frozen (live, the last value after the close): a symbol without a
  live permission is an error;
* 3 live preferred, delayed allowed; 4 the same, delayed-frozen after the close.

Every quote dict (``data_type``) and ``Option`` (``data_type``) says which kind it is: IB's
``marketDataType`` message for the line, as the client library keeps it in
``Ticker.marketDataType``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Final

from src.brokers.errors import (
    COMPETING_LIVE_SESSION,
    MARKET_DATA_NOT_SUBSCRIBED,
    BrokerError,
    CompetingLiveSession,
    MarketDataNotPermitted,
)

DATA_TYPES: Final[dict[int, str]] = {1: "live", 2: "frozen", 3: "delayed", 4: "delayed_frozen"}
"""IB's market data type ids → the ``data_type`` of a quote / Option."""

SETTING: Final = "ibkr.market_data_type (IBKR_MARKET_DATA_TYPE)"
MAX_REFUSALS: Final = 1000


def data_type(ticker: Any) -> str:
    """The kind of data ``ticker`` carries ("live" when the library has no marketDataType); a
    client-protocol ``Quote`` (or anything with a ``data_type`` name) says it itself."""
    named = getattr(ticker, "data_type", None)
    if isinstance(named, str) and named in DATA_TYPES.values():
        return named
    value = getattr(ticker, "marketDataType", 1)
    if isinstance(value, bool) or not isinstance(value, int):
        return "live"
    return DATA_TYPES.get(value, "live")


def refusal(code: int, message: str, what: str, market_data_type: int) -> BrokerError | None:
    """The error for IB's refusal ``code`` of market data for ``what`` (a symbol or an option's
    local symbol) under the configured type, or None when ``code`` is no refusal."""
    text = f"No market data for {what}: IB error {code}: {message}"
    if code in COMPETING_LIVE_SESSION:
        return CompetingLiveSession(
            f"{text} — the account's live session (TWS, the mobile or web app) holds the market "
            f"data: log it out there, or retry later", code)
    if code not in MARKET_DATA_NOT_SUBSCRIBED:
        return None
    if market_data_type in (1, 2):
        available = code in (10089, 10090) or "delayed market data is available" in message.lower()
        hint = ("live data is not subscribed, delayed data is available" if available
                else "live data is not subscribed")
        hint += (f": set {SETTING} to 3 to accept delayed quotes, or subscribe to the live "
                 f"data in IB Account Management")
    else:
        hint = (f"neither live nor delayed data is permitted ({SETTING} is "
                f"{market_data_type}): subscribe to the data in IB Account Management")
    return MarketDataNotPermitted(f"{text} — {hint}", code)


QUOTE_FIELDS: Final = ("bid", "ask", "last", "bidSize", "askSize", "lastSize", "volume", "high",
                       "low", "close")
GREEKS_FIELDS: Final = ("bidGreeks", "askGreeks", "lastGreeks", "modelGreeks")


def forget_quote(ticker: Any) -> None:
    """Blank the quote of the ticker (``ib.ticker(contract)``, None if none) the client library
    will hand out again for a new line of the same contract (both keep one Ticker per contract
    object): a stream dropped after a refusal would otherwise answer at once with its old,
    stale prices. Call it before ``reqMktData``."""
    if all(isinstance(getattr(ticker, f, None), float) for f in ("bid", "ask", "last")):
        for name in QUOTE_FIELDS:
            if isinstance(getattr(ticker, name, None), float):
                setattr(ticker, name, math.nan)
        for name in GREEKS_FIELDS:
            if hasattr(ticker, name):
                setattr(ticker, name, None)


def label(ticker: Any, fallback: str = "the contract") -> str:
    """A readable name of a ticker's contract (local symbol, else symbol)."""
    contract = getattr(ticker, "contract", None)
    for name in ("localSymbol", "symbol"):
        value = getattr(contract, name, None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return fallback


class Refusals:
    """Refusals of snapshot / option lines by conId, until the request that made them reads
    them (bounded: the oldest are forgotten)."""

    def __init__(self) -> None:
        self._by_con_id: OrderedDict[int, BrokerError] = OrderedDict()

    def add(self, con_id: int, error: BrokerError) -> None:
        self._by_con_id[con_id] = error
        self._by_con_id.move_to_end(con_id)
        while len(self._by_con_id) > MAX_REFUSALS:
            self._by_con_id.popitem(last=False)

    def has(self, con_id: int) -> bool:
        return con_id in self._by_con_id

    def clear(self, con_ids: list[int]) -> None:
        for con_id in con_ids:
            self._by_con_id.pop(con_id, None)

    def take(self, con_ids: list[int]) -> list[BrokerError]:
        """The refusals of ``con_ids`` (forgotten once read)."""
        return [e for e in (self._by_con_id.pop(c, None) for c in con_ids) if e is not None]
