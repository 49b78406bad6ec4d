"""The broker error tree (src/brokers/errors.py) mapped onto HTTP, in one table.

======================================  ======  =============================================
error                                   status  notes
======================================  ======  =============================================
request validation / ``InvalidOrder``   422     ``field`` names the bad input
``ReadOnlyViolation``                   403     read-only interlock
``LiveTradingNotAllowed``               403     live-account interlock
``ContractNotFound``                    404     IB code 200 (unknown symbol / contract)
``OrderRejected`` / other non-retryable 409     refused by IB: ``ib_code``
``PacingViolation``                     429     ``Retry-After``
``NotConnected`` / ``ConnectionLost``   503     ``Retry-After``
``OrderInterrupted``                    503     ``Retry-After``; retry with the same key
``RequestTimeout``                      504
======================================  ======  =============================================

The placeholder broker raises plain ``ValueError`` / ``RuntimeError`` (the drop-in contract);
:func:`classify` puts those into the tree too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from src.brokers.errors import (
    BrokerError,
    ConnectionLost,
    ContractNotFound,
    InvalidOrder,
    LiveTradingNotAllowed,
    NonRetryableError,
    NotConnected,
    OrderInterrupted,
    OrderRejected,
    PacingViolation,
    ReadOnlyViolation,
    RequestTimeout,
    RetryableError,
)
from src.service.models import ErrorOut, FieldError
from src.utils.logger import log_warning, mask_account

T = TypeVar("T")

RETRY_AFTER_SECONDS = 5
PACING_RETRY_AFTER_SECONDS = 1
_IB_CODE = re.compile(r"\b(?:IB )?error (\d{3,5})\b", re.IGNORECASE)
_FIELD = re.compile(r"^(?:Invalid number of )?([a-z_]+)\b")
_FIELDS = frozenset({"symbol", "direction", "contracts", "price_type", "limit_price",
                     "option_spread", "order_ref", "order_id", "spread_type", "legs"})
_UNKNOWN_SYMBOL = re.compile(r"invalid symbol|unknown symbol|no security definition",
                             re.IGNORECASE)


class ApiError(Exception):
    """An error response: status, a short error name, the detail, and what a client needs."""

    def __init__(self, status: int, error: str, detail: str, *, field: str | None = None,
                 ib_code: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = mask_account(detail)
        self.field = field
        self.ib_code = ib_code
        self.retry_after = retry_after

    def body(self) -> ErrorOut:
        return ErrorOut(error=self.error, detail=self.detail, field=self.field,
                        ib_code=self.ib_code, retry_after=self.retry_after)


def _field_of(message: str) -> str | None:
    m = _FIELD.match(message)
    name = m.group(1) if m else ""
    if message.startswith("Invalid number of contracts"):
        return "contracts"
    if message.startswith("Limit price required"):
        return "limit_price"
    return name if name in _FIELDS else None


def classify(exc: BaseException, broker: Any) -> BrokerError:
    """``exc`` as a :class:`BrokerError`; the placeholder's ValueError/RuntimeError included.
    Anything else is re-raised (a bug is a 500, not a disguised 4xx)."""
    if isinstance(exc, BrokerError):
        return exc
    message = str(exc) or type(exc).__name__
    if isinstance(exc, ValueError):
        if getattr(broker, "connected", False) is not True:
            return NotConnected(message)
        return InvalidOrder(message)
    if isinstance(exc, RuntimeError):
        m = _IB_CODE.search(message)
        code = int(m.group(1)) if m else None
        if "read-only" in message:
            return ReadOnlyViolation(message, code)
        return OrderRejected(message, code)
    raise exc


def from_error_shape(broker: Any, message: str, before: BaseException | None) -> BrokerError:
    """The typed error behind a contract error shape (``{"error": …}`` / ``[]``): the broker's
    new ``last_error`` when it set one during the call, else classified from the message."""
    if getattr(broker, "connected", False) is not True:
        return NotConnected(message or "Not connected to IBKR")
    after = getattr(broker, "last_error", None)
    if isinstance(after, BrokerError) and after is not before:
        return after
    if _UNKNOWN_SYMBOL.search(message):
        return ContractNotFound(message, 200)
    return NonRetryableError(message)


def to_api_error(error: BrokerError) -> ApiError:
    """The HTTP response for a broker error (see the module table)."""
    name, text, code = type(error).__name__, error.message, error.code
    if isinstance(error, InvalidOrder):
        return ApiError(422, name, text, field=_field_of(text))
    if isinstance(error, (ReadOnlyViolation, LiveTradingNotAllowed)):
        return ApiError(403, name, text, ib_code=code)
    if isinstance(error, ContractNotFound):
        return ApiError(404, name, text, ib_code=code)
    if isinstance(error, PacingViolation):
        return ApiError(429, name, text, ib_code=code, retry_after=PACING_RETRY_AFTER_SECONDS)
    if isinstance(error, RequestTimeout):
        return ApiError(504, name, text, ib_code=code)
    if isinstance(error, OrderInterrupted):
        return ApiError(503, name, text + " (retry with the same Idempotency-Key)",
                        ib_code=code, retry_after=RETRY_AFTER_SECONDS)
    if isinstance(error, (NotConnected, ConnectionLost, RetryableError)):
        return ApiError(503, name, text, ib_code=code, retry_after=RETRY_AFTER_SECONDS)
    return ApiError(409 if code is not None or isinstance(error, OrderRejected) else 502,
                    name, text, ib_code=code)


def broker_call(broker: Any, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn`` (a broker method); its exceptions leave as :class:`ApiError`."""
    try:
        return fn(*args, **kwargs)
    except (BrokerError, ValueError, RuntimeError) as exc:
        raise to_api_error(classify(exc, broker)) from exc


def not_connected(broker: Any) -> ApiError:
    return to_api_error(NotConnected("Not connected to the IB gateway"))


def _response(err: ApiError) -> JSONResponse:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
    if err.status >= 500:
        log_warning(f"HTTP {err.status} {err.error}: {err.detail}")
    return JSONResponse(err.body().model_dump(exclude_none=True), status_code=err.status,
                        headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers: ApiError, HTTPException and validation errors share ErrorOut."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return _response(exc)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        body = ErrorOut(error=_REASONS.get(exc.status_code, "HTTPError"), detail=str(exc.detail))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [FieldError(field=".".join(str(p) for p in e.get("loc", ())[1:]) or
                             str(next(iter(e.get("loc", ("request",))), "request")),
                             location=str(next(iter(e.get("loc", ("request",))), "request")),
                             message=str(e.get("msg", "invalid")))
                  for e in exc.errors()]
        first = errors[0] if errors else FieldError(field="request", location="request",
                                                    message="invalid request")
        body = ErrorOut(error="ValidationError", detail=f"{first.field}: {first.message}",
                        field=first.field, errors=errors)
        return JSONResponse(body.model_dump(exclude_none=True), status_code=422)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "Conflict", 422: "ValidationError",
            503: "ServiceUnavailable"}
