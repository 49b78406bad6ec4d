"""The live order-event path (src/brokers/order_events.py): events merged once per socket read.

Real client-library objects (ib_insync or ib_async, whichever the venv has), no sockets: the
gateway's own encoders build the messages of partially filled spread orders and the library's
Decoder feeds them to the adapter's ``IB`` on the adapter's loop thread, read by read, the way
the library's socket reader does (tcpDataArrived, interpret, tcpDataProcessed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from benchmarks.bench_events import CLIENT_ID, SERVER_VERSION, _spread, order_messages, socket_reads
from src.app.config import Config
from src.brokers import translate
from src.brokers.compat import Decoder
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

FILLS = 3


@pytest.fixture()
def api() -> Iterator[IBKRIBInsyncApi]:
    adapter = IBKRIBInsyncApi(Config().replace(IBKR_CLIENT_ID=CLIENT_ID,
                                               IBKR_AUTO_RECONNECT=False))
    adapter.ib.wrapper.clientId = CLIENT_ID
    try:
        yield adapter
    finally:
        adapter.close()


def track(api: IBKRIBInsyncApi, first_id: int, n: int) -> None:
    """Records for order ids first_id.. as place_order leaves them (the bench does the same)."""
    with api.lock:
        for k in range(n):
            oid = str(first_id + k)
            api.orders[oid] = translate.order_record(
                order_id=oid, symbol="AAPL", direction="LONG", contracts=FILLS,
                spread=_spread(), price_type="LIMIT", limit_price=1.25,
                order_ref=f"bench-{oid}", legs=[], now=datetime(2026, 11, 20, 10, 0))


def reader(api: IBKRIBInsyncApi) -> Callable[[list[list[str]]], None]:
    """Feed one socket read on the loop thread, as the client library's reader does."""
    wrapper = api.ib.wrapper
    decoder = Decoder(wrapper, SERVER_VERSION)

    def read(chunk: list[list[str]]) -> None:
        def feed() -> None:
            wrapper.tcpDataArrived()
            for fields in chunk:
                decoder.interpret(fields)
            wrapper.tcpDataProcessed()
        api._loop.call(feed)
    return read


def trade_of(api: IBKRIBInsyncApi, oid: int) -> Any:
    return api.ib.wrapper.trades[(CLIENT_ID, oid)]


def test_a_burst_leaves_every_record_right_after_each_read(api: IBKRIBInsyncApi) -> None:
    n = 20
    track(api, 1, n)
    read = reader(api)
    for chunk in socket_reads(order_messages(1, n, FILLS), 2048):
        read(chunk)
        # the loop has not run a further iteration: what the read carried is in the records
        with api.lock:
            for k in range(n):
                trade = api.ib.wrapper.trades.get((CLIENT_ID, 1 + k))
                if trade is None:
                    continue
                record = api.orders[str(1 + k)]
                assert record["status"] == trade.orderStatus.status
                assert record["filled"] == trade.orderStatus.filled
                assert len(record["executions"]) == len(trade.fills)
    for k in range(n):
        status = api.get_order_status(str(1 + k))
        assert (status["status"], status["filled"], status["remaining"]) == ("Filled", FILLS, 0)
        assert [e["execution_id"] for e in status["executions"]] == \
            [f.execution.execId for f in trade_of(api, 1 + k).fills]
        assert [c["commission"] for c in status["commissions"]] == [1.3] * FILLS
        assert status["filled_price"] == pytest.approx(1.2)


