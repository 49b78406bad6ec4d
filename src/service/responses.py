"""The error responses every protected route documents (OpenAPI)."""

from __future__ import annotations

from typing import Any

from src.service.models import ErrorOut

COMMON: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or invalid bearer token"},
    403: {"model": ErrorOut, "description": "no token configured; read-only / live interlock"},
    404: {"model": ErrorOut, "description": "unknown symbol, order or signal"},
    409: {"model": ErrorOut, "description": "refused by IB (`ib_code`)"},
    422: {"model": ErrorOut, "description": "bad input (`field` names it)"},
    429: {"model": ErrorOut, "description": "IB pacing limit (Retry-After)"},
    503: {"model": ErrorOut, "description": "not connected to the gateway (Retry-After)"},
    504: {"model": ErrorOut, "description": "the gateway did not answer in time"},
}
