"""Account summary and positions, from ib_insync's event-maintained state (loop thread only).

ib_insync keeps ``accountValues`` / ``positions`` / ``portfolio`` up to date from the gateway's
account and position streams it subscribes at connect. ``api.positions`` follows the
``positionEvent`` / ``updatePortfolioEvent`` handlers and is rebuilt after every (re)connect and
on every ``get_positions()``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from src.brokers import translate
from src.utils.clock import wall_now
from src.utils.logger import log_info

if TYPE_CHECKING:
    from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi


class AccountService:
    """Translates the account state of ``api.ib`` (every method runs on the loop thread)."""

    def __init__(self, api: IBKRIBInsyncApi) -> None:
        self.api = api
        self.last_value_time: datetime | None = None

    def _mine(self, account: Any) -> bool:
        own = self.api.account_id
        return not own or not isinstance(account, str) or account in ("", own)

    def summary(self) -> dict[str, Any]:
        """The contract's account summary dict."""
        api = self.api
        values = api.ib.accountValues(api.account_id)
        return translate.account_summary(list(values), api.account_id, wall_now(api.clock))

    def rebuild(self) -> dict[str, dict[str, Any]]:
        """Replace ``api.positions`` with the gateway's positions + portfolio; return a copy."""
        api = self.api
        ib = api.ib
        positions = [p for p in _as_list(ib.positions(api.account_id)) if self._mine(p.account)]
        portfolio = [p for p in _as_list(ib.portfolio(api.account_id)) if self._mine(p.account)]
        with api.lock:
            table = translate.positions_table(positions, portfolio, previous=api.positions)
            api.positions.clear()
            api.positions.update(table)
            return {k: dict(v) for k, v in api.positions.items()}

    def on_position(self, item: Any, *, portfolio: bool = False) -> None:
        """``positionEvent`` / ``updatePortfolioEvent``: update one row (zero → removed)."""
        api = self.api
        if not self._mine(getattr(item, "account", "")):
            return
        key = translate.position_key(item.contract)
        with api.lock:
            row = translate.position_row(item, api.positions.get(key), portfolio=portfolio)
            if translate.finite(row["quantity"]) in (None, 0.0):
                api.positions.pop(key, None)
            else:
                api.positions[key] = row
        log_info(
            f"Position update: {key}, {row['quantity']} @ avg cost {row['avg_price']}"
            f" ({'portfolio' if portfolio else 'position'})")

    def on_account_value(self, value: Any) -> None:
        """``accountValueEvent``: values are read from ib_insync's state; remember the time."""
        if self._mine(getattr(value, "account", "")):
            self.last_value_time = wall_now(self.api.clock)


def _as_list(value: Any) -> list[Any]:
    """ib_insync returns lists; test doubles may return anything iterable (or not)."""
    try:
        return list(value)
    except TypeError:
        return []
