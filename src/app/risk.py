"""Pre-trade risk checks: the last gate between a signal and the broker.

``RiskManager.check`` refuses (``(False, reason)``) an order that is too big, one that would
exceed the open-order limit, any order on a read-only connection, and any order in live mode
unless ``allow_live`` is set. It reads the broker through the ``BrokerApi`` protocol only.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from src.app.config import setting
from src.app.signals import Signal
from src.brokers.base import FINAL_STATUSES, BrokerApi
from src.utils.logger import log_debug, log_warning


class RiskManager:
    """Order-size and open-order limits, plus the read-only / live-trading guards."""

    def __init__(self, config: object, broker: BrokerApi) -> None:
        self.config = config
        self.broker = broker
        self.max_contracts_per_order: int = setting(config, "MAX_CONTRACTS_PER_ORDER", 10)
        self.max_open_orders: int = setting(config, "MAX_OPEN_ORDERS", 5)
        self.read_only: bool = setting(config, "IBKR_READ_ONLY", False)
        self.trading_mode: str = setting(config, "TRADING_MODE", "paper")
        self.allow_live: bool = setting(config, "ALLOW_LIVE", False)
        self._lock = threading.Lock()
        self._positions: dict[str, dict[str, Any]] = {}

    @property
    def positions(self) -> dict[str, dict[str, Any]]:
        """A copy of the positions from the last :meth:`update_positions_from_broker`."""
        with self._lock:
            return copy.deepcopy(self._positions)

    def update_positions_from_broker(self) -> dict[str, dict[str, Any]]:
        """Refresh the local copy from ``broker.get_positions()``; returns it."""
        fresh = self.broker.get_positions()
        if not isinstance(fresh, dict):
            log_warning(f"Broker returned positions of type {type(fresh).__name__}; ignored")
            return self.positions
        with self._lock:
            self._positions = copy.deepcopy(fresh)
        return self.positions

    def open_order_count(self) -> int:
        """Broker orders not in a final status (Filled, Cancelled, ApiCancelled, Inactive)."""
        with self.broker.lock:
            return sum(1 for o in self.broker.orders.values()
                       if o.get("status") not in FINAL_STATUSES)

    def check(self, signal: Signal | int) -> tuple[bool, str]:
        """``(True, "ok")`` if an order for ``signal`` (or that many contracts) may be sent."""
        contracts = signal.contracts if isinstance(signal, Signal) else signal
        if isinstance(contracts, bool) or not isinstance(contracts, int) or contracts <= 0:
            return False, f"contracts must be a positive int, got {contracts!r}"
        if self.read_only:
            return False, "read-only connection (ibkr.read_only: true): no orders"
        if self.trading_mode == "live" and not self.allow_live:
            return False, "live trading is not allowed (set allow_live: true to permit it)"
        if contracts > self.max_contracts_per_order:
            return False, (f"{contracts} contracts exceeds risk.max_contracts_per_order "
                           f"{self.max_contracts_per_order}")
        open_orders = self.open_order_count()
        if open_orders >= self.max_open_orders:
            return False, (f"{open_orders} open orders: risk.max_open_orders "
                           f"{self.max_open_orders} reached")
        log_debug(f"Risk check passed for {contracts} contracts ({open_orders} open orders)")
        return True, "ok"
