"""Option-chain fallback: contracts from ``reqSecDefOptParams`` when a wildcard request fails.

The chain normally lists an expiration's contracts with ONE wildcard ``reqContractDetails``
(symbol + expiry, no strike/right). Real IB refuses (error), answers nothing, or truncates such
requests for some underlyings, and test doubles answer junk. When the wildcard answer for an
expiration lacks any of the wanted (strike, right) pairs — the ``chain_strikes`` secdef strikes
nearest the money, calls and puts — the missing pairs are built from the secdef parameters
(``Option(symbol, expiry, strike, right, exchange="SMART", tradingClass, multiplier)``) and
qualified in ONE batched ``qualifyContracts(*contracts)`` request for all expirations, paced
through the :class:`~src.brokers.pacing.BulkPacer` (one slot per contract: ib_insync sends one
contract-details message per contract). Contracts that do not qualify are dropped.

Everything here runs on the adapter's loop thread.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from typing import Any, Final

from src.brokers.compat import Option as IBOption
from src.brokers.compat import qualified
from src.brokers.ib_loop import ib_request
from src.brokers.pacing import BulkPacer

RIGHTS: Final = ("C", "P")


def listed_pairs(contracts: Iterable[Any]) -> set[tuple[float, str]]:
    """(strike, right) of the usable contracts of a wildcard answer (junk entries ignored)."""
    pairs: set[tuple[float, str]] = set()
    for c in contracts:
        right = getattr(c, "right", None)
        strike = getattr(c, "strike", None)
        if right not in RIGHTS or isinstance(strike, bool) \
                or not isinstance(strike, (int, float)) or not math.isfinite(strike):
            continue
        pairs.add((float(strike), right))
    return pairs


def usable(contracts: Iterable[Any]) -> list[Any]:
    """The contracts of a wildcard answer with a real right and strike (others dropped)."""
    out = []
    for c in contracts:
        if listed_pairs([c]):
            out.append(c)
    return out


def missing_pairs(contracts: Iterable[Any], strikes: Iterable[float]) -> list[tuple[float, str]]:
    """The wanted (strike, right) pairs the wildcard answer does not list."""
    listed = listed_pairs(contracts)
    return [(float(s), r) for s in strikes for r in RIGHTS if (float(s), r) not in listed]


def text_field(value: Any) -> str:
    """A secdef text field (tradingClass, multiplier) when it is a real string, else ""."""
    return value if isinstance(value, str) else ""


def build(symbol: str, expiry: str, pairs: Iterable[tuple[float, str]], trading_class: str,
          multiplier: str) -> list[Any]:
    """Fully specified option contracts (SMART, USD) for ``pairs`` of one expiration."""
    return [IBOption(symbol, expiry, strike, right, exchange="SMART", currency="USD",
                     tradingClass=trading_class, multiplier=multiplier)
            for strike, right in pairs]


async def qualify(ib: Any, pacer: BulkPacer, contracts: list[Any], timeout: float) -> list[Any]:
    """Qualify ``contracts`` in ONE ``qualifyContracts(*contracts)`` request; return those that
    qualified (both libraries fill them in place: a conId > 0), in input order."""
    if not contracts:
        return []
    for _ in contracts:
        await pacer.slot()
    result = await asyncio.wait_for(ib_request(ib, "qualifyContracts", *contracts), timeout)
    returned = {id(c) for c in qualified(result)}  # ib_async: None slots for the unqualified
    return [c for c in contracts if id(c) in returned and _has_con_id(c)]


def _has_con_id(contract: Any) -> bool:
    con_id = getattr(contract, "conId", 0)
    return isinstance(con_id, int) and not isinstance(con_id, bool) and con_id > 0
