"""Responses never carry a full account id: every string in a payload is masked."""

from __future__ import annotations

from typing import Any

from src.utils.logger import mask_account


def scrub(value: Any) -> Any:
    """``value`` with IB account ids masked in every string, recursively (copies)."""
    if isinstance(value, str):
        return mask_account(value)
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value
