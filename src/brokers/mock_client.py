"""MockIBKRClient: a deterministic, in-memory :class:`IBKRClientProtocol` for unit tests.

* Order ids count up from ``first_order_id``; conIds are derived from the contract (stable).
* Fills are scripted per order, in placement order: ``script("immediate" | "resting" |
  "partial" | "rejected", ...)``; unscripted orders rest (``Submitted``) — with
  ``fill_market_orders=True`` an unscripted MARKET order fills at once instead.
* The connection state is set by the test: ``set_state(ConnectionState.LOST)`` …; every call
  that needs the gateway raises ``NotConnected`` unless the state is ``CONNECTED``.
* Errors are injected by IB code — ``inject_error("place_order", 201, "...")`` — and mapped by
  the same table as the real client (:func:`src.brokers.errors.error_from_ib`).
* Quotes are set per symbol (``set_quote``); positions follow the scripted fills.
* Options of a quoted stock are listed (a wildcard ``contract_details``) and priced by the
  Black-Scholes kernel (:mod:`~src.brokers.mock_market`); a BAG (combo) order's fill books one
  execution, with a commission, and one position per leg, like IB.

No threads, no sockets, no clock reads except through the injected clock.
"""

from __future__ import annotations

import copy
import zlib
from collections import deque
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any, Final

from src.brokers.client_types import (
    AccountValue,
    ConnectionState,
    ContractDetailsInfo,
    ContractInfo,
    Execution,
    OrderResult,
    Position,
    Quote,
    WhatIfResult,
)
from src.brokers.errors import (
    BrokerError,
    ContractNotFound,
    InvalidOrder,
    NotConnected,
    OrderRejected,
    ReadOnlyViolation,
    error_from_ib,
)
from src.brokers.metrics import AdapterMetrics
from src.brokers.mock_market import (
    DEFAULT_VOL,
    MULTIPLIER,
    commission,
    is_option,
    is_wildcard,
    listing,
    local_symbol,
    option_prices,
    spot_of,
)
from src.brokers.settings import LIVE_PORTS, PAPER_ACCOUNT_PREFIXES, BrokerSettings
from src.utils.clock import SYSTEM_CLOCK, Clock

FILL_MODES: Final = ("immediate", "resting", "partial", "rejected")


@dataclass(frozen=True, slots=True)
class FillScript:
    """What the mock gateway does with the next order placed."""

    mode: str
    price: float | None = None  # fill price (default: the order's limit, else 1.0)
    quantity: float | None = None  # partial: how much fills (default: half, at least 1)
    code: int = 201  # rejected: the IB code
    message: str = "Order rejected"


