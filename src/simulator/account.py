"""Account book of the simulated gateway: positions, cash, realized PnL and IB-style values.

Pure bookkeeping on the loop thread (no I/O): ``OrderEngine`` applies executions here and
encodes the results. Position avgCost follows IB: price × multiplier, commission included.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Protocol

from src.simulator.types import SimContract


class MarketView(Protocol):
    def contract(self, con_id: int) -> SimContract | None: ...
    def resolve(self, c: SimContract) -> SimContract | None: ...
    def quote(self, con_id: int) -> tuple[float, float, float]: ...
    def mid(self, con_id: int) -> float: ...
    def underlying_price(self, symbol: str) -> float: ...


def multiplier_of(c: SimContract) -> float:
    try:
        return float(c.multiplier) if c.multiplier else 1.0
    except ValueError:
        return 1.0


@dataclass
class PositionState:
    account: str
    contract: SimContract
    quantity: float = 0.0
    avg_cost: float = 0.0  # per unit, × multiplier, commission included (IB's avgCost)
    realized_pnl: float = 0.0


@dataclass
class AccountState:
    account: str
    cash: float
    realized_pnl: float = 0.0
    commissions: float = 0.0
    positions: dict[int, PositionState] = field(default_factory=dict)


class AccountBook:
    """Positions and cash per account; valuations from the market's marks."""

    def __init__(self, market: MarketView, accounts: list[str], starting_cash: float) -> None:
        if not accounts:
            raise ValueError("accounts: at least one account is required")
        self._market = market
        self.accounts: dict[str, AccountState] = {
            a: AccountState(a, starting_cash) for a in accounts}

    def get(self, account: str) -> AccountState:
        try:
            return self.accounts[account]
        except KeyError:
            raise ValueError(f"account: unknown account {account!r}") from None

    def apply_execution(self, account: str, contract: SimContract, side: str, shares: float,
                        price: float, commission: float) -> float | None:
        """Book one execution; returns the realized PnL of its closing part (None if none)."""
        acct = self.get(account)
        mult = multiplier_of(contract)
        signed = shares if side == "BOT" else -shares
        pos = acct.positions.get(contract.con_id)
        if pos is None:
            pos = acct.positions[contract.con_id] = PositionState(account, contract)
        acct.cash -= signed * price * mult + commission
        acct.commissions += commission
        old = pos.quantity
        realized: float | None = None
        if old == 0 or (old > 0) == (signed > 0):
            total_cost = old * pos.avg_cost + signed * price * mult + commission
            pos.quantity = old + signed
            pos.avg_cost = total_cost / pos.quantity
        else:
            closing = min(abs(old), abs(signed))
            direction = 1.0 if old > 0 else -1.0
            close_commission = commission * closing / abs(signed)
            realized = direction * closing * (price * mult - pos.avg_cost) - close_commission
            pos.realized_pnl += realized
            acct.realized_pnl += realized
            pos.quantity = old + signed
            if pos.quantity == 0:
                pos.avg_cost = 0.0
            elif (pos.quantity > 0) != (old > 0):  # flipped: remainder opens at this price
                opening = abs(pos.quantity)
                pos.avg_cost = (price * mult * opening + commission - close_commission) / opening
        return round(realized, 6) if realized is not None else None

    def what_if(self, account: str,
                executions: list[tuple[SimContract, str, float, float]],
                commission: float) -> tuple[dict[str, float], dict[str, float]]:
        """Account values (before, after) the executions (contract, side, shares, price),
        computed on a scratch copy: the book itself is unchanged."""
        before = self.values(account)
        saved = self.get(account)
        self.accounts[account] = copy.deepcopy(saved)
        try:
            for i, (contract, side, shares, price) in enumerate(executions):
                self.apply_execution(account, contract, side, shares, price,
                                     commission if i == 0 else 0.0)
            after = self.values(account)
        finally:
            self.accounts[account] = saved
        return before, after

    def set_position(self, account: str, contract: SimContract, quantity: float,
                     avg_cost: float) -> PositionState:
        acct = self.get(account)
        pos = acct.positions.get(contract.con_id)
        if pos is None:
            pos = acct.positions[contract.con_id] = PositionState(account, contract)
        pos.quantity = quantity
        pos.avg_cost = avg_cost if quantity else 0.0
        return pos

    def all_positions(self) -> list[PositionState]:
        return [p for st in self.accounts.values() for p in st.positions.values()]

    def mark(self, con_id: int) -> float:
        try:
            return float(self._market.mid(con_id))
        except (KeyError, ValueError, LookupError):
            return 0.0

    def valuation(self, pos: PositionState) -> tuple[float, float, float]:
        """(marketPrice, marketValue, unrealizedPNL) of one position."""
        price = self.mark(pos.contract.con_id)
        value = pos.quantity * price * multiplier_of(pos.contract)
        unrealized = value - pos.quantity * pos.avg_cost
        return round(price, 6), round(value, 2), round(unrealized, 2)

    def values(self, account: str) -> dict[str, float]:
        """Numeric account values (USD), IB tag names."""
        acct = self.get(account)
        gross = stock_value = option_value = unrealized = init = maint = 0.0
        for pos in acct.positions.values():
            if pos.quantity == 0:
                continue
            _, value, upnl = self.valuation(pos)
            unrealized += upnl
            gross += abs(value)
            if pos.contract.sec_type == "OPT":
                option_value += value
                if pos.quantity < 0:  # short option: premium + 20% of the underlying
                    under = self._underlying(pos.contract)
                    req = abs(value) + 0.2 * under * multiplier_of(pos.contract) * abs(
                        pos.quantity)
                    init += req
                    maint += req
            else:
                stock_value += value
                init += 0.5 * abs(value) if pos.quantity < 0 else 0.25 * abs(value)
                maint += 0.3 * abs(value) if pos.quantity < 0 else 0.25 * abs(value)
        net_liq = acct.cash + stock_value + option_value
        equity_with_loan = acct.cash + stock_value + min(option_value, 0.0)
        available = equity_with_loan - init
        excess = equity_with_loan - maint
        return {
            "NetLiquidation": net_liq, "TotalCashValue": acct.cash, "CashBalance": acct.cash,
            "EquityWithLoanValue": equity_with_loan, "BuyingPower": max(available, 0.0) * 4,
            "AvailableFunds": available, "ExcessLiquidity": excess, "InitMarginReq": init,
            "MaintMarginReq": maint, "FullInitMarginReq": init, "FullMaintMarginReq": maint,
            "FullAvailableFunds": available, "FullExcessLiquidity": excess,
            "GrossPositionValue": gross, "StockMarketValue": stock_value,
            "OptionMarketValue": option_value, "UnrealizedPnL": unrealized,
            "RealizedPnL": acct.realized_pnl,
        }

    def _underlying(self, c: SimContract) -> float:
        try:
            return float(self._market.underlying_price(c.symbol))
        except (KeyError, ValueError, LookupError):
            return 0.0


# tags IB also reports in BASE currency (per updateAccountValue)
BASE_TAGS = ("CashBalance", "RealizedPnL", "UnrealizedPnL", "NetLiquidationByCurrency",
             "TotalCashBalance", "StockMarketValue", "OptionMarketValue")


def account_value_rows(account: str, values: dict[str, float]) -> list[tuple[str, str, str]]:
    """(tag, value, currency) rows as updateAccountValue sends them."""
    rows: list[tuple[str, str, str]] = [
        ("AccountCode", account, ""), ("AccountType", "INDIVIDUAL", ""),
        ("Currency", "USD", "USD"), ("Currency", "BASE", "BASE"),
        ("DayTradesRemaining", "-1", ""), ("ExchangeRate", "1.00", "USD"),
        ("ExchangeRate", "1.00", "BASE"),
    ]
    by_currency = dict(values)
    by_currency["NetLiquidationByCurrency"] = values["NetLiquidation"]
    by_currency["TotalCashBalance"] = values["CashBalance"]
    for tag, value in sorted(by_currency.items()):
        text = f"{value:.2f}"
        rows.append((tag, text, "USD"))
        if tag in BASE_TAGS:
            rows.append((tag, text, "BASE"))
    return rows
