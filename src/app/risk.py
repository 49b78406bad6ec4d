"""Pre-trade risk checks: the last gate between a signal and the broker.

``RiskManager.check`` refuses (``(False, reason)``) an order that is too big, one that would
exceed the open-order limit, any order on a read-only connection, and any order in live mode
unless ``allow_live`` is set. It reads the broker through the ``BrokerApi`` protocol only.

``check_margin`` (called by the executor once the spread and price are known) refuses an order
whose initial-margin change — IB's what-if, the broker's ``what_if_order`` — exceeds the
account's available funds. ``risk.check_margin``: ``auto`` (default: on for a live account,
off for paper), ``true``, ``false``.
"""

from __future__ import annotations

import copy
import math
import threading
from typing import Any

from src.app.config import ConfigError, setting
from src.app.signals import Signal
from src.brokers.base import FINAL_STATUSES, BrokerApi
from src.models.option import OptionSpread
from src.utils.logger import log_debug, log_info, log_warning

MARGIN_CHECK_CHOICES = ("auto", "true", "false")


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
        check = setting(config, "RISK_CHECK_MARGIN", "auto")
        check = str(check).lower() if isinstance(check, bool) else check
        if check not in MARGIN_CHECK_CHOICES:
            raise ConfigError(f"risk.check_margin: must be one of {list(MARGIN_CHECK_CHOICES)}, "
                              f"got {check!r}")
        self.check_margin_setting: str = check
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

    # -- margin (IB's what-if) -------------------------------------------------------------

    def margin_check_enabled(self) -> bool:
        """``risk.check_margin``: true / false, or for ``auto`` whether the account is live
        (the broker's ``is_live_account()`` when it has one, else ``trading_mode: live``)."""
        if self.check_margin_setting != "auto":
            return self.check_margin_setting == "true"
        is_live = getattr(self.broker, "is_live_account", None)
        if callable(is_live):
            return bool(is_live())
        return self.trading_mode == "live"

    def check_margin(self, symbol: str, direction: str, contracts: int, spread: OptionSpread,
                     price_type: str = "LIMIT",
                     limit_price: float | None = None) -> tuple[bool, str]:
        """``(True, "ok")`` unless the order's initial-margin change exceeds the available
        funds. Nothing is checked (``(True, ...)``) when the check is off; with it on, an order
        whose margin cannot be known (no what-if, an error, no available funds) is refused."""
        if not self.margin_check_enabled():
            return True, "margin not checked (risk.check_margin)"
        what_if = getattr(self.broker, "what_if_order", None)
        if not callable(what_if):
            return False, ("margin check failed: the broker has no what_if_order "
                           "(set risk.check_margin: false to trade without it)")
        preview = what_if(symbol, direction, contracts, spread, price_type, limit_price)
        if not isinstance(preview, dict) or preview.get("error"):
            why = preview.get("error") if isinstance(preview, dict) else repr(preview)
            return False, f"margin check failed: what-if for {symbol}: {why}"
        change = _number(preview.get("init_margin_change"))
        if change is None:
            return False, f"margin check failed: what-if for {symbol} has no initial margin"
        summary = self.broker.get_account_summary()
        available = _number(summary.get("available_funds")) if isinstance(summary, dict) \
            else None
        if available is None:
            why = summary.get("error") if isinstance(summary, dict) else None
            return False, ("margin check failed: available funds unknown"
                           + (f" ({why})" if why else ""))
        if change > available:
            return False, (f"initial margin change {change:,.2f} exceeds available funds "
                           f"{available:,.2f} ({contracts} x {symbol} "
                           f"{getattr(spread, 'spread_type', 'spread')}; risk.check_margin)")
        log_info(f"Margin check passed: initial margin change {change:,.2f} of available "
                 f"funds {available:,.2f}")
        return True, "ok"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
