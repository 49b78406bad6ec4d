"""Rules every broker over a gateway client applies to ``place_order`` (pure functions), shared
by the adapter (:class:`~src.brokers.ibkr_ib_insync.IBKRIBInsyncApi`) and
:class:`~src.brokers.client_broker.ClientBroker`."""

from __future__ import annotations

from src.brokers.errors import (
    LiveTradingNotAllowed,
    OrderInterrupted,
    OrderRejected,
    from_exception,
)


def check_live(is_live: bool, trading_mode: str, allow_live: bool, account_id: str,
               port: int) -> None:
    """``LiveTradingNotAllowed`` for an order on a live account unless ``trading_mode: live``
    and ``allow_live: true``."""
    if is_live and not (trading_mode == "live" and allow_live):
        raise LiveTradingNotAllowed(
            "orders on a live account need trading_mode 'live' and allow_live true "
            f"(account {account_id or '?'}, port {port})")


def order_failure(exc: BaseException) -> OrderRejected | OrderInterrupted:
    """What ``place_order`` raises for a failure that is not a refusal already: retryable
    errors (a connection loss, a timeout) become ``OrderInterrupted`` (retry with the same
    ``order_ref``), anything else ``OrderRejected``; both "Order placement failed: …"."""
    error = from_exception(exc)
    reason = str(exc) or type(exc).__name__
    if error.retryable:
        return OrderInterrupted(reason, error.code)
    return OrderRejected(reason, error.code)
