"""Trade signals: what a signal source (a scanner, a strategy, an operator) asks the Trader to do.

A :class:`Signal` is validated at construction (``ValueError`` naming the field), so the risk
manager and the executor never see a malformed one. Its ``id`` becomes the order's ``order_ref``,
which makes placement idempotent on brokers that support it.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from src.brokers.base import DIRECTIONS, PRICE_TYPES
from src.utils.clock import SYSTEM_CLOCK


def _new_id() -> str:
    return f"sig-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Signal:
    """Open a debit spread on ``symbol``: LONG → bull call, SHORT → bear put."""

    symbol: str
    direction: str
    contracts: int = 1
    price_type: str = "LIMIT"
    limit_price: float | None = None  # None: the spread's mid debit, rounded to 0.05
    id: str = field(default_factory=_new_id)
    created: datetime = field(default_factory=lambda: SYSTEM_CLOCK.now())  # or created=

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ValueError(f"symbol must be a non-empty string, got {self.symbol!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'LONG' or 'SHORT', got {self.direction!r}")
        if (isinstance(self.contracts, bool) or not isinstance(self.contracts, int)
                or self.contracts <= 0):
            raise ValueError(f"contracts must be a positive int, got {self.contracts!r}")
        if self.price_type not in PRICE_TYPES:
            raise ValueError(f"price_type must be 'LIMIT' or 'MARKET', got {self.price_type!r}")
        if self.limit_price is not None:
            lp = self.limit_price
            if (isinstance(lp, bool) or not isinstance(lp, (int, float))
                    or not math.isfinite(lp) or lp <= 0):
                raise ValueError(f"limit_price must be a positive finite number, got {lp!r}")
            if self.price_type == "MARKET":
                raise ValueError("limit_price must be None for MARKET signals")
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"id must be a non-empty string, got {self.id!r}")

    @property
    def spread_type(self) -> str:
        return "BULL_CALL" if self.direction == "LONG" else "BEAR_PUT"
