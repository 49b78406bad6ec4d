"""Unauthenticated operations endpoints: ``/health``, ``/ready``, ``/metrics``."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from src.brokers.base import BrokerApi
from src.service.errors import RETRY_AFTER_SECONDS
from src.service.health import health_of
from src.service.metrics import CONTENT_TYPE
from src.service.models import HealthOut, ReadyOut
from src.service.scrub import scrub
from src.service.state import ServiceState, get_broker, get_state

router = APIRouter(tags=["operations"])
VERSION = "0.1.0"


@router.get("/health", response_model=HealthOut, summary="The process is alive")
def health(state: ServiceState = Depends(get_state)) -> HealthOut:
    return HealthOut(version=VERSION, uptime_seconds=round(time.monotonic() - state.started, 3),
                     time=state.clock.now())


@router.get("/ready", response_model=ReadyOut, summary="Connected to the gateway (else 503)",
            responses={503: {"model": ReadyOut, "description": "not connected: `reason` says why"}})
def ready(state: ServiceState = Depends(get_state),
          broker: BrokerApi = Depends(get_broker)) -> ReadyOut | JSONResponse:
    view = health_of(broker)
    body = ReadyOut(ready=view.connected, connected=view.connected, broker=state.backend,
                    gateway=state.gateway, reconnecting=view.reconnecting,
                    reconnects=view.reconnect_count, last_error_code=view.last_error_code,
                    data_health=view.data_health)
    if view.connected:
        return body
    why = "reconnecting to" if view.reconnecting else "not connected to"
    body.reason = f"{why} the IB gateway at {state.gateway}" + (
        f": {view.last_error}" if view.last_error else "")
    return JSONResponse(scrub(body.model_dump(mode="json")), status_code=503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@router.get("/metrics", summary="Prometheus exposition (text format)", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "ib_* and ibkr_service_* metrics"}})
def metrics(state: ServiceState = Depends(get_state),
            broker: BrokerApi = Depends(get_broker)) -> Response:
    return Response(state.metrics.exposition(broker), media_type=CONTENT_TYPE)
