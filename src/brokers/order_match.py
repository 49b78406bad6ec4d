"""Matching the gateway's re-created Trades and fills to tracked orders (after a reconnect).

A tracked order is found by permId, then orderRef, then orderId of our client id: the order id
alone is not enough (another client, or a restart, may reuse it).
"""

from __future__ import annotations

from typing import Any


def match_trade(trades: list[Any], record: dict[str, Any], order_id: str, client_id: int) -> Any:
    perm, ref = record.get("perm_id"), record.get("order_ref")
    for by in ("perm", "ref", "id"):
        for t in trades:
            o = getattr(t, "order", None)
            if by == "perm" and perm and getattr(o, "permId", 0) == perm:
                return t
            if by == "ref" and ref and getattr(o, "orderRef", "") == ref:
                return t
            if by == "id" and str(getattr(o, "orderId", "")) == order_id \
                    and getattr(o, "clientId", client_id) in (client_id, 0):
                return t
    return None


def fill_matches(fill: Any, record: dict[str, Any], order_id: str, client_id: int) -> bool:
    ex = getattr(fill, "execution", None)
    if ex is None:
        return False
    perm, ref = record.get("perm_id"), record.get("order_ref")
    if perm and getattr(ex, "permId", 0) == perm:
        return True
    if ref and getattr(ex, "orderRef", "") == ref:
        return True
    return str(getattr(ex, "orderId", "")) == order_id and getattr(ex, "clientId", -1) == client_id
