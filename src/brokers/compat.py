"""The one place the project imports its IB client library from: ib_insync or ib_async.

ib_insync 0.9.86 is archived; ib_async 2.x is its maintained fork with the same API (and some
behaviour changes, handled in :mod:`src.brokers.translate` and listed in ``docs/architecture.md``).
The two install the same ``eventkit`` module name, so an environment holds one of them; this
module picks it once, at import:

* ``IBKR_CLIENT_LIBRARY`` (environment) = ``ib_insync`` | ``ib_async`` | ``auto`` (default);
* ``auto`` takes ib_insync when it is importable (not on Python >= 3.14, where its eventkit asks
  for an event loop at import and fails), else ib_async.

The config setting ``ibkr.client_library`` (same choices) is checked against the loaded library by
:func:`require` when the adapter is built: a library that is not installed, ib_insync on Python
3.14, or a mismatch is a :class:`ClientLibraryError` (a ``ValueError``) naming the setting and what
to install, never a traceback from eventkit.

Everything else imports the library's names from here (``from src.brokers.compat import IB,
Stock``) and reads :data:`LIBRARY` / :data:`VERSION` for logs and metrics.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from src.brokers.errors import ClientLibraryError, ContractNotFound

CHOICES: Final = ("auto", "ib_insync", "ib_async")
SETTING: Final = "ibkr.client_library"
ENV_VAR: Final = "IBKR_CLIENT_LIBRARY"
# extras in their normalized spelling: pip < 23.3 ignores "[ib_insync]" (no PEP 685)
INSTALL: Final = {"ib_insync": "pip install 'ibkr-ib-insync-adapter[ib-insync]'",
                  "ib_async": "pip install 'ibkr-ib-insync-adapter[ib-async]'"}
IB_INSYNC_MAX_PYTHON: Final = (3, 13)
"""The newest Python ib_insync 0.9.86 imports on (3.14: eventkit's get_event_loop() raises)."""


def unavailable_reason(name: str, version_info: tuple[int, ...] | None = None,
                       installed: Any = None) -> str | None:
    """Why library ``name`` cannot be used in this interpreter (``None``: it can).

    ``version_info`` and ``installed`` (a ``name -> bool`` callable) are injectable for tests;
    by default the running interpreter and ``importlib.util.find_spec``."""
    vi = tuple(version_info if version_info is not None else sys.version_info[:2])
    is_installed = installed or (lambda n: importlib.util.find_spec(n) is not None)
    if name == "ib_insync" and vi[:2] > IB_INSYNC_MAX_PYTHON:
        return (f"ib_insync (archived) does not run on Python {vi[0]}.{vi[1]}: its eventkit "
                f"needs an event loop at import; use ib_async: set {SETTING}: ib_async "
                f"(or auto) and {INSTALL['ib_async']}")
    if not is_installed(name):
        return f"{name} is not installed: {INSTALL[name]}"
    return None


def choose(requested: str, version_info: tuple[int, ...] | None = None,
           installed: Any = None) -> str:
    """The library to load for ``requested`` (one of :data:`CHOICES`), or ClientLibraryError."""
    req = requested.strip().lower() if isinstance(requested, str) else requested
    if req not in CHOICES:
        raise ClientLibraryError(
            f"{SETTING} ({ENV_VAR}) must be one of {list(CHOICES)}, got {requested!r}")
    if req != "auto":
        reason = unavailable_reason(req, version_info, installed)
        if reason:
            raise ClientLibraryError(f"{SETTING} = {req!r}: {reason}")
        return str(req)
    reasons = []
    for name in ("ib_insync", "ib_async"):
        reason = unavailable_reason(name, version_info, installed)
        if reason is None:
            return name
        reasons.append(reason)
    raise ClientLibraryError(
        f"{SETTING} = 'auto': no IB client library can be used ({'; '.join(reasons)})")


def _load(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # eventkit/asyncio failures at import: say what to do instead
        other = "ib_async" if name == "ib_insync" else "ib_insync"
        raise ClientLibraryError(
            f"{SETTING} = {name!r}: importing {name} failed ({type(exc).__name__}: {exc}); "
            f"use {other} instead ({INSTALL[other]}) and set {SETTING}: {other}") from exc


LIBRARY: Final[str] = choose(os.environ.get(ENV_VAR, "auto") or "auto")
"""The loaded library's name: ``"ib_insync"`` or ``"ib_async"``."""
lib: Final[ModuleType] = _load(LIBRARY)
VERSION: Final[str] = str(getattr(lib, "__version__", "?"))
IS_IB_ASYNC: Final[bool] = LIBRARY == "ib_async"

client_module: Final[ModuleType] = importlib.import_module(f"{LIBRARY}.client")
decoder_module: Final[ModuleType] = importlib.import_module(f"{LIBRARY}.decoder")
eventkit: Final[ModuleType] = importlib.import_module("eventkit")

# The names the project uses. mypy reads ib_insync's types (its environment holds ib_insync);
# at run time they are the loaded library's classes.
if TYPE_CHECKING:
    from eventkit import Event
    from ib_insync import (
        IB,
        AccountValue,
        Bag,
        ComboLeg,
        CommissionReport,
        Contract,
        ContractDetails,
        Execution,
        Fill,
        LimitOrder,
        MarketOrder,
        Option,
        OptionChain,
        OptionComputation,
        Order,
        OrderComboLeg,
        OrderStatus,
        PortfolioItem,
        Position,
        PriceCondition,
        Stock,
        TagValue,
        Ticker,
        Trade,
        util,
    )
    from ib_insync.client import Client
    from ib_insync.decoder import Decoder
else:
    IB = lib.IB
    AccountValue = lib.AccountValue
    Bag = lib.Bag
    ComboLeg = lib.ComboLeg
    CommissionReport = lib.CommissionReport
    Contract = lib.Contract
    ContractDetails = lib.ContractDetails
    Execution = lib.Execution
    Fill = lib.Fill
    LimitOrder = lib.LimitOrder
    MarketOrder = lib.MarketOrder
    Option = lib.Option
    OptionChain = lib.OptionChain
    OptionComputation = lib.OptionComputation
    Order = lib.Order
    OrderComboLeg = lib.OrderComboLeg
    OrderStatus = lib.OrderStatus
    PortfolioItem = lib.PortfolioItem
    Position = lib.Position
    PriceCondition = lib.PriceCondition
    Stock = lib.Stock
    TagValue = lib.TagValue
    Ticker = lib.Ticker
    Trade = lib.Trade
    util = lib.util
    Client = client_module.Client
    Decoder = decoder_module.Decoder
    Event = eventkit.Event

# --- the libraries' differences (pure) --------------------------------------------------

MAP_ORDER_STATUS: Final[Mapping[str, str | None]] = {
    # IB's order states (both libraries): kept as they are
    "PendingSubmit": "PendingSubmit", "ApiPending": "ApiPending", "PreSubmitted": "PreSubmitted",
    "Submitted": "Submitted", "PendingCancel": "PendingCancel", "ApiCancelled": "ApiCancelled",
    "Cancelled": "Cancelled", "Filled": "Filled", "Inactive": "Inactive",
    # ib_async only, set by the library, not by IB: the order keeps its previous state
    "ValidationError": None,  # a warning (399, 404, 2100-2199 …) on a live order
    "ApiUpdate": None,
}
"""Library order status → the contract's status (``None``: unchanged). Anything else is passed
through as IB sent it."""


def contract_status(status: str, previous: str = "PendingSubmit") -> str:
    """The contract's order status for the library's ``status`` (see MAP_ORDER_STATUS)."""
    mapped = MAP_ORDER_STATUS.get(status, status)
    return previous if mapped is None else mapped


def qualified(results: Any) -> list[Any]:
    """``qualifyContracts``' answer → only the qualified contracts, in order.

    ib_insync leaves out a contract it cannot qualify; ib_async 2.x keeps its slot, as ``None``
    (unknown or ambiguous) or as a list of candidates (``returnAll=True``)."""
    if results is None:
        return []
    return [c for c in results if c is not None and not isinstance(c, list | tuple)]


def utc_time(value: Any) -> Any:
    """An execution time → UTC. ib_async converts it to ``IBDefaults.timezone`` (configurable,
    UTC by default), ib_insync to UTC; a naive time or a non-datetime is kept as it is."""
    if value.__class__ is datetime and value.tzinfo is UTC:  # the usual case: as it is
        return value
    if not isinstance(value, datetime) or value.tzinfo is None:
        return value
    return value.astimezone(UTC)



def require_con_id(contract: Any) -> None:
    """Market data is requested for qualified contracts only, on both libraries.

    ib_async keys its tickers by ``hash(contract)`` (the conId: two Contract objects of one
    instrument share a Ticker) and raises ``ValueError`` for a contract without a conId;
    ib_insync keys them by ``id(contract)`` and sends anything. Checked here, before anything is
    sent: ``ContractNotFound`` (IB's 200) for a conId <= 0 (a BAG has none and is exempt)."""
    con_id = getattr(contract, "conId", None)
    if (isinstance(con_id, int) and not isinstance(con_id, bool) and con_id <= 0
            and getattr(contract, "secType", "") != "BAG"):
        raise ContractNotFound(
            f"contract not qualified (no conId): {getattr(contract, 'symbol', contract)}", 200)

ORDER_CANCELLED_LOG: Final = "Error 202,"


class CancelConfirmationLevel(logging.Filter):
    """IB's 202 ("Order Canceled") is the normal answer to a cancel. ib_insync logs it at INFO
    (a warning code); ib_async 2.x logs it at ERROR (and marks the trade Cancelled itself).
    This filter, on ib_async's wrapper logger, logs it at INFO again, so an ERROR from the client
    library always means something went wrong, on both libraries."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith(ORDER_CANCELLED_LOG):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


CANCEL_CONFIRMATION_FILTER: Final = CancelConfirmationLevel()
if IS_IB_ASYNC:
    logging.getLogger("ib_async.wrapper").addFilter(CANCEL_CONFIRMATION_FILTER)

def require(setting: Any) -> str:
    """Check the config value of ``ibkr.client_library`` against the loaded library.

    ``None``/missing means ``auto``. Returns :data:`LIBRARY`; raises ClientLibraryError when the
    setting names a library that is not installed, cannot run here, or is not the one loaded
    (both installed: the environment variable picks at import)."""
    value = "auto" if setting is None else setting
    if not isinstance(value, str) or value.strip().lower() not in CHOICES:
        raise ClientLibraryError(f"{SETTING} must be one of {list(CHOICES)}, got {setting!r}")
    want = value.strip().lower()
    if want in ("auto", LIBRARY):
        return LIBRARY
    reason = unavailable_reason(want)
    if reason:
        raise ClientLibraryError(f"{SETTING} = {want!r}: {reason}")
    raise ClientLibraryError(
        f"{SETTING} = {want!r} but {LIBRARY} is loaded (both are installed, which they must not "
        f"be: they share the eventkit module); set {ENV_VAR}={want} before start, or {SETTING}: "
        f"auto")


__all__ = [
    "CHOICES", "LIBRARY", "VERSION", "IS_IB_ASYNC", "ClientLibraryError", "choose", "require",
    "unavailable_reason", "MAP_ORDER_STATUS", "contract_status", "qualified", "utc_time",
    "require_con_id",
    "IB", "AccountValue", "Bag", "ComboLeg", "CommissionReport", "Contract", "ContractDetails",
    "Execution", "Fill", "LimitOrder", "MarketOrder", "Option", "OptionChain",
    "OptionComputation", "Order", "OrderComboLeg", "OrderStatus", "PortfolioItem", "Position",
    "PriceCondition", "Stock", "TagValue", "Ticker", "Trade", "util", "Client", "Decoder",
    "Event",
]
