"""Order engine of the simulated gateway: matching, fills, order/execution/account reporting.

Runs on the gateway's loop thread (no locks). Orders, executions and positions are the
gateway's state: they survive session detach/attach; subscriptions die with their session.
Wire layouts come from ``order_codec``; positions/cash/valuations from ``account``.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from src.simulator import cancel_races, increments
from src.simulator import order_codec as codec
from src.simulator.account import AccountBook, MarketView, PositionState
from src.simulator.account_feed import AccountFeed
from src.simulator.fills import Correction, FillMaker, FillRules, send_deferred
from src.simulator.order_codec import req_int as _int
from src.simulator.order_codec import req_str as _str
from src.simulator.types import OrderRequest, SimContract, SimFill, SimOrder
from src.utils.clock import NEW_YORK, SYSTEM_CLOCK, Clock, trading_date
from src.utils.logger import log_debug, log_warning

FINAL_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})
BAG_CON_ID = 28812380  # the conId IB reports for every BAG contract
_PERM_ID_BASE = 1_380_000_000


if TYPE_CHECKING:  # the server's Session: client_id, server_version, session_id, closed,
    # send(*fields), send_error(req_id, code, message) — tests pass any look-alike
    from src.simulator.server import Session

Handler = Callable[["Session", list[str]], None]


class OrderEngine:
    """The gateway's orders, executions, positions and account values (see the seam doc)."""

    def __init__(self, market: MarketView, accounts: list[str], *,
                 commission_per_contract: float = 0.65, min_commission: float = 1.0,
                 starting_cash: float = 1_000_000.0,
                 clock: Clock | None = None,
                 monotonic: Callable[[], float] = _time.monotonic) -> None:
        self.market = market
        self.accounts = list(accounts)
        self.book = AccountBook(market, self.accounts, starting_cash)
        self.commission_per_contract = commission_per_contract
        self.commission_per_share = 0.005
        self.min_commission = min_commission
        # Timestamps and "today" come from the clock (default: the market's); push intervals are
        # durations and use ``monotonic``.
        self.clock: Clock = clock or getattr(market, "clock", None) or SYSTEM_CLOCK
        self.market_open = True
        self.orders: dict[int, SimOrder] = {}  # by permId
        self.fills: list[SimFill] = []
        self._by_key: dict[tuple[int, int], int] = {}  # (clientId, orderId) -> permId
        self._max_order_id: dict[int, int] = {}
        self._next_perm = _PERM_ID_BASE
        self._exec_seq = 0
        self._sessions: dict[int, Session] = {}
        self._auto_bind: set[int] = set()
        self.feed = AccountFeed(self.book, self.accounts, self._sessions, self.clock, monotonic)
        self.fill_rules = FillRules(seed=int(getattr(market, "seed", 0) or 0))
        self.fill_maker = FillMaker()
        self._corrected: set[int] = set()  # permIds whose first slice was corrected
        self.races = cancel_races.ReportHold()  # reports in flight, the cancel race, notices
        self.enforce_increments = True  # limit prices off the minimum increment get 110
        self.force_110 = 0  # the next N new orders get 110 whatever their price

    # ------------------------------------------------------------ seam API
    def handlers(self) -> dict[int, Handler]:
        return {3: self._place_order, 4: self._cancel_order, 5: self._req_open_orders,
                7: self._req_executions, 15: self._req_auto_open_orders,
                16: self._req_all_open_orders, 58: self._req_global_cancel,
                99: self._req_completed_orders, **self.feed.handlers()}

    def attach(self, session: Session) -> None:
        self._sessions[session.session_id] = session

    def detach(self, session: Session) -> None:
        sid = session.session_id
        self._sessions.pop(sid, None)
        self._auto_bind.discard(sid)
        self.feed.detach(sid)

    def next_order_id(self, client_id: int) -> int:
        return self._max_order_id.get(client_id, 0) + 1

    @property
    def positions(self) -> dict[tuple[str, int], PositionState]:
        return {(a, cid): p for a, st in self.book.accounts.items()
                for cid, p in st.positions.items()}

    def account_values(self, account: str) -> dict[str, str]:
        return {k: f"{v:.2f}" for k, v in self.book.values(account).items()}

    def inject_position(self, account: str, con_id: int, quantity: float,
                        avg_cost: float) -> None:
        contract = self.market.contract(con_id)
        if contract is None:
            raise ValueError(f"con_id: unknown contract {con_id}")
        self.book.set_position(account, contract, quantity, avg_cost)
        self.feed.push_position(account, con_id)
        self.feed.push_account(account)

    def on_prices(self) -> None:
        if self.fill_maker.pending or self.fill_maker.late:
            send_deferred(self)
        for order in list(self.orders.values()):
            if order.status not in FINAL_STATUSES:
                self._try_fill(order)
        self.feed.on_prices()

    # ------------------------------------------------------------ placing
    def _place_order(self, session: Session, fields: list[str]) -> None:
        try:
            req = codec.decode_place_order(fields, session.server_version)
        except ValueError as exc:
            order_id = int(fields[0]) if fields and fields[0].lstrip("-").isdigit() else -1
            session.send_error(order_id, 321, f"Error validating request.-'bN' : cause - {exc}")
            return
        req.client_id = session.client_id
        cid, oid = session.client_id, req.order_id
        self._max_order_id[cid] = max(self._max_order_id.get(cid, 0), oid)
        perm = self._by_key.get((cid, oid))
        if perm is not None:
            existing = self.orders[perm]
            if existing.status in FINAL_STATUSES:
                session.send_error(oid, 103, "Duplicate order id")
                return
            self._modify(session, existing, req)
            return
        problem = self._validate(req)
        if req.what_if:  # margin preview only: never becomes an order
            if problem is not None:
                session.send_error(oid, 201, f"Order rejected - reason:{problem}")
            else:
                self._what_if(session, req)
            return
        if self._price_error(req):  # IB does not accept the order: no order, no status
            session.send_error(oid, increments.ERROR_110, increments.TEXT_110)
            return
        self._next_perm += 1
        order = SimOrder(request=req, perm_id=self._next_perm, client_id=cid,
                         status="PreSubmitted", remaining=req.total_quantity)
        self.orders[order.perm_id] = order
        self._by_key[(cid, oid)] = order.perm_id
        if problem is not None:
            order.status = "Inactive"
            self._finalize(order, "Inactive")
            session.send_error(oid, 201, f"Order rejected - reason:{problem}")
            self._send_to_owner(order, codec.encode_order_status(order))
            return
        order.status = "Submitted"
        log_debug(f"sim order {oid} perm {order.perm_id} accepted: {req.action} "
                  f"{req.total_quantity} {req.contract.symbol} {req.order_type}")
        if self.fill_rules.exec_before_open_order:  # a fill now reaches the client first
            order.announced = False
            self._try_fill(order)
            if not order.announced:
                self._announce(order)
            return
        self._send_open_order(order)
        self._send_to_owner(order, codec.encode_order_status(order))
        for code in self.races.place_notices:
            self.send_notice(order, code)
        self._try_fill(order)

    def _validate(self, req: OrderRequest) -> str | None:
        """Resolve the contract in place; the reason for rejection, or None."""
        if not self.market_open:
            return "The market is closed"
        if req.action not in ("BUY", "SELL"):
            return f"Invalid action {req.action!r}"
        if not req.total_quantity > 0:
            return "Order quantity must be positive"
        if req.order_type not in ("MKT", "LMT"):
            return f"Order type {req.order_type!r} is not supported"
        if req.order_type == "LMT" and req.lmt_price is None:
            return "Limit price is required for LMT orders"
        if not req.account:
            req.account = self.accounts[0]
        elif req.account not in self.accounts:
            return f"Invalid account {req.account!r}"
        c = req.contract
        if c.sec_type == "BAG":
            if len(c.combo_legs) < 1:
                return "Security type 'BAG' requires combo leg details"
            for leg in c.combo_legs:
                if self.market.contract(leg.con_id) is None or leg.ratio <= 0 or \
                        leg.action not in ("BUY", "SELL"):
                    return f"Invalid combo leg conId {leg.con_id}"
            c.con_id = BAG_CON_ID
            c.combo_legs_descrip = ",".join(f"{leg.con_id}|{leg.ratio}" for leg in c.combo_legs)
            return None
        resolved = self.market.resolve(c)
        if resolved is None:
            return "No security definition has been found for the request"
        req.contract = replace(resolved, combo_legs=[])
        return None

    def _price_error(self, req: OrderRequest) -> bool:
        """True when the new order gets error 110 (forced, or a limit off the increment)."""
        if self.force_110 > 0:
            self.force_110 -= 1
            return True
        return self.enforce_increments and increments.off_increment(req)

    def _modify(self, session: Session, order: SimOrder, req: OrderRequest) -> None:
        old = order.request
        problem = None
        if req.action != old.action or req.contract.sec_type != old.contract.sec_type:
            problem = "The action and contract of an order cannot be modified"
        elif req.order_type not in ("MKT", "LMT"):
            problem = f"Order type {req.order_type!r} is not supported"
        elif req.order_type == "LMT" and req.lmt_price is None:
            problem = "Limit price is required for LMT orders"
        elif not req.total_quantity > order.filled:
            problem = "Order quantity must exceed the filled quantity"
        if problem is not None:  # the live order stays as it was
            session.send_error(req.order_id, 201, f"Order rejected - reason:{problem}")
            return
        old.total_quantity = req.total_quantity
        old.order_type = req.order_type
        old.lmt_price = req.lmt_price
        old.aux_price = req.aux_price
        old.tif = req.tif
        old.order_ref = req.order_ref
        order.remaining = old.total_quantity - order.filled
        self._send_open_order(order)
        self._send_to_owner(order, codec.encode_order_status(order))
        self._try_fill(order)

    def _what_if(self, session: Session, req: OrderRequest) -> None:
        """Answer a whatIf order with the margin impact; nothing is placed."""
        figures = self.what_if_figures(req)
        if figures is None:
            session.send_error(req.order_id, 201, "Order rejected - reason:No market data")
            return
        margin, commission = figures
        order = SimOrder(request=req, perm_id=0, client_id=session.client_id,
                         status="PreSubmitted", commission=commission, what_if_margin=margin)
        session.send(*codec.encode_open_order(order, session.server_version))

    def what_if_figures(self, req: OrderRequest) -> tuple[dict[str, str], float] | None:
        """The OrderState figures of a (validated) what-if order at the current prices:
        ``({initBefore, initChange, initAfter, maint…, ewl…}, commission)``; None without a
        price. IB's what-if also reports min/max commission: here all three are the estimate."""
        try:
            price = self._fill_price(req)
            legs = self._leg_prices(req)
        except (KeyError, ValueError, LookupError):
            price = None
        if price is None:
            return None
        side = {"BUY": "BOT", "SELL": "SLD"}
        executions = [(req.contract, side[req.action], req.total_quantity, price)] \
            if legs is None else [(c, side[a], ratio * req.total_quantity, p)
                                  for c, a, ratio, p in legs]
        commission = self._commission(req)
        before, after = self.book.what_if(req.account, executions, commission)
        margin = {}
        for short, tag in (("init", "InitMarginReq"), ("maint", "MaintMarginReq"),
                           ("ewl", "EquityWithLoanValue")):
            margin[f"{short}Before"] = f"{before[tag]:.2f}"
            margin[f"{short}Change"] = f"{after[tag] - before[tag]:.2f}"
            margin[f"{short}After"] = f"{after[tag]:.2f}"
        return margin, commission

    # ------------------------------------------------------------ matching
    def _leg_prices(self, req: OrderRequest,
                    ) -> list[tuple[SimContract, str, int, float]] | None:
        """For a BAG: (leg contract, leg action, ratio, executable price) per leg."""
        if req.contract.sec_type != "BAG":
            return None
        out = []
        for leg in req.contract.combo_legs:
            contract = self.market.contract(leg.con_id)
            if contract is None:
                raise ValueError(f"combo leg conId {leg.con_id} vanished")
            buying = (leg.action == "BUY") == (req.action == "BUY")
            bid, ask, _ = self.market.quote(leg.con_id)
            action = "BUY" if buying else "SELL"
            out.append((contract, action, leg.ratio, ask if buying else bid))
        return out

    def _fill_price(self, req: OrderRequest) -> float | None:
        """Executable price now: ask for BUY, bid for SELL; BAG = net of the legs."""
        legs = self._leg_prices(req)
        if legs is not None:
            sign = 1.0 if req.action == "BUY" else -1.0
            net = sum(ratio * (1.0 if action == "BUY" else -1.0) * p
                      for _, action, ratio, p in legs)
            return round(sign * net, 6)
        bid, ask, _ = self.market.quote(req.contract.con_id)
        price = ask if req.action == "BUY" else bid
        return price if price > 0 else None

    def _try_fill(self, order: SimOrder) -> None:
        req = order.request
        if not self.market_open or not req.transmit:
            return
        try:
            price = self._fill_price(req)
        except (KeyError, ValueError, LookupError) as exc:
            log_warning(f"sim order {req.order_id}: no price ({exc})")
            return
        if price is None:
            return
        if req.order_type == "LMT":
            assert req.lmt_price is not None
            if req.action == "BUY" and price > req.lmt_price + 1e-9:
                return
            if req.action == "SELL" and price < req.lmt_price - 1e-9:
                return
        self._fill(order, price, self.fill_rules.slice(order.remaining))

    def _commission(self, req: OrderRequest) -> float:
        total = 0.0
        for contract, qty in self._execution_sizes(req):
            total += qty * (self.commission_per_contract if contract.sec_type == "OPT"
                            else self.commission_per_share)
        return round(max(total, self.min_commission), 2)

    def _execution_sizes(self, req: OrderRequest) -> list[tuple[SimContract, float]]:
        if req.contract.sec_type != "BAG":
            return [(req.contract, req.total_quantity)]
        out = []
        for leg in req.contract.combo_legs:
            c = self.market.contract(leg.con_id)
            if c is not None:
                out.append((c, leg.ratio * req.total_quantity))
        return out

    def _fill(self, order: SimOrder, price: float, qty: float | None = None) -> None:
        """Fill ``qty`` (default: all that remains) at ``price``: executions (BAG-level then
        per leg), orderStatus, openOrder, commission reports — or, for an order not announced
        yet under ``exec_before_open_order``, the executions and reports before the rest."""
        req = order.request
        qty = order.remaining if qty is None else min(qty, order.remaining)
        now = self.clock.now().astimezone(UTC)
        self._exec_seq += 1
        legs = self._leg_prices(req)
        fills = self.fill_maker.executions(
            order, qty, price, legs, f"0000e0d5.{int(now.timestamp()):08x}.{self._exec_seq:02d}",
            now.strftime("%Y%m%d  %H:%M:%S"))
        # commissions on the executions that move positions (legs, or the single fill)
        booked = fills[1:] if legs is not None else fills
        rates = [f.shares * (self.commission_per_contract if f.contract.sec_type == "OPT"
                             else self.commission_per_share) for f in booked]
        total = sum(rates)
        minimum = self.min_commission
        for f, rate in zip(booked, rates, strict=True):
            share = rate if total >= minimum else minimum * (rate / total if total else
                                                             1.0 / len(booked))
            f.commission = round(share, 4)
            f.realized_pnl = self.book.apply_execution(
                f.account, f.contract, f.side, f.shares, f.price, f.commission)
        order.filled += qty
        order.remaining = max(0.0, order.remaining - qty)
        order.avg_fill_price = self.fill_maker.order_average(order)
        order.last_fill_price = price
        order.commission = round(order.commission + sum(f.commission for f in booked), 4)
        if order.remaining <= 0:
            self._finalize(order, "Filled")
        self.fills.extend(fills)
        if self.fill_rules.corrections and order.perm_id not in self._corrected:
            self._corrected.add(order.perm_id)
            self.fill_maker.pending.append(Correction(order, fills, legs is not None))
        reports = fills
        if self.fill_rules.late_commissions:  # sent on the next market step instead
            self.fill_maker.late.append((order, fills))
            reports = []
        for f in fills:
            self._send_to_owner(order, codec.encode_exec_details(-1, f))
        if not order.announced:
            for f in reports:
                self._send_to_owner(order, codec.encode_commission_report(f))
            self._announce(order)
        else:
            self._send_to_owner(order, codec.encode_order_status(order))
            self._send_open_order(order)
            for f in reports:
                self._send_to_owner(order, codec.encode_commission_report(f))
        for f in booked:
            self.feed.push_position(f.account, f.contract.con_id)
        self.feed.push_account(req.account)
        log_debug(f"sim order {req.order_id} perm {order.perm_id} filled {qty} @ {price}")

    def _announce(self, order: SimOrder) -> None:
        order.announced = True
        self._send_open_order(order)
        self._send_to_owner(order, codec.encode_order_status(order))

    def _finalize(self, order: SimOrder, status: str) -> None:
        order.status = status
        order.completed_status = status
        order.completed_time = self.clock.now().astimezone(UTC).strftime(
            "%Y%m%d %H:%M:%S UTC")

    # ------------------------------------------------------------ cancelling
    def _cancel_order(self, session: Session, fields: list[str]) -> None:
        """Cancel, or IB's refusal (10147 / 10148 / 161) and the races: ``cancel_races``."""
        cancel_races.on_cancel(self, session, _int(fields, 1, "orderId"))

    def send_notice(self, order: SimOrder, code: int) -> None:
        """Informational ``code`` (399, 404, 2109, 10349) on ``order``; it stays as it is."""
        self._send_error_to_owner(order, code, cancel_races.notice_text(code),
                                  order.request.order_id)

    def _cancel(self, order: SimOrder) -> None:
        self._finalize(order, "Cancelled")
        self._send_to_owner(order, codec.encode_order_status(order))
        self._send_error_to_owner(order, 202, "Order Canceled - reason:", order.request.order_id)

    def _req_global_cancel(self, session: Session, fields: list[str]) -> None:
        for order in list(self.orders.values()):
            if order.status not in FINAL_STATUSES:
                self._cancel(order)

    # ------------------------------------------------------------ order queries
    def _send_open_order(self, order: SimOrder) -> None:
        if self.races.holds(order.perm_id):
            self.races.queue(order.perm_id, 5, lambda s: s.send(
                *codec.encode_open_order(order, s.server_version)))
            return
        for s in self._owner_sessions(order):
            s.send(*codec.encode_open_order(order, s.server_version))

    def _open_orders(self, session: Session, all_clients: bool) -> None:
        for order in self.orders.values():
            if order.status in FINAL_STATUSES:
                continue
            if all_clients or order.client_id == session.client_id:
                session.send(*codec.encode_open_order(order, session.server_version))
                session.send(*codec.encode_order_status(order))
        session.send(*codec.encode_open_order_end())

    def _req_open_orders(self, session: Session, fields: list[str]) -> None:
        self._open_orders(session, all_clients=False)

    def _req_all_open_orders(self, session: Session, fields: list[str]) -> None:
        self._open_orders(session, all_clients=True)

    def _req_auto_open_orders(self, session: Session, fields: list[str]) -> None:
        # binds future manually placed TWS orders to client 0: there are none in the
        # simulator, so only the flag is kept (IB sends no reply to this request)
        if _str(fields, 1) == "1":
            self._auto_bind.add(session.session_id)
        else:
            self._auto_bind.discard(session.session_id)

    def _req_completed_orders(self, session: Session, fields: list[str]) -> None:
        for order in self.orders.values():
            if order.status in FINAL_STATUSES:
                session.send(*codec.encode_completed_order(order, session.server_version))
        session.send(*codec.encode_completed_orders_end())

    def _req_executions(self, session: Session, fields: list[str]) -> None:
        req_id = _int(fields, 1, "reqId")
        client_id = _int(fields, 2, "clientId")
        acct, since, symbol = _str(fields, 3), _str(fields, 4), _str(fields, 5)
        sec_type, exchange, side = _str(fields, 6), _str(fields, 7), _str(fields, 8)
        since_key = _time_key(since) if since else ""
        today = trading_date(self.clock)  # the New York trading day, like TWS's "today"
        wanted_side = {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper())
        for f in self.fills:
            key = _time_key(f.time)
            if _ny_day(key) != today or (since_key and key < since_key):
                continue
            if (client_id and f.client_id != client_id) or (acct and f.account != acct) \
                    or (symbol and f.contract.symbol != symbol) \
                    or (sec_type and f.contract.sec_type != sec_type) \
                    or (exchange and f.exchange != exchange) \
                    or (wanted_side and f.side != wanted_side):
                continue
            session.send(*codec.encode_exec_details(req_id, f))
            session.send(*codec.encode_commission_report(f))
        session.send(*codec.encode_exec_details_end(req_id))

    # ------------------------------------------------------------ pushing
    def _owner_sessions(self, order: SimOrder) -> list[Session]:
        return [s for s in self._sessions.values()
                if s.client_id == order.client_id and not s.closed]

    def _send_to_owner(self, order: SimOrder, fields: list[codec.Field]) -> None:
        if self.races.holds(order.perm_id):  # in flight: delivered with the cancel's answer
            msg_id = fields[0] if isinstance(fields[0], int) else 0
            self.races.queue(order.perm_id, msg_id, lambda s: s.send(*fields))
            return
        for s in self._owner_sessions(order):
            s.send(*fields)

    def _send_error_to_owner(self, order: SimOrder, code: int, text: str, oid: int) -> None:
        if self.races.holds(order.perm_id):
            self.races.queue(order.perm_id, 4, lambda s: s.send_error(oid, code, text))
            return
        for s in self._owner_sessions(order):
            s.send_error(oid, code, text)


def _ny_day(key: str) -> date:
    """The New York date of a fill's UTC time key ('YYYYMMDDHH:MM:SS')."""
    utc = datetime.strptime(key[:16], "%Y%m%d%H:%M:%S").replace(tzinfo=UTC)
    return utc.astimezone(NEW_YORK).date()


def _time_key(text: str) -> str:
    """'YYYYMMDD  HH:MM:SS', 'YYYYMMDD-HH:MM:SS' or 'YYYYMMDD HH:MM:SS tz' → 'YYYYMMDDHH:MM:SS'."""
    parts = text.replace("-", " ").split()
    return "".join(parts[:2])
