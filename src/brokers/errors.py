"""IB error codes and the adapter's exception tree.

IB reports everything — failures, warnings, farm status, connectivity — through one ``error``
callback carrying a numeric code (https://interactivebrokers.github.io/tws-api/message_codes.html).
This module names those codes in ``Final`` frozensets and maps them onto one exception hierarchy::

    BrokerError(message, code=None)          .code, .retryable
    ├── RetryableError                       try again later (same request may succeed)
    │   ├── ConnectionLost                   socket closed / 1100 / 502 / 504 / 1300
    │   ├── NotConnected  (also ValueError)  the adapter is not connected: nothing was sent
    │   ├── RequestTimeout                   the gateway did not answer in time
    │   ├── PacingViolation                  100 / 162 (pacing) / 101 (too many tickers)
    │   ├── CompetingLiveSession             10197: a live session elsewhere holds the data
    │   └── OrderInterrupted (also RuntimeError) place_order cut by a connection loss / timeout:
    │                                        "Order placement failed: …"; retry with the same
    │                                        order_ref (idempotent) to never get a second order
    └── NonRetryableError                    the same request will fail again
        ├── ContractNotFound                 200
        ├── MarketDataNotPermitted           354 / 10089 / 10090 / 10168: not subscribed
        ├── OrderRejected (also RuntimeError) 201, 103, 110, 161, 10147 …
        │                                    "Order placement failed: …"
        ├── ReadOnlyViolation (also ValueError) orders refused: the adapter is read-only
        ├── LiveTradingNotAllowed (also ValueError) orders refused on a live account
        └── InvalidOrder (also ValueError)   bad arguments, refused before anything is sent

``NotConnected``/``InvalidOrder``/``ReadOnlyViolation``/``LiveTradingNotAllowed`` subclass
``ValueError`` and ``OrderRejected`` subclasses ``RuntimeError`` so that callers written against
the drop-in contract (``ValueError`` / ``RuntimeError``) keep working.
"""

from __future__ import annotations

from typing import Final

from src.brokers.settings_coerce import ConfigError

# --- code tables ------------------------------------------------------------------------------

CONNECTIVITY_LOST: Final = frozenset({1100, 504, 502, 1300, 2110})
"""The link to TWS/IB is gone (1100 IB↔TWS lost, 502 cannot connect, 504 not connected, 1300
socket port reset, 2110 TWS↔server broken)."""
CONNECTIVITY_RESTORED_DATA_LOST: Final = frozenset({1101})
"""Connectivity restored, market data subscriptions lost: resubscribe."""
CONNECTIVITY_RESTORED_DATA_KEPT: Final = frozenset({1102})
"""Connectivity restored, data maintained: nothing to do."""
DATA_FARM_DOWN: Final = frozenset({2103, 2105, 2157})
"""A market-data / HMDS / sec-def farm connection is broken (not a disconnect)."""
DATA_FARM_OK: Final = frozenset({2104, 2106, 2158})
"""A market-data / HMDS / sec-def farm connection is OK."""
PACING: Final = frozenset({100, 162, 420})
"""Pacing violations (100 max rate exceeded, 162 historical pacing, 420 invalid real-time query)."""
MAX_TICKERS: Final = frozenset({101})
"""Max number of market data lines reached."""
CLIENT_ID_IN_USE: Final = frozenset({326})
"""Unable to connect: client id already in use."""
CONTRACT_NOT_FOUND: Final = frozenset({200})
"""No security definition found for the request."""
ORDER_REJECTED: Final = frozenset(
    {103, 104, 105, 106, 107, 109, 110, 111, 113, 116, 117, 118, 135, 161, 201, 203, 10147,
     10148, 10149, 10006, 10005, 382, 383, 387, 388}
)
"""The order (or its cancel) was refused (201 rejected, 103 duplicate id, 110 bad price
increment, 161 cancel of a finished order, 10147 cancel of an unknown order, …)."""
MARKET_DATA_NOT_SUBSCRIBED: Final = frozenset({354, 10089, 10090, 10168})
"""Market data refused: not subscribed (354; 10089 / 10090 "...Delayed market data is
available."; 10168 "...Delayed market data is not enabled.")."""
COMPETING_LIVE_SESSION: Final = frozenset({10197})
"""No market data during a competing live session (the live user logged in elsewhere)."""
ORDER_CANCELLED: Final = frozenset({202})
"""Order cancelled — the confirmation of a cancel, not a failure."""
WARNINGS: Final = frozenset(
    {165, 202, 399, 404, 434, 492, 10167, 2100, 2101, 2102, 2107, 2108, 2109, 2119,
     2137, 2150, 2158, 2168, 2169}
    | set(range(2100, 2200))
)
"""Informational codes (ib_insync logs them as warnings): never end a request as failed."""


