"""Spread orders over HTTP: building the spread, the interlocks, idempotent placement."""

from __future__ import annotations

import json
from typing import Any

from src.app.config import setting
from src.app.executor import round_to_tick, select_spread
from src.brokers.errors import (
    InvalidOrder,
    LiveTradingNotAllowed,
    NonRetryableError,
    ReadOnlyViolation,
)
from src.brokers.ibkr_api import occ_symbol
from src.models.option import Option, OptionSpread, OptionType
from src.service.errors import ApiError, broker_call, from_error_shape, not_connected, to_api_error
from src.service.health import is_live_account
from src.service.models import OrderIn
from src.service.state import ServiceState

IDEMPOTENCY_HEADER = "Idempotency-Key"


def check_may_trade(state: ServiceState, broker: Any) -> None:
    """The interlocks every order-sending endpoint applies before touching the broker (the
    adapter applies them too; the placeholder does not): read-only, then live accounts."""
    config = state.config
    if setting(config, "IBKR_READ_ONLY", False):
        raise to_api_error(ReadOnlyViolation(
            "the service is read-only (ibkr.read_only: true): orders and cancels are refused"))
    if getattr(broker, "connected", False) is not True:
        raise not_connected(broker)
    live_allowed = (setting(config, "TRADING_MODE", "paper") == "live"
                    and setting(config, "ALLOW_LIVE", False))
    if is_live_account(broker) and not live_allowed:
        raise to_api_error(LiveTradingNotAllowed(
            "orders on a live account need trading_mode: live and allow_live: true"))


def spot(quote: dict[str, Any]) -> float | None:
    if "error" in quote:
        return None
    bid, ask, last = quote.get("bid"), quote.get("ask"), quote.get("last")
    if isinstance(bid, (int, float)) and isinstance(ask, (int, float)) and 0 < bid <= ask:
        return (bid + ask) / 2
    return float(last) if isinstance(last, (int, float)) and last > 0 else None


def chain_of(broker: Any, symbol: str) -> list[Option]:
    before = getattr(broker, "last_error", None)
    chain = broker_call(broker, broker.get_option_chain, symbol)
    if not chain:
        error = from_error_shape(broker, f"no option chain for {symbol}", before)
        if type(error) is NonRetryableError:  # nothing more specific known: nothing listed
            raise ApiError(404, "NoOptionChain", error.message, field="symbol")
        raise to_api_error(error)
    return list(chain)


def build_spread(broker: Any, req: OrderIn, symbol: str) -> tuple[OptionSpread, float | None]:
    """The spread the request names (or the one picked from the chain) and its limit price."""
    spread_type = req.spread_type or ("BULL_CALL" if req.direction == "LONG" else "BEAR_PUT")
    right: OptionType = "call" if spread_type == "BULL_CALL" else "put"
    needs_quotes = req.legs is None or (req.price_type == "LIMIT" and req.limit_price is None)
    chain = chain_of(broker, symbol) if needs_quotes else []
    if req.legs is None:
        quote = broker_call(broker, broker.get_market_data, symbol)
        pick = "LONG" if spread_type == "BULL_CALL" else "SHORT"
        try:
            spread = select_spread(chain, symbol, pick, spot(quote))
        except ValueError as e:
            raise ApiError(404, "NoSpread", str(e), field="symbol") from None
    else:
        legs = req.legs
        by_key = {(o.expiration, o.strike, o.option_type): o for o in chain}

        def leg(strike: float) -> Option:
            found = by_key.get((legs.expiration, strike, right))
            return found or Option(symbol=occ_symbol(symbol, legs.expiration, right[0].upper(),
                                                     strike),
                                   underlying=symbol, option_type=right, strike=strike,
                                   expiration=legs.expiration)

        try:
            spread = OptionSpread(symbol=symbol, spread_type=spread_type,
                                  long_leg=leg(legs.long_strike), short_leg=leg(legs.short_strike))
        except ValueError as e:
            raise ApiError(422, "InvalidOrder", str(e), field="legs") from None
    if req.price_type == "MARKET":
        return spread, None
    if req.limit_price is not None:
        return spread, req.limit_price
    if spread.net_debit <= 0:
        raise to_api_error(InvalidOrder(
            "limit_price is required: the legs have no quotes to price the spread from"))
    return spread, round_to_tick(spread.net_debit)


def idempotency_key(req: OrderIn, header: str | None) -> str | None:
    if header is not None and req.order_ref is not None and header != req.order_ref:
        raise ApiError(422, "ValidationError",
                       f"{IDEMPOTENCY_HEADER} header and order_ref differ", field="order_ref")
    return header if header is not None else req.order_ref


def fingerprint(req: OrderIn) -> str:
    return json.dumps(req.model_dump(mode="json", exclude={"order_ref"}), sort_keys=True)


def place(state: ServiceState, broker: Any, req: OrderIn,
          header_key: str | None) -> tuple[str, bool]:
    """Place the order; ``(order_id, replayed)``. A known key returns its order, sends nothing;
    the same key with a different request is a 422."""
    key = idempotency_key(req, header_key)
    check_may_trade(state, broker)
    symbol = req.symbol.upper()
    if key is None:
        return _send(state, broker, req, symbol, None), False
    with state.order_locks.get(key):
        known = state.orders_by_key.get(key)
        if known is not None:
            if known[0] != fingerprint(req):
                raise ApiError(422, "IdempotencyKeyReused",
                               f"{IDEMPOTENCY_HEADER} {key!r} was used for a different order",
                               field="order_ref")
            return str(known[1]), True
        order_id = _send(state, broker, req, symbol, key)
        state.orders_by_key.put(key, (fingerprint(req), order_id))
        return order_id, False


def _send(state: ServiceState, broker: Any, req: OrderIn, symbol: str, key: str | None) -> str:
    spread, limit = build_spread(broker, req, symbol)
    kwargs = {"order_ref": key} if key is not None else {}
    try:
        return str(broker_call(broker, broker.place_order, symbol, req.direction, req.contracts,
                               spread, req.price_type, limit, **kwargs))
    except ApiError as e:
        if e.status != 422:
            state_metrics = getattr(state, "metrics", None)
            if state_metrics is not None:
                state_metrics.order_errors.inc()
        raise
