"""Market data and account endpoints (bearer token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from src.brokers.base import BrokerApi
from src.service.auth import require_token
from src.service.errors import broker_call, from_error_shape, not_connected, to_api_error
from src.service.models import (
    SYMBOL_PATTERN,
    AccountOut,
    ChainOut,
    OptionOut,
    PositionOut,
    PositionsOut,
    QuoteOut,
)
from src.service.orders import chain_of
from src.service.responses import COMMON
from src.service.scrub import scrub
from src.service.state import get_broker

router = APIRouter(dependencies=[Depends(require_token)], responses=COMMON)

SymbolPath = Path(pattern=SYMBOL_PATTERN, description="stock symbol, e.g. AAPL (any case)",
                  examples=["AAPL"])


def _shape_or_raise(broker: Any, data: dict[str, Any], before: Any) -> dict[str, Any]:
    if "error" in data:
        raise to_api_error(from_error_shape(broker, str(data["error"]), before))
    return data


@router.get("/quotes/{symbol}", response_model=QuoteOut, tags=["market data"],
            summary="Quote of a stock (last, bid, ask, volume, high, low, close)")
def quote(symbol: str = SymbolPath, broker: BrokerApi = Depends(get_broker)) -> QuoteOut:
    symbol = symbol.upper()
    before = getattr(broker, "last_error", None)
    data = broker_call(broker, broker.get_market_data, symbol)
    return QuoteOut.model_validate(_shape_or_raise(broker, data, before))


@router.get("/option-chains/{symbol}", response_model=ChainOut, tags=["market data"],
            summary="Calls and puts near the money, nearest expirations, with greeks")
def option_chain(symbol: str = SymbolPath, broker: BrokerApi = Depends(get_broker)) -> ChainOut:
    symbol = symbol.upper()
    chain = chain_of(broker, symbol)
    options = [OptionOut.model_validate(o, from_attributes=True) for o in chain]
    return ChainOut(symbol=symbol, count=len(options),
                    expirations=sorted({o.expiration for o in options}), options=options)


@router.get("/positions", response_model=PositionsOut, tags=["account"],
            summary="Positions by symbol (options by their OCC local symbol)")
def positions(broker: BrokerApi = Depends(get_broker)) -> PositionsOut:
    if not broker.connected:
        raise not_connected(broker)
    rows = broker_call(broker, broker.get_positions)
    out = [PositionOut.model_validate(scrub({**row, "symbol": row.get("symbol") or key,
                                             "trades": [str(t) for t in row.get("trades", [])]}))
           for key, row in sorted(rows.items())]
    return PositionsOut(count=len(out), positions=out)


@router.get("/account", response_model=AccountOut, tags=["account"],
            summary="Account summary (the account id masked)")
def account(broker: BrokerApi = Depends(get_broker)) -> AccountOut:
    before = getattr(broker, "last_error", None)
    data = broker_call(broker, broker.get_account_summary)
    return AccountOut.model_validate(scrub(_shape_or_raise(broker, data, before)))