class MockIBKRClient:
    """See the module doc. Thread-safe enough for unit tests (no background threads)."""

    def __init__(self, settings: BrokerSettings | None = None, *, first_order_id: int = 1,
                 account_id: str = "DU0000001", clock: Clock = SYSTEM_CLOCK,
                 fill_market_orders: bool = False) -> None:
        self.settings = settings or BrokerSettings()
        self.account_id = self.settings.account_id or account_id
        self.last_error: BrokerError | None = None
        self.metrics = AdapterMetrics()
        self.clock = clock
        self.fill_market_orders = fill_market_orders
        self._state = ConnectionState.DISCONNECTED
        self._next_id = first_order_id
        self._exec_seq = 0
        self._scripts: deque[FillScript] = deque()
        self._errors: dict[str, deque[BrokerError]] = {}
        self._orders: dict[int, OrderResult] = {}
        self._executions: list[Execution] = []
        self._positions: dict[int, Position] = {}
        self._quotes: dict[str, tuple[float | None, float | None, float | None]] = {}
        self._data_types: dict[str, str] = {}
        self._vols: dict[str, float] = {}
        self._contracts: dict[int, ContractInfo] = {}  # conId -> what qualify() answered
        self.subscriptions: dict[int, ContractInfo] = {}
        self.connect_calls = 0
        self.what_if_margin = 500.0  # what_if(): initial margin per unit of quantity
        self.what_if_commission = 1.3  # ... commission per unit
        self.what_if_equity = 100_000.0  # ... equity with loan before
        self.gateway_up = True

    # --- test controls ---------------------------------------------------------------------------

    def set_state(self, state: ConnectionState) -> None:
        self._state = state
        self.metrics.connection_status.set(1 if state is ConnectionState.CONNECTED else 0)

    def script(self, mode: str, **details: Any) -> None:
        """Script the next order's outcome (see :class:`FillScript`)."""
        if mode not in FILL_MODES:
            raise ValueError(f"mode must be one of {FILL_MODES}, got {mode!r}")
        self._scripts.append(FillScript(mode, **details))

    def inject_error(self, method: str, code: int, message: str = "injected") -> None:
        """The next call of ``method`` raises the error IB ``code`` maps to."""
        if not callable(getattr(self, method, None)) or method.startswith("_"):
            raise ValueError(f"no client method {method!r}")
        self._errors.setdefault(method, deque()).append(error_from_ib(code, message))

    def set_quote(self, symbol: str, bid: float | None, ask: float | None,
                  last: float | None, *, vol: float = DEFAULT_VOL,
                  data_type: str = "live") -> None:
        """Quote ``symbol``; its options are priced at ``vol`` (see the module doc) and carry
        its ``data_type`` ("live", "delayed" …)."""
        self._quotes[symbol] = (bid, ask, last)
        self._vols[symbol] = vol
        self._data_types[symbol] = data_type

    # --- protocol: connection ------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    def connect(self) -> bool:
        self.connect_calls += 1
        try:
            self._raise_injected("connect")
        except BrokerError as exc:
            self.last_error = exc
            self.set_state(ConnectionState.DISCONNECTED)
            return False
        if not self.gateway_up:
            self.last_error = error_from_ib(502, "Couldn't connect to TWS")
            self.set_state(ConnectionState.RECONNECTING if self.settings.auto_reconnect
                           else ConnectionState.DISCONNECTED)
            return False
        self.set_state(ConnectionState.CONNECTED)
        return True

    def disconnect(self) -> None:
        self.set_state(ConnectionState.DISCONNECTED)

    def close(self) -> None:
        self.disconnect()

    def is_connected(self) -> bool:
        return self._state is ConnectionState.CONNECTED

    def is_live_account(self) -> bool:
        account = self.account_id or ""
        return self.settings.port in LIVE_PORTS or bool(account) and not account.startswith(
            PAPER_ACCOUNT_PREFIXES)

    # --- protocol: contracts ---------------------------------------------------------------------

    def _gateway(self, method: str) -> None:
        if self._state is not ConnectionState.CONNECTED:
            error = NotConnected(f"Not connected to IBKR ({self._state.value})")
            self.last_error = error
            raise error
        self._raise_injected(method)

    def _raise_injected(self, method: str) -> None:
        queue = self._errors.get(method)
        if queue:
            error = queue.popleft()
            self.last_error = error
            raise error

    @staticmethod
    def con_id_of(contract: Any) -> int:
        """The deterministic conId the mock gives ``contract``."""
        key = "|".join(str(getattr(contract, f, "")) for f in (
            "symbol", "secType", "lastTradeDateOrContractMonth", "strike", "right"))
        return 100_000 + zlib.crc32(key.encode()) % 900_000

    def qualify(self, *contracts: Any) -> list[Any]:
        self._gateway("qualify")
        out = []
        for c in contracts:
            if not getattr(c, "symbol", ""):
                raise ContractNotFound("No security definition found for the request", 200)
            q = copy.deepcopy(c)
            q.conId = getattr(c, "conId", 0) or self.con_id_of(c)
            if is_option(q) and not is_wildcard(q) and not getattr(q, "localSymbol", ""):
                q.localSymbol = local_symbol(q)
            self._contracts[q.conId] = ContractInfo.from_contract(q)
            out.append(q)
        return out

    def contract_details(self, contract: Any) -> list[ContractDetailsInfo]:
        self._gateway("contract_details")
        if is_wildcard(contract):
            spot = spot_of(self._quotes.get(str(getattr(contract, "symbol", "")),
                                            (None, None, None)))
            found = listing(contract, spot, self.clock) if spot is not None else []
            if not found:
                raise ContractNotFound("No security definition found for the request", 200)
            return [ContractDetailsInfo(ContractInfo.from_contract(q), min_tick=0.01)
                    for q in self.qualify(*found)]
        (qualified,) = self.qualify(contract)
        return [ContractDetailsInfo(ContractInfo.from_contract(qualified), min_tick=0.01)]

    # --- protocol: orders --------------------------------------------------------------------

    def place_order(self, contract: Any, order: Any) -> OrderResult:
        if self.settings.read_only:
            raise ReadOnlyViolation("client is read-only (ibkr.read_only): order refused")
        try:
            self._gateway("place_order")
        except BrokerError as exc:
            if not isinstance(exc, NotConnected):
                self.metrics.order_errors_total.inc()
                if not exc.retryable and not isinstance(exc, OrderRejected):
                    raise OrderRejected(str(exc), exc.code) from exc
            raise
        script = self._scripts.popleft() if self._scripts else FillScript(
            "immediate" if self.fill_market_orders and getattr(order, "orderType", "") == "MKT"
            else "resting")
        order_id = self._next_id
        self._next_id += 1
        info = ContractInfo.from_contract(contract)
        if not info.con_id:
            info = replace(info, con_id=self.con_id_of(contract))
        qty = float(getattr(order, "totalQuantity", 0) or 0)
        limit = getattr(order, "lmtPrice", None)
        limit = float(limit) if isinstance(limit, (int, float)) and limit < 1e300 else None
        result = OrderResult(
            order_id=order_id, status="Submitted", contract=info,
            action=str(getattr(order, "action", "")), quantity=qty,
            order_type=str(getattr(order, "orderType", "")), limit_price=limit,
            filled=0.0, remaining=qty, perm_id=order_id + 1_000_000,
            order_ref=str(getattr(order, "orderRef", "") or ""), time=self.clock.now())
        if script.mode == "rejected":
            self._orders[order_id] = replace(result, status="Inactive", error=script.message)
            self.metrics.order_errors_total.inc()
            error = OrderRejected(f"IB error {script.code}: {script.message}", script.code)
            self.last_error = error
            raise error
        self.metrics.orders_total.inc()
        if script.mode in ("immediate", "partial"):
            part = qty if script.mode == "immediate" else (
                script.quantity if script.quantity is not None else max(1.0, qty // 2))
            price = script.price if script.price is not None else (
                limit if limit is not None else self._combo_price(contract) or 1.0)
            result = self._fill(result, part, price, contract)
        self._orders[order_id] = result
        return result

    def what_if(self, contract: Any, order: Any) -> WhatIfResult:
        """A deterministic preview: ``what_if_margin`` initial margin and ``what_if_commission``
        per unit of quantity, on ``what_if_equity`` equity with loan (test-settable)."""
        self._gateway("what_if")
        qty = float(getattr(order, "totalQuantity", 0) or 0)
        init, maint = qty * self.what_if_margin, qty * self.what_if_margin * 0.8
        fee = round(qty * self.what_if_commission, 2)
        equity = self.what_if_equity
        return WhatIfResult(
            init_margin_before=0.0, init_margin_change=init, init_margin_after=init,
            maint_margin_before=0.0, maint_margin_change=maint, maint_margin_after=maint,
            equity_with_loan_before=equity, equity_with_loan_change=-fee,
            equity_with_loan_after=equity - fee, commission=fee, min_commission=fee,
            max_commission=fee, commission_currency="USD")

    def _fill(self, result: OrderResult, quantity: float, price: float,
              contract: Any = None) -> OrderResult:
        signed = quantity if result.action != "SELL" else -quantity
        legs = list(getattr(contract, "comboLegs", None) or [])
        if not legs:
            self._execute(result, result.contract, signed, price)
        for leg in legs:  # IB reports a combo's fills per leg
            info = self._contracts.get(int(getattr(leg, "conId", 0) or 0))
            if info is None:
                info = ContractInfo(int(getattr(leg, "conId", 0) or 0), result.contract.symbol,
                                    "OPT")
            ratio = float(getattr(leg, "ratio", 1) or 1)
            side = 1.0 if getattr(leg, "action", "BUY") == "BUY" else -1.0
            self._execute(result, info, signed * side * ratio, self._leg_price(info),
                          commission(quantity * ratio))
        filled = result.filled + quantity
        remaining = max(result.quantity - filled, 0.0)
        return replace(result, filled=filled, remaining=remaining, avg_fill_price=price,
                       status="Filled" if remaining == 0 else "Submitted")

    def _execute(self, result: OrderResult, info: ContractInfo, signed: float, price: float,
                 fee: float | None = None) -> None:
        """One execution of ``signed`` units of ``info`` at ``price``, and its position."""
        self._exec_seq += 1
        self._executions.append(Execution(
            exec_id=f"mock.{self._exec_seq:06d}", order_id=result.order_id,
            contract=info, side="BOT" if signed > 0 else "SLD", shares=abs(signed),
            price=price, time=self.clock.now(), perm_id=result.perm_id,
            order_ref=result.order_ref, commission=fee))
        held = self._positions.get(info.con_id)
        qty = (held.quantity if held else 0.0) + signed
        cost = price * MULTIPLIER if info.sec_type in ("OPT", "FOP") else price
        self._positions[info.con_id] = Position(self.account_id, info, qty, cost)

    def _combo_price(self, contract: Any) -> float:
        """A combo's net price from its legs' model prices (0.0 for no combo)."""
        total = 0.0
        for leg in getattr(contract, "comboLegs", None) or []:
            info = self._contracts.get(int(getattr(leg, "conId", 0) or 0))
            side = 1.0 if getattr(leg, "action", "BUY") == "BUY" else -1.0
            if info is not None:
                total += side * float(getattr(leg, "ratio", 1) or 1) * self._leg_price(info)
        return round(total, 4)

    def _leg_price(self, info: ContractInfo) -> float:
        """A combo leg's fill price: the option's model price (0.0 for an unquoted stock)."""
        spot = spot_of(self._quotes.get(info.symbol, (None, None, None)))
        if spot is None or not info.strike or info.right not in ("C", "P") or not info.expiry:
            return 0.0
        leg = SimpleNamespace(lastTradeDateOrContractMonth=info.expiry, strike=info.strike,
                              right=info.right)
        return option_prices(leg, spot, self._vols.get(info.symbol, DEFAULT_VOL), self.clock)[2]

    def cancel_order(self, order_id: int) -> OrderResult:
        if self.settings.read_only:
            raise ReadOnlyViolation("client is read-only (ibkr.read_only): cancel refused")
        self._gateway("cancel_order")
        current = self._known(order_id)
        if current.done:
            error = OrderRejected(f"IB error 161: Cancel attempted when order is in state "
                                  f"{current.status}", 161)
            self.last_error = error
            raise error
        cancelled = replace(current, status="Cancelled", time=self.clock.now())
        self._orders[order_id] = cancelled
        return cancelled

    def order_state(self, order_id: int) -> OrderResult:
        return self._known(order_id)

    def _known(self, order_id: int) -> OrderResult:
        result = self._orders.get(order_id)
        if result is None:
            raise InvalidOrder(f"order_id {order_id} is not an order of this client")
        return result

    # --- protocol: market data -------------------------------------------------------------------

    def request_market_data(self, contract: Any) -> Quote:
        self._gateway("request_market_data")
        symbol = str(getattr(contract, "symbol", ""))
        if symbol not in self._quotes:
            raise ContractNotFound(f"No security definition found for {symbol}", 200)
        info = ContractInfo.from_contract(contract)
        if not info.con_id:
            info = replace(info, con_id=self.con_id_of(contract))
        self.subscriptions[info.con_id] = info
        self.metrics.market_data_subscriptions.set(len(self.subscriptions))
        bid, ask, last = self._quotes[symbol]
        spot = spot_of((bid, ask, last))
        if is_option(contract) and not is_wildcard(contract) and spot is not None:
            bid, ask, last = option_prices(contract, spot, self._vols.get(symbol, DEFAULT_VOL),
                                           self.clock)
        return Quote(info, bid, ask, last, self.clock.now(),
                     data_type=self._data_types.get(symbol, "live"))

    def cancel_market_data(self, contract: Any) -> bool:
        con_id = getattr(contract, "conId", 0) or self.con_id_of(contract)
        found = self.subscriptions.pop(con_id, None) is not None
        self.metrics.market_data_subscriptions.set(len(self.subscriptions))
        return found

    # --- protocol: account -----------------------------------------------------------------------

    def executions(self) -> list[Execution]:
        self._gateway("executions")
        return list(self._executions)

    def positions(self) -> list[Position]:
        self._gateway("positions")
        return [p for p in self._positions.values() if p.quantity]

    def account_values(self) -> list[AccountValue]:
        self._gateway("account_values")
        return [AccountValue(self.account_id, "NetLiquidation", "1000000.00", "USD"),
                AccountValue(self.account_id, "AvailableFunds", "1000000.00", "USD")]
