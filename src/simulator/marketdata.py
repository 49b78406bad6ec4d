"""Market-data and reference-data requests: reqMktData / cancelMktData, reqContractDetails,
reqSecDefOptParams, reqMarketDataType. Streams quotes on every market step."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from src.simulator import wire
from src.simulator.entitlements import DELAYED_TICK, Entitlements
from src.simulator.faults import ERROR_TEXTS
from src.simulator.market import OPTION_EXCHANGES, STOCK_EXCHANGES, Market, Quote
from src.simulator.server import Handler, Session
from src.simulator.types import SimContract

log = logging.getLogger("src.simulator.marketdata")

ORDER_TYPES = ("ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,"
               "DEACTDIS,DEACTEOD,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,"
               "OCA,OPG,PEGBENCH,REL,SCALE,SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,"
               "TRAILLIT,TRAILLMT,TRAILMIT,WHATIF")


@dataclass
class Line:
    """One market-data line (a streaming subscription)."""

    session: Session
    req_id: int
    contract: SimContract | None  # None for a BAG
    legs: list[tuple[SimContract, int, int]] = field(default_factory=list)  # (leg, ratio, ±1)
    last: Quote | None = None
    delayed: bool = False  # served delayed ticks (66-76, 80-83)
    silent: bool = False  # refused (no permission): registered, never ticks


def parse_contract(args: list[str], i: int) -> tuple[dict[str, str], int]:
    """The 12 contract fields ib_insync's Client.send writes for a Contract."""
    names = ("con_id", "symbol", "sec_type", "expiry", "strike", "right", "multiplier",
             "exchange", "primary_exchange", "currency", "local_symbol", "trading_class")
    if len(args) < i + len(names):
        raise ValueError("contract: message too short")
    return dict(zip(names, args[i:i + len(names)], strict=False)), i + len(names)


def _num(s: str, name: str) -> float:
    try:
        return float(s) if s else 0.0
    except ValueError:
        raise ValueError(f"{name}: not a number: {s!r}") from None


WILDCARD_FAULTS = ("empty", "error", "truncate")
_LIVE_TICK = {k: k for k in DELAYED_TICK}


def _error(s: Session, req_id: int, code: int, text: str) -> bytes:
    """An error message (4) for ``req_id``, encoded the way Session.send_error sends it."""
    if s.server_version >= 166:
        return wire.encode_fields(4, 2, req_id, code, text, "")
    return wire.encode_fields(4, 2, req_id, code, text)


