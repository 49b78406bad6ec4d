"""Market-data permissions of the simulated gateway: which symbols a session may see live,
delayed or not at all, and IB's answer to a ``reqMktData`` without the permission.

Real IB (https://interactivebrokers.github.io/tws-api/market_data_type.html, .../delayed_data.html,
.../message_codes.html) answers by the *requested* market data type (``reqMarketDataType``):

============  ==================================  ==========================================
entitlement   live requested (type 1, 2)           delayed requested (type 3, 4)
============  ==================================  ==========================================
``live``      live ticks                           live ticks ("if live data is available it
                                                   is always returned"), marketDataType 1
``delayed``   10089 (or 354 / 10090): "...Delayed  10167 (a notice), marketDataType 3, the
              market data is available."; silent   delayed ticks 66-76 and 80-83
``none``      354 "Requested market data is not    10168 "...Delayed market data is not
              subscribed."; silent                 enabled."; silent
============  ==================================  ==========================================

A competing live session (the account's live user logged in elsewhere) refuses every request
with 10197. A refused streaming line stays registered and silent (as IB leaves it); a refused
snapshot gets its error and then ``tickSnapshotEnd``. The simulated market never closes, so the
frozen types (2, 4) are served as live (1) / delayed (3) data. Options (and combo legs) inherit
their underlying's entitlement unless given their own (a stock subscription without OPRA).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

LEVELS: Final = ("live", "delayed", "none")

TEXTS: Final[dict[int, str]] = {
    354: "Requested market data is not subscribed.",
    10089: ("Requested market data requires additional subscription for API. See link in "
            "'Market Data Connections' dialog for more details.Delayed market data is "
            "available."),
    10090: ("Part of requested market data is not subscribed. Subscription-independent ticks "
            "are still active.Delayed market data is available."),
    10167: "Requested market data is not subscribed. Displaying delayed market data.",
    10168: "Requested market data is not subscribed. Delayed market data is not enabled.",
    10197: "No market data during competing live session",
}
#: 354's text when delayed data could be had (as IB sent it before 10089 existed).
TEXT_354_DELAYED: Final = ("Requested market data is not subscribed.Delayed market data is "
                           "available.")

#: The refusal codes a level may be configured with (the first is the default).
LIVE_REFUSALS: Final[dict[str, tuple[int, ...]]] = {"delayed": (10089, 354, 10090),
                                                    "none": (354, 10168)}

#: Live tick type -> its delayed twin (tick types 66-76, option computations 80-83).
DELAYED_TICK: Final[dict[int, int]] = {1: 66, 2: 67, 4: 68, 0: 69, 3: 70, 5: 71, 6: 72, 7: 73,
                                       8: 74, 9: 75, 14: 76, 10: 80, 11: 81, 12: 82, 13: 83}


@dataclass(frozen=True)
class Answer:
    """What the gateway does with one reqMktData: the error to send on its reqId (or None), and
    the market data type it serves (1 live, 3 delayed; None: nothing, the line is silent)."""

    error: tuple[int, str] | None
    served: int | None


class Entitlements:
    """Per-symbol market-data permission (default ``live``) and the competing-session switch."""

    def __init__(self, universe_stocks: Iterable[Mapping[str, Any]] = ()) -> None:
        self.levels: dict[str, str] = {}
        self.option_levels: dict[str, str] = {}  # symbol -> its options' level (if not inherited)
        self.codes: dict[str, int] = {}  # symbol -> refusal code for a live request
        self.competing_session = False
        for spec in universe_stocks:
            level = spec.get("market_data")
            if level is not None:
                self.set(str(spec["symbol"]), str(level))

    def set(self, symbol: str, level: str, code: int | None = None,
            options: str | None = None) -> None:
        """``symbol``'s entitlement: ``"live"``, ``"delayed"`` (delayed only) or ``"none"``;
        ``code`` picks IB's refusal of a live request (delayed: 10089, 354 or 10090; none: 354
        or 10168); ``options`` gives its options another level (None: inherited); bad values
        raise ``ValueError`` and change nothing."""
        for value in (level, options if options is not None else level):
            if value not in LEVELS:
                raise ValueError(
                    f"market_data: entitlement must be one of {LEVELS}, got {value!r}")
        allowed = LIVE_REFUSALS.get(level, ())
        if code is not None and code not in allowed:
            raise ValueError(f"market_data: code for {level!r} must be one of {allowed}, "
                             f"got {code!r}")
        key = symbol.upper()
        self.levels[key] = level
        if options is None:
            self.option_levels.pop(key, None)
        else:
            self.option_levels[key] = options
        if code is None:
            self.codes.pop(key, None)
        else:
            self.codes[key] = code

    def level(self, contracts: Iterable[tuple[str, str]]) -> str:
        """The most restrictive entitlement of ``contracts`` ((symbol, secType): one, or a
        combo's legs)."""
        levels = {self._level(s.upper(), t) for s, t in contracts}
        return "none" if "none" in levels else "delayed" if "delayed" in levels else "live"

    def _level(self, symbol: str, sec_type: str) -> str:
        if sec_type == "OPT" and symbol in self.option_levels:
            return self.option_levels[symbol]
        return self.levels.get(symbol, "live")

    def answer(self, contracts: Iterable[tuple[str, str]], requested: int) -> Answer:
        """IB's answer to a reqMktData for ``contracts`` ((symbol, secType): one, or a combo's
        legs) under the session's requested market data type."""
        if self.competing_session:
            return Answer((10197, TEXTS[10197]), None)
        pairs = [(s.upper(), t) for s, t in contracts]
        names = [s for s, _ in pairs]
        level = self.level(pairs)
        delayed_ok = requested in (3, 4)
        # the simulated market is always open: frozen (2, 4) data is the live / delayed data
        if level == "live":
            return Answer(None, 1)
        if level == "delayed" and delayed_ok:
            return Answer((10167, TEXTS[10167]), 3)
        if level == "none" and delayed_ok:
            return Answer((10168, TEXTS[10168]), None)
        allowed = LIVE_REFUSALS[level]
        code = next((self.codes[s] for s in names if self.codes.get(s) in allowed), allowed[0])
        text = TEXT_354_DELAYED if code == 354 and level == "delayed" else TEXTS[code]
        return Answer((code, text), None)
