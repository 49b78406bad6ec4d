"""``POST /paper/roundtrip`` — seed 003's temporary endpoint: quote AAPL, place a 1-lot bull call
spread LIMIT far below the market (it rests, nothing fills), cancel it. Refused on a live
account, whatever the configuration allows."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends

from src.app.executor import select_spread
from src.brokers.base import FINAL_STATUSES, BrokerApi
from src.brokers.errors import LiveTradingNotAllowed
from src.service.auth import require_token
from src.service.errors import ApiError, broker_call, to_api_error
from src.service.health import is_live_account
from src.service.models import QuoteOut, RoundtripOut
from src.service.orders import chain_of, check_may_trade, spot
from src.service.responses import COMMON
from src.service.state import ServiceState, get_broker, get_state
from src.utils.logger import log_info, mask_account

router = APIRouter(dependencies=[Depends(require_token)], responses=COMMON, tags=["paper"])

SYMBOL = "AAPL"
FAR_LIMIT = 0.05  # one tick: far below any AAPL spread's debit, so the order rests
ACK_WAIT = 5.0
CANCEL_WAIT = 10.0
RESTING = ("Submitted", "PreSubmitted", *FINAL_STATUSES)


def _wait_status(broker: Any, order_id: str, ok: Callable[[str], bool], seconds: float) -> str:
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    while True:
        current = str(broker.get_order_status(order_id).get("status", ""))
        if ok(current) or time.monotonic() >= deadline:
            return current
        pause.wait(0.02)


@router.post("/paper/roundtrip", response_model=RoundtripOut,
             summary="Paper check: quote AAPL, place a 1-lot LIMIT far away, cancel it")
def roundtrip(state: ServiceState = Depends(get_state),
              broker: BrokerApi = Depends(get_broker)) -> RoundtripOut:
    started = time.monotonic()
    check_may_trade(state, broker)
    if is_live_account(broker):
        raise to_api_error(LiveTradingNotAllowed(
            "the paper round trip is refused on a live account"))
    data = broker_call(broker, broker.get_market_data, SYMBOL)
    if "error" in data:
        raise ApiError(503, "QuoteFailed", f"quote {SYMBOL}: {data['error']}", retry_after=5)
    quote = QuoteOut.model_validate(data)
    spread = select_spread(chain_of(broker, SYMBOL), SYMBOL, "LONG", spot(data))
    ref = f"roundtrip-{uuid.uuid4().hex[:12]}"
    order_id = str(broker_call(broker, broker.place_order, SYMBOL, "LONG", 1, spread, "LIMIT",
                               FAR_LIMIT, order_ref=ref))
    before = _wait_status(broker, order_id, lambda s: s in RESTING, ACK_WAIT)
    sent = bool(broker_call(broker, broker.cancel_order, order_id))
    after = _wait_status(broker, order_id, lambda s: s in ("Cancelled", "ApiCancelled"),
                         CANCEL_WAIT if sent else 0.0)
    if after not in ("Cancelled", "ApiCancelled"):
        raise ApiError(504, "CancelNotConfirmed",
                       f"order {order_id} is {after or '?'} {CANCEL_WAIT:g}s after the cancel "
                       f"(cancel sent: {sent}); check it with GET /orders/{order_id}")
    log_info(f"Paper round trip: order #{order_id} placed ({before}) and cancelled ({after})")
    return RoundtripOut(symbol=SYMBOL, quote=quote, order_id=order_id, limit_price=FAR_LIMIT,
                        status_before_cancel=before, cancel_sent=sent, status_after_cancel=after,
                        account=mask_account(broker.account_id or "") or None,
                        seconds=round(time.monotonic() - started, 3))
