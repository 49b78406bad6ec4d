"""Account reporting of the simulated gateway: positions, account updates (single and multi),
account summary — the subscriptions, their snapshots and the pushes after fills and prices.

Subscriptions are per session and die with it (``detach``); the numbers come from
``AccountBook``. Runs on the gateway's loop thread, like ``OrderEngine`` that owns it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING

from src.simulator import order_codec as codec
from src.simulator.account import AccountBook, PositionState, account_value_rows
from src.simulator.order_codec import req_int, req_str
from src.utils.clock import Clock

if TYPE_CHECKING:
    from src.simulator.server import Session

PUSH_INTERVAL = 3.0  # seconds between price-driven portfolio/account pushes


class AccountFeed:
    """reqPositions / reqAccountUpdates / reqAccountUpdatesMulti / reqAccountSummary."""

    def __init__(self, book: AccountBook, accounts: list[str], sessions: dict[int, Session],
                 clock: Clock, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.book = book
        self.accounts = accounts
        self._sessions = sessions  # shared with the engine: session_id -> attached session
        self.clock = clock
        self.monotonic = monotonic
        self._position_subs: set[int] = set()
        self._account_subs: dict[int, str] = {}  # session_id -> account
        self._multi_subs: dict[tuple[int, int], tuple[list[str], str]] = {}
        self._summary_subs: dict[tuple[int, int], str] = {}  # (session_id, reqId) -> tags
        self._last_push: float | None = None

    def handlers(self) -> dict[int, Callable[[Session, list[str]], None]]:
        return {6: self.req_account_updates, 61: self.req_positions,
                62: self.req_account_summary, 63: self.cancel_account_summary,
                64: self.cancel_positions, 76: self.req_account_updates_multi,
                77: self.cancel_account_updates_multi}

    def detach(self, session_id: int) -> None:
        self._position_subs.discard(session_id)
        self._account_subs.pop(session_id, None)
        for key in [k for k in self._multi_subs if k[0] == session_id]:
            del self._multi_subs[key]
        for key in [k for k in self._summary_subs if k[0] == session_id]:
            del self._summary_subs[key]

    def on_prices(self) -> None:
        """Re-value the portfolio for subscribers, at most every PUSH_INTERVAL seconds."""
        now = self.monotonic()
        if self._last_push is None or now - self._last_push >= PUSH_INTERVAL:
            self._last_push = now
            for account in self.accounts:
                self.push_account(account, portfolio=True)

    def req_positions(self, session: Session, fields: list[str]) -> None:
        self._position_subs.add(session.session_id)
        for pos in self.book.all_positions():
            if pos.quantity != 0:
                session.send(*codec.encode_position(pos.account, pos.contract, pos.quantity,
                                                    round(pos.avg_cost, 6)))
        session.send(*codec.encode_position_end())

    def cancel_positions(self, session: Session, fields: list[str]) -> None:
        self._position_subs.discard(session.session_id)

    def req_account_updates(self, session: Session, fields: list[str]) -> None:
        subscribe = req_str(fields, 1) == "1"
        account = req_str(fields, 2) or self.accounts[0]
        if not subscribe:
            self._account_subs.pop(session.session_id, None)
            return
        if account not in self.accounts:
            session.send_error(-1, 321, f"Error validating request: invalid account {account}")
            return
        self._account_subs[session.session_id] = account
        self._send_account(session, account, portfolio=True)
        session.send(*codec.encode_account_download_end(account))

    def _send_account(self, session: Session, account: str, portfolio: bool) -> None:
        for tag, value, currency in account_value_rows(account, self.book.values(account)):
            session.send(*codec.encode_account_value(tag, value, currency, account))
        if portfolio:
            for pos in self.book.get(account).positions.values():
                if pos.quantity != 0:
                    session.send(*self._portfolio_fields(pos))
        now = self.clock.now().astimezone(UTC)
        session.send(*codec.encode_account_time(now.strftime("%H:%M")))

    def _portfolio_fields(self, pos: PositionState) -> list[codec.Field]:
        price, value, unrealized = self.book.valuation(pos)
        return codec.encode_portfolio(pos.contract, pos.quantity, price, value,
                                      round(pos.avg_cost, 6), unrealized,
                                      round(pos.realized_pnl, 2), pos.account)

    def req_account_updates_multi(self, session: Session, fields: list[str]) -> None:
        req_id = req_int(fields, 1, "reqId")
        account, model = req_str(fields, 2), req_str(fields, 3)
        accounts = self.accounts if account in ("", "All") else [account]
        if any(a not in self.accounts for a in accounts):
            session.send_error(req_id, 321, f"Error validating request: invalid account "
                                            f"{account}")
            return
        self._multi_subs[(session.session_id, req_id)] = (accounts, model)
        for a in accounts:
            for tag, value, currency in account_value_rows(a, self.book.values(a)):
                session.send(*codec.encode_account_update_multi(req_id, a, model, tag, value,
                                                                currency))
        session.send(*codec.encode_account_update_multi_end(req_id))

    def cancel_account_updates_multi(self, session: Session, fields: list[str]) -> None:
        self._multi_subs.pop((session.session_id, req_int(fields, 1, "reqId")), None)

    def req_account_summary(self, session: Session, fields: list[str]) -> None:
        req_id = req_int(fields, 1, "reqId")
        tags = {t.strip() for t in req_str(fields, 3).split(",") if t.strip()}
        self._summary_subs[(session.session_id, req_id)] = ",".join(sorted(tags))
        for account in self.accounts:
            values = self.book.values(account)
            if "AccountType" in tags:
                session.send(*codec.encode_account_summary(req_id, account, "AccountType",
                                                           "INDIVIDUAL", ""))
            for tag in sorted(tags & values.keys()):
                session.send(*codec.encode_account_summary(req_id, account, tag,
                                                           f"{values[tag]:.2f}", "USD"))
        session.send(*codec.encode_account_summary_end(req_id))

    def cancel_account_summary(self, session: Session, fields: list[str]) -> None:
        self._summary_subs.pop((session.session_id, req_int(fields, 1, "reqId")), None)

    def _live(self, ids: set[int] | list[int]) -> list[Session]:
        return [self._sessions[i] for i in ids if i in self._sessions
                and not self._sessions[i].closed]

    def push_position(self, account: str, con_id: int) -> None:
        pos = self.book.get(account).positions.get(con_id)
        if pos is None:
            return
        for s in self._live(self._position_subs):
            s.send(*codec.encode_position(account, pos.contract, pos.quantity,
                                          round(pos.avg_cost, 6)))
        for sid, acct in list(self._account_subs.items()):
            if acct == account:
                for s in self._live([sid]):
                    s.send(*self._portfolio_fields(pos))

    def push_account(self, account: str, portfolio: bool = False) -> None:
        for sid, acct in list(self._account_subs.items()):
            if acct == account:
                for s in self._live([sid]):
                    self._send_account(s, account, portfolio)
        rows = None
        for (sid, req_id), (accts, model) in list(self._multi_subs.items()):
            if account not in accts:
                continue
            rows = rows or account_value_rows(account, self.book.values(account))
            for s in self._live([sid]):
                for tag, value, currency in rows:
                    s.send(*codec.encode_account_update_multi(req_id, account, model, tag,
                                                              value, currency))