def test_one_status_copy_per_order_per_read(api: IBKRIBInsyncApi,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    track(api, 1, 2)
    calls: list[str] = []
    service = api.order_service
    original = service._apply_status

    def counting(record: dict[str, Any], trade: Any) -> None:
        calls.append(record["id"])
        original(record, trade)

    monkeypatch.setattr(service, "_apply_status", counting)
    reader(api)(order_messages(1, 2, FILLS))  # both orders' whole lives in one read
    assert sorted(calls) == ["1", "2"]  # not once per orderStatus event (1 + FILLS each)
    assert api.orders["2"]["status"] == "Filled" and len(api.orders["2"]["commissions"]) == 3


def test_events_without_an_update_event_are_merged_one_loop_iteration_later(
        api: IBKRIBInsyncApi) -> None:
    track(api, 1, 1)
    wrapper = api.ib.wrapper
    decoder = Decoder(wrapper, SERVER_VERSION)
    msgs = order_messages(1, 1, FILLS)

    def interpret_only() -> None:  # no tcpDataProcessed: no updateEvent
        for fields in msgs:
            decoder.interpret(fields)

    api._loop.call(interpret_only)
    api._loop.call(lambda: None)  # a round trip through the loop: the scheduled flush ran
    with api.lock:
        record = api.orders["1"]
        assert record["status"] == "Filled" and len(record["executions"]) == FILLS
        assert len(record["commissions"]) == FILLS
    assert len(api.order_service.batch) == 0


def test_a_reader_sees_events_not_merged_yet(api: IBKRIBInsyncApi) -> None:
    """get_order_status merges what is pending first (a caller who saw a fill sees it)."""
    track(api, 1, 1)
    wrapper = api.ib.wrapper
    decoder = Decoder(wrapper, SERVER_VERSION)
    seen: list[dict[str, Any]] = []

    def on_fill(trade: Any, fill: Any) -> None:  # a user's handler, after the adapter's
        seen.append(api.get_order_status("1"))

    api.ib.execDetailsEvent += on_fill
    api._loop.call(lambda: [decoder.interpret(f) for f in order_messages(1, 1, FILLS)])
    assert [len(s["executions"]) for s in seen] == [1, 2, 3]
    assert [s["filled"] for s in seen] == [1, 2, 3]  # from the executions (order_fills)


def test_direct_handler_calls_update_at_once_with_a_batch_pending(
        api: IBKRIBInsyncApi) -> None:
    track(api, 1, 1)
    decoder = Decoder(api.ib.wrapper, SERVER_VERSION)
    msgs = order_messages(1, 1, FILLS)

    def events_then_direct_call() -> tuple[str, int, int]:
        for fields in msgs:
            decoder.interpret(fields)  # noted by the batch, not merged yet
        trade = trade_of(api, 1)
        api._on_order_status(trade)  # the seeds' direct call: synchronous
        for fill in trade.fills:
            api._on_execution(trade, fill)
            api._on_commission_report(trade, fill, fill.commissionReport)
        record = api.orders["1"]
        return record["status"], len(record["executions"]), len(record["commissions"])

    assert api._loop.call(events_then_direct_call) == ("Filled", FILLS, FILLS)
    api._loop.call(lambda: None)  # the batch's own flush: nothing doubled
    assert len(api.get_order_status("1")["executions"]) == FILLS
    assert len(api.get_order_status("1")["commissions"]) == FILLS


def test_a_failing_order_does_not_drop_the_others(api: IBKRIBInsyncApi,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    track(api, 1, 2)
    service = api.order_service
    original = service._apply_status

    def fail_first(record: dict[str, Any], trade: Any) -> None:
        if record["id"] == "1":
            raise RuntimeError("boom")
        original(record, trade)

    monkeypatch.setattr(service, "_apply_status", fail_first)
    reader(api)(order_messages(1, 2, FILLS))
    assert api.orders["2"]["status"] == "Filled"
    assert len(api.orders["2"]["executions"]) == FILLS
    assert len(api.order_service.batch) == 0


def test_a_commission_in_a_later_read_than_its_fill_is_recorded(api: IBKRIBInsyncApi) -> None:
    track(api, 1, 1)
    read = reader(api)
    msgs = order_messages(1, 1, 1)  # openOrder, Submitted, execDetails, commission, Filled
    read(msgs[:3])
    with api.lock:
        assert len(api.orders["1"]["executions"]) == 1 and api.orders["1"]["commissions"] == []
    read(msgs[3:])
    with api.lock:
        assert [c["commission"] for c in api.orders["1"]["commissions"]] == [1.3]
        assert api.orders["1"]["status"] == "Filled"


def test_a_fill_noted_by_its_event_but_missing_from_the_trade_is_still_merged(
        api: IBKRIBInsyncApi) -> None:
    """The flush takes a Trade's new fills from ``trade.fills`` and adds any fill an
    execDetails event carried that the Trade does not hold (e.g. a Trade rebuilt after a
    reconnect without it) — here not in ``ib.fills()`` either, so no sweep finds it."""
    track(api, 1, 1)
    wrapper = api.ib.wrapper
    decoder = Decoder(wrapper, SERVER_VERSION)

    def read_with_a_fill_gone() -> None:
        wrapper.tcpDataArrived()
        for fields in order_messages(1, 1, FILLS):
            decoder.interpret(fields)
        gone = trade_of(api, 1).fills.pop(1)  # the middle fill: its event was noted, but
        del wrapper.fills[gone.execution.execId]  # neither the Trade nor ib.fills() has it
        wrapper.tcpDataProcessed()

    api._loop.call(read_with_a_fill_gone)
    with api.lock:
        record = api.orders["1"]
        assert len(record["executions"]) == FILLS
        assert len({e["execution_id"] for e in record["executions"]}) == FILLS
