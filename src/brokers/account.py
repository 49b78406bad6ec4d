"""Account summary and positions, from ib_insync's event-maintained state (loop thread only).

ib_insync keeps ``accountValues`` / ``positions`` / ``portfolio`` up to date from the gateway's
account and position streams it subscribes at connect. ``state.positions`` follows the
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
    from src.brokers.ib_client import IBKRClient
    from src.brokers.state import AdapterState


class AccountService:
    """Translates the account state of ``client.ib`` (every method runs on the loop thread);
    writes ``state.positions`` under ``state.lock``."""

    def __init__(self, client: IBKRClient, state: AdapterState) -> None:
        self.client = client
        self.state = state
        self.last_value_time: datetime | None = None

    def _mine(self, account: Any) -> bool:
        own = self.client.account_id
        return not own or not isinstance(account, str) or account in ("", own)

    def summary(self) -> dict[str, Any]:
        """The contract's account summary dict."""
        client = self.client
        values = client.ib.accountValues(client.account_id)
        return translate.account_summary(list(values), client.account_id,
                                         wall_now(client.clock))

    def rebuild(self) -> dict[str, dict[str, Any]]:
        """Replace ``state.positions`` with the gateway's positions + portfolio; return a copy."""
        account, state = self.client.account_id, self.state
        ib = self.client.ib
        positions = [p for p in _as_list(ib.positions(account)) if self._mine(p.account)]
        portfolio = [p for p in _as_list(ib.portfolio(account)) if self._mine(p.account)]
        with state.lock:
            table = translate.positions_table(positions, portfolio, previous=state.positions)
            state.positions.clear()
            state.positions.update(table)
            return {k: dict(v) for k, v in state.positions.items()}

    def on_position(self, item: Any, *, portfolio: bool = False) -> None:
        """``positionEvent`` / ``updatePortfolioEvent``: update one row (zero → removed)."""
        state = self.state
        if not self._mine(getattr(item, "account", "")):
            return
        key = translate.position_key(item.contract)
        with state.lock:
            row = translate.position_row(item, state.positions.get(key), portfolio=portfolio)
            if translate.finite(row["quantity"]) in (None, 0.0):
                state.positions.pop(key, None)
            else:
                state.positions[key] = row
        log_info(
            f"Position update: {key}, {row['quantity']} @ avg cost {row['avg_price']}"
            f" ({'portfolio' if portfolio else 'position'})")

    def on_portfolio(self, item: Any) -> None:
        """``updatePortfolioEvent``: one row with market price / value / P&L."""
        self.on_position(item, portfolio=True)

    def on_account_value(self, value: Any) -> None:
        """``accountValueEvent``: values are read from ib_insync's state; remember the time."""
        if self._mine(getattr(value, "account", "")):
            self.last_value_time = wall_now(self.client.clock)


def _as_list(value: Any) -> list[Any]:
    """ib_insync returns lists; test doubles may return anything iterable (or not)."""
    try:
        return list(value)
    except TypeError:
        return []
