"""Order endpoints (bearer token): place a spread (idempotent), its status, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Path, Response, status

from src.brokers.base import FINAL_STATUSES, BrokerApi
from src.service import orders
from src.service.auth import require_token
from src.service.errors import ApiError, broker_call, not_connected
from src.service.health import health_of
from src.service.models import (
    ORDER_ID_PATTERN,
    ORDER_REF_PATTERN,
    CancelOut,
    OrderIn,
    OrderOut,
    order_out,
)
from src.service.responses import COMMON
from src.service.scrub import scrub
from src.service.state import ServiceState, get_broker, get_state

router = APIRouter(dependencies=[Depends(require_token)], responses=COMMON, tags=["orders"])

OrderIdPath = Path(pattern=ORDER_ID_PATTERN, description="the order id POST /orders returned")


def _status(broker: Any, order_id: str) -> dict[str, Any]:
    record = broker_call(broker, broker.get_order_status, order_id)
    if not record:
        raise ApiError(404, "NotFound", f"no order {order_id}", field="order_id")
    return dict(scrub(record))


@router.post("/orders", response_model=OrderOut, status_code=status.HTTP_201_CREATED,
             summary="Place a vertical spread (one BAG order); idempotent by key",
             responses={200: {"model": OrderOut, "description": "replayed: the key's order"}})
def place_order(req: OrderIn, response: Response,
                idempotency_key: str | None = Header(
                    None, alias="Idempotency-Key", pattern=ORDER_REF_PATTERN,
                    description="same key → same order, nothing sent again (= order_ref)"),
                state: ServiceState = Depends(get_state),
                broker: BrokerApi = Depends(get_broker)) -> OrderOut:
    order_id, replayed = orders.place(state, broker, req, idempotency_key)
    response.headers["Location"] = f"/orders/{order_id}"
    if replayed:
        response.status_code = status.HTTP_200_OK
    return order_out(_status(broker, order_id), replayed=replayed)


@router.get("/orders/{order_id}", response_model=OrderOut, summary="An order's status and fills")
def get_order(order_id: str = OrderIdPath, broker: BrokerApi = Depends(get_broker)) -> OrderOut:
    return order_out(_status(broker, order_id))


@router.delete("/orders/{order_id}", response_model=CancelOut,
               status_code=status.HTTP_202_ACCEPTED, summary="Cancel an open order")
def cancel_order(order_id: str = OrderIdPath, state: ServiceState = Depends(get_state),
                 broker: BrokerApi = Depends(get_broker)) -> CancelOut:
    record = _status(broker, order_id)
    orders.check_may_trade(state, broker)
    if record.get("status") in FINAL_STATUSES:
        raise ApiError(409, "OrderFinished",
                       f"order {order_id} is {record.get('status')}: nothing to cancel")
    before = getattr(broker, "last_error", None)
    sent = bool(broker_call(broker, broker.cancel_order, order_id))
    if not sent:
        if not broker.connected:
            raise not_connected(broker)
        view = health_of(broker)
        after = getattr(broker, "last_error", None)
        code = view.last_error_code if after is not before else None
        raise ApiError(409, "CancelRejected", f"cancel of order {order_id} refused"
                       + (f" (IB error {code})" if code is not None else ""), ib_code=code)
    latest = broker_call(broker, broker.get_order_status, order_id) or record
    return CancelOut(id=order_id, cancel_sent=True, status=str(latest.get("status")))
