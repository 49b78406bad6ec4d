"""Wire codec for the order/account half of the simulated gateway.

``decode_place_order`` parses the placeOrder message (id 3) exactly as ib_insync 0.9.86 /
ib_async 2.x encode it for server versions 157..176; the ``encode_*`` functions build the
outgoing messages with exactly the field layout ib_insync's ``Decoder`` expects for the
session's server version. Encoders return python values (str/int/float/bool/None) for
``session.send(*fields)``; ``None`` goes on the wire as an empty field ("unset").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Union

from src.simulator.types import ComboLegSpec, OrderRequest, SimContract, SimFill, SimOrder

Field = Union[str, int, float, bool, None]  # noqa: UP007 (runtime alias)

UNSET_DOUBLE_STR = "1.7976931348623157E308"
UNSET_INTEGER_STR = "2147483647"
MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 176

# number of fields after condType, per ib_insync's OrderCondition dataclasses
_CONDITION_FIELDS = {1: 6, 3: 3, 4: 3, 5: 4, 6: 5, 7: 5}


class _Reader:
    """Sequential reader over the message fields with clear errors naming the field."""

    def __init__(self, fields: list[str]) -> None:
        self._fields = fields
        self._pos = 0

    def text(self, name: str) -> str:
        if self._pos >= len(self._fields):
            raise ValueError(f"placeOrder: message ended before field {name!r}")
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def integer(self, name: str, default: int = 0) -> int:
        raw = self.text(name)
        if raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"placeOrder: field {name!r} is not an integer: {raw!r}") from None

    def number(self, name: str) -> float | None:
        raw = self.text(name)
        if raw == "" or raw == UNSET_DOUBLE_STR:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"placeOrder: field {name!r} is not a number: {raw!r}") from None
        return None if value >= 1.7976931348623157e308 else value

    def flag(self, name: str) -> bool:
        raw = self.text(name)
        if raw in ("", "0"):
            return False
        if raw == "1":
            return True
        raise ValueError(f"placeOrder: field {name!r} is not a boolean: {raw!r}")

    def skip(self, count: int, name: str) -> None:
        for i in range(count):
            self.text(f"{name}[{i}]")

    def done(self) -> None:
        if self._pos != len(self._fields):
            extra = len(self._fields) - self._pos
            raise ValueError(f"placeOrder: {extra} unexpected trailing field(s)")


def decode_place_order(fields: list[str], server_version: int) -> OrderRequest:
    """Parse placeOrder (fields after msg id 3) as ib_insync sends it for ``server_version``."""
    if not MIN_SERVER_VERSION <= server_version <= MAX_SERVER_VERSION:
        raise ValueError(f"placeOrder: unsupported server_version {server_version}")
    r = _Reader(fields)
    order_id = r.integer("orderId")
    contract = SimContract(
        con_id=r.integer("conId"),
        symbol=r.text("symbol"),
        sec_type=r.text("secType"),
        last_trade_date=r.text("lastTradeDateOrContractMonth"),
        strike=r.number("strike") or 0.0,
        right=r.text("right"),
        multiplier=r.text("multiplier"),
        exchange=r.text("exchange"),
        primary_exchange=r.text("primaryExchange"),
        currency=r.text("currency"),
        local_symbol=r.text("localSymbol"),
        trading_class=r.text("tradingClass"),
    )
    r.skip(2, "secIdType/secId")
    action = r.text("action")
    quantity = r.number("totalQuantity")
    order_type = r.text("orderType")
    lmt_price = r.number("lmtPrice")
    aux_price = r.number("auxPrice")
    tif = r.text("tif")
    oca_group = r.text("ocaGroup")
    account = r.text("account")
    r.skip(2, "openClose/origin")
    order_ref = r.text("orderRef")
    transmit = r.flag("transmit")
    parent_id = r.integer("parentId")
    r.skip(4, "blockOrder/sweepToFill/displaySize/triggerMethod")
    outside_rth = r.flag("outsideRth")
    r.skip(1, "hidden")
    combo_leg_prices: list[float | None] = []
    routing: list[tuple[str, str]] = []
    if contract.sec_type == "BAG":
        for i in range(r.integer("comboLegsCount")):
            contract.combo_legs.append(
                ComboLegSpec(
                    con_id=r.integer(f"comboLeg[{i}].conId"),
                    ratio=r.integer(f"comboLeg[{i}].ratio"),
                    action=r.text(f"comboLeg[{i}].action"),
                    exchange=r.text(f"comboLeg[{i}].exchange"),
                    open_close=r.integer(f"comboLeg[{i}].openClose"),
                    short_sale_slot=r.integer(f"comboLeg[{i}].shortSaleSlot"),
                    designated_location=r.text(f"comboLeg[{i}].designatedLocation"),
                    exempt_code=r.integer(f"comboLeg[{i}].exemptCode", -1),
                )
            )
        for i in range(r.integer("orderComboLegsCount")):
            combo_leg_prices.append(r.number(f"orderComboLeg[{i}].price"))
        for i in range(r.integer("smartComboRoutingParamsCount")):
            routing.append((r.text(f"smartComboRoutingParams[{i}].tag"),
                            r.text(f"smartComboRoutingParams[{i}].value")))
    # sharesAllocation .. deltaNeutralOrderType, deltaNeutralAuxPrice
    r.skip(30, "discretionaryAmt..volatilityType")
    if r.text("deltaNeutralOrderType"):
        r.skip(1 + 8, "deltaNeutral*")
    else:
        r.skip(1, "deltaNeutralAuxPrice")
    r.skip(6, "continuousUpdate..scaleSubsLevelSize")
    increment = r.number("scalePriceIncrement")
    if increment is not None and increment > 0:
        r.skip(7, "scalePriceAdjustValue..scaleRandomPercent")
    r.skip(3, "scaleTable/activeStartTime/activeStopTime")
    if r.text("hedgeType"):
        r.skip(1, "hedgeParam")
    r.skip(4, "optOutSmartRouting..notHeld")
    if r.flag("deltaNeutralContractPresent"):
        r.skip(3, "deltaNeutralContract")
    if r.text("algoStrategy"):
        r.skip(2 * r.integer("algoParamsCount"), "algoParams")
    r.skip(1, "algoId")
    what_if = r.flag("whatIf")
    r.skip(4, "orderMiscOptions..randomizePrice")
    if order_type == "PEG BENCH":
        r.skip(5, "pegBench")
    conditions = r.integer("conditionsCount")
    for i in range(conditions):
        cond_type = r.integer(f"condition[{i}].condType")
        if cond_type not in _CONDITION_FIELDS:
            raise ValueError(f"placeOrder: field 'condition[{i}].condType' unknown: {cond_type}")
        r.skip(_CONDITION_FIELDS[cond_type], f"condition[{i}]")
    if conditions:
        r.skip(2, "conditionsIgnoreRth/conditionsCancelOrder")
    r.skip(19, "adjustedOrderType..usePriceMgmtAlgo")
    for version, name in ((158, "duration"), (160, "postToAts"), (162, "autoCancelParent"),
                          (166, "advancedErrorOverride"), (169, "manualOrderTime")):
        if server_version >= version:
            r.skip(1, name)
    if server_version >= 170:
        if contract.exchange == "IBKRATS":
            r.skip(1, "minTradeQty")
        if order_type == "PEG BEST":
            r.skip(1, "minCompeteSize")
            if r.text("competeAgainstBestOffset") == "Infinite":
                r.skip(2, "midOffsetAtWhole/midOffsetAtHalf")
        elif order_type == "PEG MID":
            r.skip(2, "midOffsetAtWhole/midOffsetAtHalf")
    r.done()
    return OrderRequest(
        order_id=order_id, contract=contract, action=action,
        total_quantity=quantity if quantity is not None else 0.0,
        order_type=order_type, lmt_price=lmt_price, aux_price=aux_price, tif=tif,
        order_ref=order_ref, account=account, transmit=transmit, outside_rth=outside_rth,
        parent_id=parent_id, oca_group=oca_group, what_if=what_if,
        order_combo_leg_prices=combo_leg_prices, smart_combo_routing_params=routing,
    )


def req_int(fields: list[str], i: int, name: str) -> int:
    """Integer field ``i`` of an incoming request ("" → 0); ValueError naming the field."""
    try:
        return int(fields[i]) if fields[i] != "" else 0
    except (IndexError, ValueError):
        raise ValueError(f"field {name!r} missing or not an integer") from None


def req_str(fields: list[str], i: int) -> str:
    """Text field ``i`` of an incoming request ("" when absent)."""
    return fields[i] if i < len(fields) else ""


# ---------------------------------------------------------------- encoders


def _num(value: float) -> float | int:
    """Quantities/prices: integral values as int ("3"), others as float ("1.25")."""
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value


def _opt(value: float | None) -> Field:
    return None if value is None else value


def _contract11(c: SimContract, *, exchange: bool = True, primary: bool = False) -> list[Field]:
    """conId, symbol, secType, lastTradeDate, strike, right, multiplier, [exchange|primary],
    currency, localSymbol, tradingClass."""
    out: list[Field] = [c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right,
                        c.multiplier]
    if exchange:
        out.append(c.exchange)
    if primary:
        out.append(c.primary_exchange)
    out += [c.currency, c.local_symbol, c.trading_class]
    return out


def _legs(c: SimContract) -> list[Field]:
    out: list[Field] = [len(c.combo_legs)]
    for leg in c.combo_legs:
        out += [leg.con_id, leg.ratio, leg.action, leg.exchange, leg.open_close,
                leg.short_sale_slot, leg.designated_location, leg.exempt_code]
    return out


def _order_legs(req: OrderRequest) -> list[Field]:
    prices = req.order_combo_leg_prices
    out: list[Field] = [len(prices)]
    out += [_opt(p) for p in prices]
    out.append(len(req.smart_combo_routing_params))
    for tag, value in req.smart_combo_routing_params:
        out += [tag, value]
    return out


def _order_head(req: OrderRequest) -> list[Field]:
    return [req.action, _num(req.total_quantity), req.order_type, _opt(req.lmt_price),
            _opt(req.aux_price), req.tif, req.oca_group, req.account, "", 0, req.order_ref]


def encode_open_order(order: SimOrder, server_version: int) -> list[Field]:
    """openOrder (5) for a live or final order; OrderState.status = ``order.status``."""
    req, c = order.request, order.request.contract
    fields: list[Field] = [5, req.order_id, *_contract11(c), *_order_head(req),
                           order.client_id, order.perm_id, req.outside_rth, False,
                           0, "", "",  # discretionaryAmt, goodAfterTime, sharesAllocation
                           "", "", "", "", "",  # faGroup, faMethod, faPercentage, faProfile, model
                           "", "", None, "",  # goodTillDate, rule80A, percentOffset, settlingFirm
                           0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
                           0, None, None, None, None, None,  # auctionStrategy .. stockRangeUpper
                           None, 0, False, False, None,  # displaySize .. minQty
                           3, False, False, None,  # ocaType, eTradeOnly, firmQuoteOnly, nbbo
                           req.parent_id, 0, None, None, "", None,  # .. deltaNeutralAuxPrice
                           False, 0, None, None, None, None,  # continuousUpdate .. basisPointsType
                           c.combo_legs_descrip, *_legs(c), *_order_legs(req),
                           None, None, None,  # scaleInit/Subs/PriceIncrement
                           "",  # hedgeType
                           False, "", "", False, False,  # optOut .. notHeld, dncPresent
                           "",  # algoStrategy
                           False, req.what_if, order.status,
                           *_what_if_state(order),
                           False, False,  # randomizeSize, randomizePrice
                           0,  # conditions
                           "", None, None, None, None, None, None, 0,  # adjusted* ..
                           "", "", "",  # softDollarTier name, val, displayName
                           None, False, False, False, False]  # cashQty .. usePriceMgmtAlgo
    if server_version >= 159:
        fields.append(None)  # duration
    if server_version >= 160:
        fields.append(None)  # postToAts
    if server_version >= 162:
        fields.append(False)  # autoCancelParent
    if server_version >= 170:
        fields += [None, None, None, None, None]
    return fields


def _what_if_state(order: SimOrder) -> list[Field]:
    """OrderState margin/commission block (13 fields before warningText inclusive)."""
    if not order.request.what_if:
        return ["", "", "", "", "", "", "", "", "", None, None, None, "", ""]
    m = order.what_if_margin
    return [m.get("initBefore", "0"), m.get("maintBefore", "0"), m.get("ewlBefore", "0"),
            m.get("initChange", "0"), m.get("maintChange", "0"), m.get("ewlChange", "0"),
            m.get("initAfter", "0"), m.get("maintAfter", "0"), m.get("ewlAfter", "0"),
            order.commission, order.commission, order.commission, "USD", ""]


def encode_completed_order(order: SimOrder, server_version: int) -> list[Field]:
    """completedOrder (101): no orderId on the wire (ib_insync keys it by permId)."""
    req, c = order.request, order.request.contract
    fields: list[Field] = [101, *_contract11(c), *_order_head(req),
                           order.perm_id, req.outside_rth, False, 0, "",
                           "", "", "", "", "",  # fa*, modelCode
                           "", "", None, "",  # goodTillDate, rule80A, percentOffset, settling
                           0, "", -1,  # shortSaleSlot, designatedLocation, exemptCode
                           None, None, None, None, None,  # startingPrice .. stockRangeUpper
                           None, False, False, None, 3, 0,  # displaySize .. triggerMethod
                           None, None, "", None,  # volatility .. deltaNeutralAuxPrice
                           False, 0, None, None,  # continuousUpdate .. trailingPercent
                           c.combo_legs_descrip, *_legs(c), *_order_legs(req),
                           None, None, None, "",  # scale*, hedgeType
                           "", "", False, False,  # clearingAccount .. dncPresent
                           "", False, order.status, False, False,  # algo, solicited, status, rnd
                           0,  # conditions
                           None, None, None, False, False,  # trailStopPrice .. isOmsContainer
                           "", _num(order.filled), 0, False, "", False, False,
                           0,  # parentPermId
                           order.completed_time, order.completed_status]
    if server_version >= 170:
        fields += [None, None, None, None, None]
    return fields


def encode_order_status(order: SimOrder) -> list[Field]:
    return [3, order.request.order_id, order.status, _num(order.filled), _num(order.remaining),
            order.avg_fill_price, order.perm_id, order.request.parent_id,
            order.last_fill_price, order.client_id, order.why_held, 0.0]


def encode_exec_details(req_id: int, fill: SimFill) -> list[Field]:
    c = fill.contract
    return [11, req_id, fill.order_id, *_contract11(c), fill.exec_id,
            exec_time_wire(fill.time), fill.account,
            fill.exchange, fill.side, _num(fill.shares), fill.price, fill.perm_id,
            fill.client_id, fill.liquidation, _num(fill.cum_qty), fill.avg_price,
            fill.order_ref, "", _opt(fill.ev_multiplier or None), "", fill.last_liquidity]


def exec_time_wire(time: str) -> str:
    """SimFill.time ("YYYYMMDD  HH:MM:SS", UTC) as TWS 10 sends it: "YYYYMMDD HH:MM:SS UTC"."""
    parts = time.split()
    if len(parts) == 2:
        return f"{parts[0]} {parts[1]} UTC"
    return time


def encode_exec_details_end(req_id: int) -> list[Field]:
    return [55, 1, req_id]


def encode_commission_report(fill: SimFill) -> list[Field]:
    pnl: Field = UNSET_DOUBLE_STR if fill.realized_pnl is None else fill.realized_pnl
    return [59, 1, fill.exec_id, fill.commission, fill.contract.currency or "USD", pnl,
            UNSET_DOUBLE_STR, None]


def encode_position(account: str, contract: SimContract, position: float,
                    avg_cost: float) -> list[Field]:
    return [61, 3, account, *_contract11(contract), _num(position), avg_cost]


def encode_position_end() -> list[Field]:
    return [62, 1]


def encode_account_value(key: str, value: str, currency: str, account: str) -> list[Field]:
    return [6, 2, key, value, currency, account]


def encode_portfolio(contract: SimContract, position: float, market_price: float,
                     market_value: float, avg_cost: float, unrealized_pnl: float,
                     realized_pnl: float, account: str) -> list[Field]:
    return [7, 8, *_contract11(contract, exchange=False, primary=True), _num(position),
            market_price, market_value, avg_cost, unrealized_pnl, realized_pnl, account]


def encode_account_time(hhmm: str) -> list[Field]:
    return [8, 1, hhmm]


def encode_account_download_end(account: str) -> list[Field]:
    return [54, 1, account]


def encode_account_update_multi(req_id: int, account: str, model_code: str, key: str,
                                value: str, currency: str) -> list[Field]:
    return [73, 1, req_id, account, model_code, key, value, currency]


def encode_account_update_multi_end(req_id: int) -> list[Field]:
    return [74, 1, req_id]


def encode_account_summary(req_id: int, account: str, tag: str, value: str,
                           currency: str) -> list[Field]:
    return [63, 1, req_id, account, tag, value, currency]


def encode_account_summary_end(req_id: int) -> list[Field]:
    return [64, 1, req_id]


def encode_open_order_end() -> list[Field]:
    return [53, 1]


def encode_completed_orders_end() -> list[Field]:
    return [102]


def iter_fields(values: list[Field]) -> Iterator[str]:
    """The wire text of each field (the seam's encoding rule) — for tests and logging."""
    for v in values:
        if v is None:
            yield ""
        elif isinstance(v, bool):
            yield "1" if v else "0"
        elif isinstance(v, (int, str)):
            yield str(v)
        else:
            yield repr(float(v))