class MarketData:
    """The gateway component answering market and reference data requests."""

    def __init__(self, market: Market, *, max_lines: int = 100) -> None:
        self.market = market
        self.max_lines = max_lines
        self.lines: dict[tuple[int, int], Line] = {}  # (session_id, req_id) -> line
        self.max_lines_seen = 0
        self.snapshots_served = 0
        self.wildcard_faults: dict[str, str] = {}  # symbol -> "empty" | "error" | "truncate"
        self.entitlements = Entitlements()

    def handlers(self) -> dict[int, Handler]:
        return {1: self.req_mkt_data, 2: self.cancel_mkt_data, 9: self.req_contract_details,
                59: self.req_market_data_type, 78: self.req_sec_def_opt_params}

    def detach(self, session: Session) -> None:
        for key in [k for k in self.lines if k[0] == session.session_id]:
            del self.lines[key]

    # -- lookups ---------------------------------------------------------------------------
    def _find(self, f: dict[str, str]) -> list[SimContract]:
        return self.market.match(
            con_id=int(_num(f["con_id"], "conId")), symbol=f["symbol"], sec_type=f["sec_type"],
            expiry=f["expiry"], strike=_num(f["strike"], "strike"), right=f["right"],
            currency=f["currency"], exchange=f["exchange"], local_symbol=f["local_symbol"],
            trading_class=f["trading_class"], multiplier=f["multiplier"])

    # -- reqContractDetails (9) ------------------------------------------------------------
    def refuse_wildcard_details(self, symbol: str, mode: str | None) -> None:
        """Fault: wildcard option contract-details requests (no strike) for ``symbol`` answer
        nothing (``"empty"``: only the end marker), error 321 (``"error"``) or only the 3
        lowest strikes (``"truncate"``), as real IB does for some underlyings; ``None`` heals."""
        if mode is None:
            self.wildcard_faults.pop(symbol.upper(), None)
            return
        if mode not in WILDCARD_FAULTS:
            raise ValueError(f"mode must be one of {WILDCARD_FAULTS} or None, got {mode!r}")
        self.wildcard_faults[symbol.upper()] = mode

    def req_contract_details(self, s: Session, args: list[str]) -> None:
        req_id = int(args[1])
        f, _ = parse_contract(args, 2)
        fault = self.wildcard_faults.get(f["symbol"].upper())
        wildcard = f["sec_type"] in ("OPT", "") and not _num(f["strike"], "strike") \
            and not int(_num(f["con_id"], "conId")) and not f["local_symbol"]
        if fault is not None and wildcard:
            if fault == "error":
                s.send_error(req_id, 321, ERROR_TEXTS[321].format(
                    detail="reqContractDetails", cause="too many contracts requested"))
                return
            if fault == "empty":
                s.send_raw(wire.encode_fields(52, 1, req_id))
                return
        found = self._find(f)
        if fault == "truncate" and wildcard:
            low = sorted({c.strike for c in found if c.sec_type == "OPT"})[:3]
            found = [c for c in found if c.sec_type != "OPT" or c.strike in low]
        if not found:
            s.send_error(req_id, 200, ERROR_TEXTS[200])
            return
        exchange = f["exchange"] or "SMART"
        out = [self._details(s.server_version, req_id, c, exchange) for c in found]
        out.append(wire.encode_fields(52, 1, req_id))
        s.send_raw(b"".join(out))

    def _details(self, version: int, req_id: int, c: SimContract, exchange: str) -> bytes:
        opt = c.sec_type == "OPT"
        under = self.market.stocks[c.symbol].contract
        head: list[wire.Field] = [10]
        if version < 164:
            head.append(8)
        head += [req_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right, exchange,
                 c.currency, c.local_symbol, c.trading_class, c.trading_class, c.con_id,
                 c.min_tick]
        if version < 164:
            head.append(1)
        valid = OPTION_EXCHANGES if opt else STOCK_EXCHANGES
        tail: list[wire.Field] = [
            c.multiplier, ORDER_TYPES, ",".join(valid), 1, under.con_id if opt else 0,
            c.long_name, c.primary_exchange if not opt else "",
            c.last_trade_date[:6] if opt else "", "Technology" if not opt else "", "", "",
            "US/Eastern", "", "", "", None, 0,
            1 if opt else 2, c.symbol if opt else "", "STK" if opt else "", "26,26",
            c.last_trade_date if opt else "", "COMMON" if not opt else "", "1", "1", "1",
        ]
        return wire.encode_fields(*head, *tail)

    # -- reqSecDefOptParams (78) -----------------------------------------------------------
    def req_sec_def_opt_params(self, s: Session, args: list[str]) -> None:
        req_id = int(args[0])
        chain = self.market.chain(args[1] if len(args) > 1 else "")
        if chain is None:
            s.send_error(req_id, 200, ERROR_TEXTS[200])
            return
        s.send_raw(wire.encode_fields(
            75, req_id, "SMART", chain.under_con_id, chain.trading_class, chain.multiplier,
            len(chain.expirations), *chain.expirations, len(chain.strikes), *chain.strikes,
        ) + wire.encode_fields(76, req_id))

    # -- reqMarketDataType (59) ------------------------------------------------------------
    def req_market_data_type(self, s: Session, args: list[str]) -> None:
        t = int(args[1])
        if t not in (1, 2, 3, 4):
            s.send_error(-1, 321, ERROR_TEXTS[321].format(
                detail="reqMarketDataType", cause=f"invalid market data type {t}"))
            return
        s.market_data_type = t
        s.send(58, 1, -1, t)

    # -- reqMktData (1) / cancelMktData (2) ------------------------------------------------
    def req_mkt_data(self, s: Session, args: list[str]) -> None:
        req_id = int(args[1])
        f, i = parse_contract(args, 2)
        legs: list[tuple[SimContract, int, int]] = []
        contract: SimContract | None = None
        if f["sec_type"] == "BAG":
            n = int(args[i])
            i += 1
            for _ in range(n):
                con_id, ratio, action = int(args[i]), int(args[i + 1]), args[i + 2].upper()
                i += 4
                leg = self.market.contract(con_id)
                if leg is None or leg.sec_type == "BAG":
                    s.send_error(req_id, 200, ERROR_TEXTS[200])
                    return
                legs.append((leg, ratio, 1 if action == "BUY" else -1))
            if not legs:
                s.send_error(req_id, 200, ERROR_TEXTS[200])
                return
        else:
            found = self._find(f)
            if len(found) != 1:
                s.send_error(req_id, 200, ERROR_TEXTS[200])
                return
            contract = found[0]
        if args[i] == "1":  # deltaNeutralContract
            i += 3
        i += 1  # past the dnc flag
        snapshot = len(args) > i + 1 and args[i + 1] == "1"
        regulatory = len(args) > i + 2 and args[i + 2] == "1"
        if len(self.lines) + 1 > self.max_lines:
            s.send_error(req_id, 101, ERROR_TEXTS[101])
            return
        line = Line(s, req_id, contract, legs)
        self.max_lines_seen = max(self.max_lines_seen, len(self.lines) + 1)
        answer = self.entitlements.answer(
            [(c.symbol, c.sec_type) for c in ([contract] if contract else [c for c, _, _ in legs])],
            s.market_data_type)
        msgs: list[bytes] = []
        if answer.error is not None:
            msgs.append(_error(s, req_id, *answer.error))
        if answer.served is None:
            line.silent = True
        else:
            if s.market_data_type != 1:
                msgs.append(wire.encode_fields(58, 1, req_id, answer.served))
            line.delayed = answer.served in (3, 4)
            self._ticks(line, msgs)
        if snapshot or regulatory:
            msgs.append(wire.encode_fields(57, 1, req_id))
            self.snapshots_served += 1
        else:
            self.lines[(s.session_id, req_id)] = line
        s.send_raw(b"".join(msgs))

    def set_entitlement(self, symbol: str, level: str, code: int | None = None,
                        options: str | None = None) -> None:
        """``symbol``'s market-data permission (see :mod:`~src.simulator.entitlements`)."""
        if symbol.upper() not in self.market.stocks:
            raise ValueError(f"symbol: unknown {symbol!r}")
        self.entitlements.set(symbol, level, code, options)

    def set_competing_session(self, on: bool) -> None:
        """A competing live session on (every request then gets 10197; open lines get 10197
        once and fall silent, as IB stops them) or off (new requests are served again)."""
        self.entitlements.competing_session = on
        if not on:
            return
        code, text = self.entitlements.answer((), 1).error or (10197, "")
        per_session: dict[int, tuple[Session, list[bytes]]] = {}
        for line in self.lines.values():
            if line.silent or line.session.closed:
                continue
            line.silent = True
            entry = per_session.setdefault(line.session.session_id, (line.session, []))
            entry[1].append(_error(line.session, line.req_id, code, text))
        for session, msgs in per_session.values():
            session.send_raw(b"".join(msgs))

    def cancel_mkt_data(self, s: Session, args: list[str]) -> None:
        req_id = int(args[1])
        if self.lines.pop((s.session_id, req_id), None) is None:
            log.debug("client %d: cancelMktData for unknown reqId %d", s.client_id, req_id)

    # -- ticks -----------------------------------------------------------------------------
    def _quote(self, line: Line) -> Quote:
        if line.contract is not None:
            return self.market.snapshot(line.contract.con_id)
        bid = ask = last = 0.0
        for leg, ratio, sign in line.legs:
            q = self.market.snapshot(leg.con_id)
            bid += ratio * (q.bid if sign > 0 else -q.ask)
            ask += ratio * (q.ask if sign > 0 else -q.bid)
            last += ratio * sign * (q.bid + q.ask) / 2.0
        return Quote(round(bid, 2), round(ask, 2), round(last, 2), 1.0, 1.0, 1.0,
                     0.0, 0.0, 0.0, 0.0)

    def _ticks(self, line: Line, out: list[bytes]) -> None:
        q = self._quote(line)
        p = line.last
        r = line.req_id
        enc = wire.encode_fields
        t = DELAYED_TICK if line.delayed else _LIVE_TICK
        if p is None or q.bid != p.bid or q.bid_size != p.bid_size:
            out.append(enc(1, 6, r, t[1], q.bid, q.bid_size, 0))
        if p is None or q.ask != p.ask or q.ask_size != p.ask_size:
            out.append(enc(1, 6, r, t[2], q.ask, q.ask_size, 0))
        if p is None or q.last != p.last or q.last_size != p.last_size:
            out.append(enc(1, 6, r, t[4], q.last, q.last_size, 0))
        if q.high and (p is None or q.high != p.high):
            out.append(enc(1, 6, r, t[6], q.high, 0, 0))
        if q.low and (p is None or q.low != p.low):
            out.append(enc(1, 6, r, t[7], q.low, 0, 0))
        if q.close and (p is None or q.close != p.close):
            out.append(enc(1, 6, r, t[9], q.close, 0, 0))
        if q.volume and (p is None or q.volume != p.volume):
            out.append(enc(2, 6, r, t[8], q.volume))
        g = q.greeks
        if g is not None and (p is None or p.greeks != g):
            for tick, price in ((10, q.bid), (11, q.ask), (12, q.last), (13, g.price)):
                out.append(enc(21, r, t[tick], 0, q.implied_vol, g.delta, price, 0.0, g.gamma,
                               g.vega, g.theta, q.und_price))
        line.last = q

    def on_step(self) -> None:
        """Push changed quotes to every streaming line (one write per session)."""
        per_session: dict[int, tuple[Session, list[bytes]]] = {}
        for line in self.lines.values():
            if line.session.closed or line.silent:
                continue
            entry = per_session.get(line.session.session_id)
            if entry is None:
                entry = per_session[line.session.session_id] = (line.session, [])
            self._ticks(line, entry[1])
        for session, msgs in per_session.values():
            if msgs:
                session.send_raw(b"".join(msgs))
