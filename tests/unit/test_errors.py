"""IB error codes → the exception tree."""

from __future__ import annotations

import pytest

from src.brokers import errors as e


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (1100, e.ConnectionLost, True), (504, e.ConnectionLost, True),
        (502, e.ConnectionLost, True), (1300, e.ConnectionLost, True),
        (326, e.ConnectionLost, True), (100, e.PacingViolation, True),
        (101, e.PacingViolation, True), (200, e.ContractNotFound, False),
        (201, e.OrderRejected, False), (103, e.OrderRejected, False),
        (161, e.OrderRejected, False), (10147, e.OrderRejected, False),
        (2104, e.RetryableError, True), (9999, e.NonRetryableError, False),
    ],
)
def test_error_from_ib(code: int, cls: type[e.BrokerError], retryable: bool) -> None:
    error = e.error_from_ib(code, "text")
    assert type(error) is cls
    assert error.code == code and error.retryable is retryable
    assert "text" in str(error) and str(code) in str(error)


def test_contract_compatible_bases() -> None:
    assert issubclass(e.NotConnected, ValueError) and e.NotConnected("x").retryable
    assert issubclass(e.InvalidOrder, ValueError) and not e.InvalidOrder("x").retryable
    assert issubclass(e.ReadOnlyViolation, ValueError)
    assert issubclass(e.LiveTradingNotAllowed, ValueError)
    assert issubclass(e.OrderRejected, RuntimeError)
    assert str(e.OrderRejected("closed", 201)) == "Order placement failed: closed"
    assert str(e.OrderRejected("Order placement failed: x")) == "Order placement failed: x"


def test_code_tables_are_disjoint_where_it_matters() -> None:
    assert not e.DATA_FARM_DOWN & e.DATA_FARM_OK
    assert not e.CONNECTIVITY_LOST & e.CONNECTIVITY_RESTORED_DATA_LOST
    assert not e.ORDER_REJECTED & e.WARNINGS
    assert e.is_warning(2104) and e.is_warning(202) and not e.is_warning(201)


def test_from_exception() -> None:
    assert isinstance(e.from_exception(ConnectionRefusedError("no")), e.ConnectionLost)
    assert isinstance(e.from_exception(TimeoutError()), e.RequestTimeout)
    inner = e.ContractNotFound("x", 200)
    assert e.from_exception(inner) is inner

    class Coded(Exception):
        code = 201
        message = "rejected"

    assert isinstance(e.from_exception(Coded()), e.OrderRejected)
    assert type(e.from_exception(KeyError("k"))) is e.NonRetryableError


def test_an_asyncio_request_timeout_is_a_retryable_request_timeout() -> None:
    """Python 3.11+: asyncio's and concurrent.futures' TimeoutError are the builtin, so a request
    that ``asyncio.wait_for`` gives up on maps to RequestTimeout (retryable). On 3.10 it was a
    different class and surfaced as a non-retryable error."""
    import asyncio
    import concurrent.futures

    async def never() -> None:
        await asyncio.wait_for(asyncio.Event().wait(), timeout=0)

    with pytest.raises(TimeoutError) as caught:
        asyncio.run(never())
    for exc in (caught.value, concurrent.futures.TimeoutError("late")):
        mapped = e.from_exception(exc)
        assert isinstance(mapped, e.RequestTimeout) and mapped.retryable is True