def is_warning(code: int) -> bool:
    """True for IB's informational codes (ib_insync treats the same set as warnings)."""
    return code in WARNINGS


# --- exception tree --------------------------------------------------------------------------


class ClientLibraryError(ConfigError):
    """The IB client library chosen by ``ibkr.client_library`` cannot be used here (not
    installed, ib_insync on Python 3.14, or not the one loaded). A settings error (a
    ``ConfigError``, so a ``ValueError``), not a broker error: raised by
    :mod:`src.brokers.compat` at import or when the adapter is built."""


class BrokerError(Exception):
    """Base of every adapter error; ``code`` is IB's error code when there is one."""

    retryable: bool = False

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message


class RetryableError(BrokerError):
    """The same request may succeed later (connectivity, timeouts, pacing)."""

    retryable = True


class NonRetryableError(BrokerError):
    """The same request will fail again (bad contract, rejected order, refused by policy)."""

    retryable = False


class ConnectionLost(RetryableError):
    """The connection to the gateway is gone."""


class NotConnected(RetryableError, ValueError):
    """The adapter is not connected; nothing was sent (a ``ValueError`` per the contract)."""


class RequestTimeout(RetryableError):
    """The gateway did not answer within the request timeout."""


class PacingViolation(RetryableError):
    """IB pacing limit or market-data-line limit hit."""


class CompetingLiveSession(RetryableError):
    """No market data while the account's live session (elsewhere) holds it (10197)."""


class OrderInterrupted(RetryableError, RuntimeError):
    """``place_order`` was cut short by a connection loss or a timeout (not refused).

    Nothing may have reached the gateway, or the order may be live: retry with the same
    ``order_ref`` — a known ref returns the existing order id and sends nothing.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        prefix = "Order placement failed: "
        super().__init__(message if message.startswith(prefix) else prefix + message, code)


class ContractNotFound(NonRetryableError):
    """IB has no security definition for the contract (code 200)."""


class MarketDataNotPermitted(NonRetryableError):
    """IB refused market data: no subscription (354, 10089, 10090, 10168); the message names the
    setting that accepts delayed data (:mod:`src.brokers.md_permissions`)."""


class OrderRejected(NonRetryableError, RuntimeError):
    """The broker refused the order; the message starts with "Order placement failed: "."""

    def __init__(self, message: str, code: int | None = None) -> None:
        prefix = "Order placement failed: "
        super().__init__(message if message.startswith(prefix) else prefix + message, code)


class ReadOnlyViolation(NonRetryableError, ValueError):
    """The adapter is configured read-only: orders and cancels are refused before sending."""


class LiveTradingNotAllowed(NonRetryableError, ValueError):
    """An order on a live account without TRADING_MODE == "live" and ALLOW_LIVE == True."""


class InvalidOrder(NonRetryableError, ValueError):
    """A bad argument, refused before anything is sent; the message names the field."""


def error_from_ib(code: int, message: str) -> BrokerError:
    """The exception for IB error ``code`` (message kept, prefixed with the code)."""
    text = f"IB error {code}: {message}"
    if code in CONNECTIVITY_LOST:
        return ConnectionLost(text, code)
    if code in CLIENT_ID_IN_USE:
        return ConnectionLost(text, code)
    if code in PACING or code in MAX_TICKERS:
        return PacingViolation(text, code)
    if code in CONTRACT_NOT_FOUND:
        return ContractNotFound(text, code)
    if code in ORDER_REJECTED:
        return OrderRejected(text, code)
    if code in MARKET_DATA_NOT_SUBSCRIBED:
        return MarketDataNotPermitted(text, code)
    if code in COMPETING_LIVE_SESSION:
        return CompetingLiveSession(text, code)
    if code in WARNINGS or code in DATA_FARM_DOWN or code in DATA_FARM_OK:
        return RetryableError(text, code)
    return NonRetryableError(text, code)


def from_exception(exc: BaseException) -> BrokerError:
    """Wrap an arbitrary exception raised by ib_insync / asyncio into the tree."""
    if isinstance(exc, BrokerError):
        return exc
    code = getattr(exc, "code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return error_from_ib(code, str(getattr(exc, "message", exc)))
    if isinstance(exc, (TimeoutError,)):
        return RequestTimeout(f"request timed out: {exc}" if str(exc) else "request timed out")
    if isinstance(exc, (ConnectionError, OSError)):
        return ConnectionLost(f"connection error: {exc}")
    return NonRetryableError(str(exc) or type(exc).__name__)
