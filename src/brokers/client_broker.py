"""ClientBroker: the host application's broker interface over any ``IBKRClientProtocol``.

The drop-in contract (docs/contract.md) — ``place_order`` with an ``OptionSpread``,
``get_order_status``, ``cancel_order``, ``get_market_data``, ``get_option_chain``,
``get_account_summary``, ``get_positions``, ``connect`` / ``disconnect`` / ``close``,
``connected``, ``account_id``, ``orders`` / ``positions`` / ``lock`` — built on the typed
client calls only, so that it runs on :class:`~src.brokers.mock_client.MockIBKRClient` (the
service's ``mock`` backend, unit tests) as well as on :class:`~src.brokers.ib_client.IBKRClient`:

* ``place_order``: the same argument checks and errors as the other brokers
  (:mod:`~src.brokers.validation`; read-only, connection, live interlock
  (:mod:`~src.brokers.order_rules`)), the legs qualified with ``client.qualify`` (conIds cached),
  the BAG and its order built by :mod:`~src.brokers.translate` (SHORT flips the legs, the BAG is
  always bought at a signed price), sent with ``client.place_order(contract, order)``;
  ``order_ref`` makes it idempotent (a known ref returns its order id, nothing sent);
* ``get_order_status``: polls ``client.order_state`` and ``client.executions`` (executions and
  commissions merged by execId) into the contract's dict;
* ``cancel_order``: ``client.cancel_order``; ``get_market_data``: ``client.request_market_data``
  on the stock; ``get_option_chain``: :mod:`~src.brokers.client_chain` (greeks from the pricing
  kernel: the protocol's Quote has none); ``get_account_summary`` / ``get_positions``:
  ``client.account_values`` / ``client.positions`` through the shared translation.

What it does not do, compared with the full adapter (:class:`~src.brokers.ibkr_ib_insync.
IBKRIBInsyncApi`): no event streaming — order status, fills, commissions and positions are read
when asked (polling), never pushed; positions carry no market price / value / P&L (the
protocol has no portfolio stream: those fields are 0.0); no reconnect reconciliation, no
adoption of orders placed before a restart, no retention sweeps; option chains are requested one
quote at a time (no batching, pacing or day caches); ``high`` / ``low`` of a quote are None
(the protocol's Quote has no such fields); ``get_next_order_id`` is a local counter (order ids
come from ``client.place_order``); no ``raise_errors`` mode. ``serialize=True`` runs every client
call under one lock, for a client that is not thread-safe (the mock).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from src.brokers import client_chain, order_rules, translate, validation
from src.brokers.base import FINAL_STATUSES
from src.brokers.client_protocol import IBKRClientProtocol
from src.brokers.client_types import ConnectionState, Execution, OrderResult
from src.brokers.errors import (
    BrokerError,
    ContractNotFound,
    InvalidOrder,
    LiveTradingNotAllowed,
    NotConnected,
    OrderRejected,
    ReadOnlyViolation,
)
from src.brokers.metrics import AdapterMetrics
from src.brokers.orders_service import new_order_ref
from src.models.option import Option, OptionSpread
from src.utils.clock import SYSTEM_CLOCK, Clock, wall_now
from src.utils.logger import log_error, log_info, log_warning

T = TypeVar("T")
REFUSED_BEFORE_SENDING = (InvalidOrder, ReadOnlyViolation, NotConnected, LiveTradingNotAllowed)


class ClientConnection:
    """What the service's health view reads (``reconnecting``) from the client's state."""

    def __init__(self, client: IBKRClientProtocol) -> None:
        self.client = client

    @property
    def reconnecting(self) -> bool:
        """The client is getting its session back by itself (nobody need call connect())."""
        state = self.client.state
        return state in (ConnectionState.CONNECTING, ConnectionState.RECONNECTING) or (
            state is ConnectionState.LOST and self.client.settings.auto_reconnect)


class ClientBroker:
    """The broker interface over ``client`` (see the module doc). Thread-safe: ``orders`` and
    ``positions`` are written under ``lock``; reads return copies."""

    def __init__(self, client: IBKRClientProtocol, config: Any = None, *,
                 clock: Clock | None = None, serialize: bool = False) -> None:
        self.client = client
        self.config = config
        self.clock: Clock = clock or getattr(client, "clock", None) or SYSTEM_CLOCK
        s = self.settings = client.settings
        self.host, self.port, self.client_id = s.host, s.port, s.client_id
        self.read_only: bool = s.read_only
        self.max_contracts: int = s.max_contracts
        self.trading_mode: str = s.trading_mode
        self.allow_live: bool = s.allow_live
        self.orders: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.last_error: BrokerError | None = None
        self.connection = ClientConnection(client)
        self._refs: dict[str, str] = {}  # orderRef -> order id
        self._ref_locks: dict[str, threading.Lock] = {}
        self._con_ids: dict[tuple[str, str, float, str], int] = {}
        self._local_ids = itertools.count(1)
        self._calls: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if serialize else contextlib.nullcontext())

    # --- session -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    @connected.setter
    def connected(self, value: bool) -> None:
        if value and not self.connected:
            self.connect()
        elif not value:
            self.disconnect()

    @property
    def account_id(self) -> str:
        return self.client.account_id

    @account_id.setter
    def account_id(self, value: str) -> None:
        self.client.account_id = value

    @property
    def metrics(self) -> AdapterMetrics:
        return self.client.metrics

    @property
    def reconnect_count(self) -> int:
        count = getattr(self.client, "reconnect_count", 0)
        return count if isinstance(count, int) else 0

    def _record(self, error: BrokerError) -> None:
        self.last_error = error

    def connect(self) -> bool:
        """True when connected; False (logged) otherwise. Never raises."""
        try:
            with self._calls:
                ok = self.client.connect()
        except Exception as exc:  # noqa: BLE001 - the contract: False
            ok = False
            log_error(f"Failed to connect to IBKR: {exc}")
        if not ok:
            if self.client.last_error is not None:
                self._record(self.client.last_error)
            log_error(f"Failed to connect to IBKR at {self.host}:{self.port}: {self.last_error}")
            return False
        log_info("Successfully connected to IBKR")
        return True

    def disconnect(self) -> None:
        with contextlib.suppress(Exception), self._calls:
            self.client.disconnect()

    def close(self) -> None:
        with contextlib.suppress(Exception), self._calls:
            self.client.close()

    def __enter__(self) -> ClientBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def handle_callbacks(self) -> None:
        """Nothing to pump: every read polls the client."""
        return None

    def is_live_account(self) -> bool:
        return self.client.is_live_account()

    def get_next_order_id(self) -> int:
        """A local counter (the order ids themselves come from ``client.place_order``)."""
        return next(self._local_ids)

    # --- orders ------------------------------------------------------------------------------

    def place_order(self, symbol: str, direction: str, contracts: int,
                    option_spread: OptionSpread, price_type: str = "LIMIT",
                    limit_price: float | None = None, *, order_ref: str | None = None) -> str:
        """Place ``option_spread`` as one BAG order; its order id. Errors as the adapter's:
        ``ValueError`` subclasses before sending, ``OrderRejected`` / ``OrderInterrupted``
        (``RuntimeError``, "Order placement failed: …") after."""
        try:
            sym, dirn, qty, _, kind, price, ref = validation.order_args(
                symbol, direction, contracts, option_spread, price_type, limit_price, order_ref,
                self.max_contracts, self.settings.price_increment_policy)
            spread = validation.as_spread(option_spread, sym)
            if self.read_only:
                raise ReadOnlyViolation("read-only (ibkr.read_only is true): order refused")
            if not self.connected:
                raise NotConnected("Not connected to IBKR")
            order_rules.check_live(self.is_live_account(), self.trading_mode, self.allow_live,
                                   self.account_id, self.port)
        except REFUSED_BEFORE_SENDING as exc:
            self._record(exc)
            log_warning(f"Order refused before sending: {exc}")
            raise
        if ref is None:
            return self._place(sym, dirn, qty, spread, kind, price, new_order_ref(
                spread.spread_type))
        with self.lock:
            ref_lock = self._ref_locks.setdefault(ref, threading.Lock())
        with ref_lock:  # one placement per ref at a time; a known ref is never resent
            with self.lock:
                existing = self._refs.get(ref)
            if existing is not None:
                log_info(f"Order ref {ref} already placed as #{existing}; not resent")
                return existing
            return self._place(sym, dirn, qty, spread, kind, price, ref)

    def _place(self, symbol: str, direction: str, contracts: int, spread: OptionSpread,
               price_type: str, limit_price: float | None, ref: str) -> str:
        legs = translate.leg_specs(spread, direction)
        sent = False
        try:
            with self._calls:
                con_ids = self._qualify(legs)
                bag = translate.build_bag(symbol, zip(legs, con_ids, strict=True))
                order = translate.build_order(price_type, contracts, limit_price, ref,
                                              self.account_id, direction)
                sent = True
                result = self.client.place_order(bag, order)
        except REFUSED_BEFORE_SENDING as exc:  # the client's own interlocks
            self._record(exc)
            log_warning(f"Order refused before sending: {exc}")
            raise
        except Exception as exc:  # noqa: BLE001 - the contract's RuntimeError
            error = exc if isinstance(exc, OrderRejected) else order_rules.order_failure(exc)
            self._record(error)
            if not sent:  # the client counts what it refused itself
                self.metrics.order_errors_total.inc()
            reason = error.message.removeprefix("Order placement failed: ")
            log_error(f"Error placing order: {reason}")
            if error is exc:
                raise
            raise error from exc
        order_id = str(result.order_id)
        now = wall_now(self.clock)
        record = translate.order_record(
            order_id=order_id, symbol=symbol, direction=direction, contracts=contracts,
            spread=spread, price_type=price_type, limit_price=limit_price, order_ref=ref,
            legs=[leg.as_dict(c) for leg, c in zip(legs, con_ids, strict=True)], now=now)
        with self.lock:
            _apply(record, result, now)
            self.orders[order_id] = record
            self._refs[ref] = order_id
        self._merge_executions(order_id)
        log_info(f"Placed order #{order_id}: {symbol} {direction} {contracts} x "
                 f"{spread.spread_type} {price_type}"
                 f"{f' @ {limit_price}' if limit_price is not None else ''} (ref {ref})")
        return order_id

    def what_if_order(self, symbol: str, direction: str, contracts: int,
                      option_spread: OptionSpread, price_type: str = "LIMIT",
                      limit_price: float | None = None) -> dict[str, Any]:
        """The margin and commission of this order, not placed (the client's ``what_if``;
        shape and errors as the adapter's, src/brokers/what_if.py)."""
        sym, dirn, qty, _, kind, price, _ = validation.order_args(
            symbol, direction, contracts, option_spread, price_type, limit_price, None,
            self.max_contracts)
        spread = validation.as_spread(option_spread, sym)
        if not self.connected:
            return {"symbol": sym, "error": "Not connected to IBKR"}
        legs = translate.leg_specs(spread, dirn)
        try:
            with self._calls:
                con_ids = self._qualify(legs)
                bag = translate.build_bag(sym, zip(legs, con_ids, strict=True))
                order = translate.build_order(kind, qty, price, "", self.account_id, dirn)
                result = self.client.what_if(bag, order)
        except Exception as exc:  # noqa: BLE001 - the contract's shape: an error dict
            why = str(exc).removeprefix("Order placement failed: ")
            log_error(f"What-if for {sym} failed: {why}")
            return {"symbol": sym, "error": why}
        return {"symbol": sym, **result.as_dict()}

    def _qualify(self, legs: tuple[translate.LegSpec, ...]) -> list[int]:
        missing = [leg for leg in legs if leg.key() not in self._con_ids]
        if missing:
            try:
                found = self.client.qualify(*(leg.contract() for leg in missing))
            except ContractNotFound as exc:
                raise OrderRejected(str(exc), 200) from exc
            for leg, contract in zip(missing, found, strict=True):
                self._con_ids[leg.key()] = int(contract.conId)
        return [self._con_ids[leg.key()] for leg in legs]

    def _refresh(self, order_id: str) -> None:
        """Poll the client for the order's state and fills (nothing on trouble: the record
        keeps what was last known)."""
        try:
            with self._calls:
                result = self.client.order_state(int(order_id))
        except (BrokerError, ValueError) as exc:
            log_warning(f"Order {order_id}: no state from the client ({exc})")
            return
        with self.lock:
            record = self.orders.get(order_id)
            if record is not None:
                _apply(record, result, wall_now(self.clock))
        self._merge_executions(order_id)

    def _merge_executions(self, order_id: str) -> None:
        try:
            with self._calls:
                mine = [e for e in self.client.executions() if str(e.order_id) == order_id]
        except BrokerError:
            return
        with self.lock:
            record = self.orders.get(order_id)
            if record is None:
                return
            known = {x["execution_id"] for x in record["executions"]}
            charged = {x["execution_id"] for x in record["commissions"]}
            for ex in mine:
                if ex.exec_id not in known:
                    record["executions"].append(translate.execution_row(_fill_view(ex)))
                if ex.commission is not None and ex.exec_id not in charged:
                    record["commissions"].append(translate.commission_row(SimpleNamespace(
                        execId=ex.exec_id, commission=ex.commission, currency="USD",
                        realizedPNL=None)))

    def get_order_status(self, order_id: str) -> dict[str, Any]:
        """The order's dict (polled from the client); ``{}`` for an unknown id."""
        validation.order_id(order_id)
        with self.lock:
            record = self.orders.get(order_id)
            stale = record is not None and (record["status"] not in FINAL_STATUSES or (
                record["filled"] and len(record["commissions"]) < max(
                    1, len(record["executions"]))))
        if stale and self.connected:
            self._refresh(order_id)
        with self.lock:
            record = self.orders.get(order_id)
            return translate.snapshot(record) if record is not None else {}

    def cancel_order(self, order_id: str) -> bool:
        """True when the cancel was sent or confirmed; False if unknown, final or offline."""
        validation.order_id(order_id)
        if self.read_only:
            raise ReadOnlyViolation("read-only (ibkr.read_only is true): cancel refused")
        if not self.connected:
            log_warning("Not connected to IBKR when attempting to cancel order")
            return False
        status = self.get_order_status(order_id).get("status")
        if status is None or status in FINAL_STATUSES:
            log_warning(f"Cannot cancel order {order_id} (status {status or 'unknown'})")
            return False
        try:
            with self._calls:
                result = self.client.cancel_order(int(order_id))
        except BrokerError as exc:
            self._record(exc)
            log_error(f"Error cancelling order {order_id}: {exc}")
            return False
        with self.lock:
            record = self.orders.get(order_id)
            if record is not None:
                _apply(record, result, wall_now(self.clock))
        log_info(f"Order {order_id} after cancel: {result.status}")
        return True

    # --- market data, account ---------------------------------------------------------------

    def _ask(self, what: str, shape: Callable[[str], T], fn: Callable[[], T]) -> T:
        """``fn()`` against the client; on a ``BrokerError`` (not connected included) record
        it, log "Error <what>" and return the contract's ``shape`` for its message."""
        try:
            if not self.connected:
                raise NotConnected("Not connected to IBKR")
            with self._calls:
                return fn()
        except BrokerError as exc:
            self._record(exc)
            log_error(f"Error {what}: {exc}")
            return shape(str(exc) or type(exc).__name__)

    def get_market_data(self, symbol: str) -> dict[str, Any]:
        """The quote of ``symbol``; ``{"symbol", "error"}`` on trouble."""
        validation.symbol(symbol)
        return self._ask(
            f"getting market data for {symbol}", lambda e: {"symbol": symbol, "error": e},
            lambda: translate.market_data(symbol, self.client.request_market_data(
                client_chain.stock(symbol)), wall_now(self.clock)))

    def get_option_chain(self, symbol: str) -> list[Option]:
        """Calls and puts near the money of the nearest expirations; ``[]`` on trouble."""
        validation.symbol(symbol)
        return self._ask(f"getting option chain for {symbol}", lambda e: [],
                         lambda: client_chain.option_chain(self.client, symbol, self.clock))

    def get_account_summary(self) -> dict[str, Any]:
        """The contract's account summary; ``{"error", "timestamp"}`` on trouble."""
        return self._ask(
            "getting account summary",
            lambda e: {"error": e, "timestamp": wall_now(self.clock).isoformat()},
            lambda: translate.account_summary(self.client.account_values(), self.account_id,
                                              wall_now(self.clock)))

    def get_positions(self) -> dict[str, dict[str, Any]]:
        """Positions by symbol (options by local symbol) from ``client.positions()``; ``{}``
        offline or on trouble."""
        own = self.account_id
        held = self._ask("getting positions", lambda e: None, self.client.positions)
        if held is None:
            return {}
        rows = [SimpleNamespace(
            contract=SimpleNamespace(symbol=p.contract.symbol, secType=p.contract.sec_type,
                                     localSymbol=p.contract.local_symbol),
            position=p.quantity, avgCost=p.avg_cost if p.avg_cost is not None else 0.0,
            account=p.account) for p in held if not own or p.account in ("", own)]
        with self.lock:
            table = translate.positions_table(rows, [], previous=self.positions)
            self.positions.clear()
            self.positions.update(table)
            return {k: {**v, "trades": list(v["trades"])} for k, v in self.positions.items()}


def _apply(record: dict[str, Any], result: OrderResult, now: Any) -> None:
    """The client's :class:`OrderResult` into the contract's record (as an ``OrderStatus``)."""
    translate.apply_order_status(record, SimpleNamespace(
        status=result.status, filled=result.filled, remaining=result.remaining,
        avgFillPrice=result.avg_fill_price, permId=result.perm_id), now)
    if record["status"] == "Filled":
        record["filled"] = max(record["filled"] or 0.0, float(record["contracts"]))
        record["remaining"] = 0.0
    if result.error:
        record["error"] = result.error


def _fill_view(ex: Execution) -> Any:
    """An :class:`Execution` as the ib_insync ``Fill`` :func:`translate.execution_row` reads."""
    return SimpleNamespace(
        execution=SimpleNamespace(execId=ex.exec_id, time=ex.time, shares=ex.shares,
                                  price=ex.price, side=ex.side),
        contract=SimpleNamespace(conId=ex.contract.con_id, secType=ex.contract.sec_type))
