"""Brokers the trading application can talk to, and the factory that picks one.

``IBKRApi`` is the simulated placeholder (in memory, deterministic); ``IBKRIBInsyncApi`` is the real
Interactive Brokers adapter over ib_insync. Both satisfy :class:`~src.brokers.base.BrokerApi`.

``IBKRIBInsyncApi`` is imported lazily (module ``__getattr__``): ``from src.brokers import
IBKRIBInsyncApi`` works as usual, but an application configured for the placeholder never loads
ib_insync and its asyncio machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from src.brokers.base import BrokerApi
from src.brokers.ibkr_api import IBKRApi
from src.utils.clock import Clock

if TYPE_CHECKING:
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

__all__ = ["BrokerApi", "IBKRApi", "IBKRIBInsyncApi", "get_broker_api"]


def __getattr__(name: str) -> Any:
    if name == "IBKRIBInsyncApi":
        from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

        return IBKRIBInsyncApi
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_broker_api(config: Any, use_ib_insync: bool = True, *,
                   clock: Clock | None = None) -> BrokerApi:
    """``IBKRIBInsyncApi(config)`` (the real adapter) or ``IBKRApi(config)`` (the placeholder);
    ``clock`` (default: the system clock) is what either asks "what day is it"."""
    if use_ib_insync:
        from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

        return IBKRIBInsyncApi(config, clock=clock)
    return IBKRApi(config, clock=clock)
