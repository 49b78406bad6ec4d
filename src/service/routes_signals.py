"""``POST /signals``: the seam where a scanner plugs in — signals feed the Trader running inside
the service (risk check → spread on the live chain → order), and ``GET /signals/{id}`` follows
one to its order."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Path, Response, status

from src.app.signals import Signal
from src.service.auth import require_token
from src.service.errors import ApiError
from src.service.models import SIGNAL_ID_PATTERN, SignalIn, SignalOut
from src.service.orders import IDEMPOTENCY_HEADER
from src.service.responses import COMMON
from src.service.state import ServiceState, get_state

router = APIRouter(dependencies=[Depends(require_token)], responses=COMMON, tags=["signals"])


def signal_out(state: ServiceState, signal: Signal) -> SignalOut:
    trader = state.trader
    record = trader.trade_executor.trades.get(signal.id)
    outcome = trader.wait_for_outcome(signal.id, timeout=0)
    state_name, order_id, error = "PENDING", None, None
    if record is not None:
        state_name = "PENDING" if record.status == "NEW" else record.status
        order_id, error = record.order_id, record.error
    elif outcome is not None:
        state_name, error = outcome[0], str(outcome[1])
    return SignalOut(id=signal.id, symbol=signal.symbol, direction=signal.direction,
                     contracts=signal.contracts, price_type=signal.price_type,
                     limit_price=signal.limit_price, state=state_name, order_id=order_id,
                     error=error)


@router.post("/signals", response_model=SignalOut, status_code=status.HTTP_202_ACCEPTED,
             summary="Submit a trade signal to the Trader (LONG → bull call, SHORT → bear put)",
             responses={200: {"model": SignalOut, "description": "replayed: the key's signal"}})
def submit_signal(req: SignalIn, response: Response,
                  idempotency_key: str | None = Header(
                      None, alias=IDEMPOTENCY_HEADER, pattern=SIGNAL_ID_PATTERN,
                      description="becomes the signal id (and its order_ref): sent once"),
                  state: ServiceState = Depends(get_state)) -> SignalOut:
    if not state.trader_running:
        raise ApiError(503, "TraderStopped",
                       "the Trader is not running in this service (service.trader: false)")
    if idempotency_key is not None:
        known = state.signals.get(idempotency_key)
        if known is not None:
            response.status_code = status.HTTP_200_OK
            return signal_out(state, known)
    if req.price_type == "MARKET" and req.limit_price is not None:
        raise ApiError(422, "ValidationError", "limit_price must be null for MARKET signals",
                       field="limit_price")
    extra = {"id": idempotency_key} if idempotency_key is not None else {}
    signal = Signal(symbol=req.symbol.upper(), direction=req.direction, contracts=req.contracts,
                    price_type=req.price_type, limit_price=req.limit_price,
                    created=state.clock.now(), **extra)
    state.remember_signal(signal)
    state.trader.submit_signal(signal)
    response.headers["Location"] = f"/signals/{signal.id}"
    return signal_out(state, signal)


@router.get("/signals/{signal_id}", response_model=SignalOut,
            summary="A submitted signal: PENDING, REJECTED, QUEUED, PLACED (order_id), …")
def get_signal(signal_id: str = Path(pattern=SIGNAL_ID_PATTERN),
               state: ServiceState = Depends(get_state)) -> SignalOut:
    signal = state.signals.get(signal_id)
    if signal is None:
        raise ApiError(404, "NotFound", f"no signal {signal_id}", field="signal_id")
    return signal_out(state, signal)
