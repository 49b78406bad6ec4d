"""Market data streams, option-chain batching and positions/account with the stub IB."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock, patch

import pytest
import stubs

from src.app.config import Config
from src.brokers.compat import Contract, Position, Ticker
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi


def make_api(state: stubs.StubState, max_streams: int | None = None, **settings: Any
             ) -> tuple[IBKRIBInsyncApi, MagicMock]:
    ib = stubs.mock_ib(state)
    config = Config(IBKR_TIMEOUT=2.0, IBKR_REQUEST_TIMEOUT=settings.pop("rt", 2.0)).replace(
        **settings)
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(config, max_streams=max_streams)
    assert api.connect()
    return api, ib


@pytest.fixture
def state() -> stubs.StubState:
    s = stubs.StubState()
    s.stocks.update({"MSFT": 272093, "TSLA": 76792991})
    return s


@pytest.fixture
def adapter(state: stubs.StubState) -> Iterator[tuple[IBKRIBInsyncApi, MagicMock]]:
    api, ib = make_api(state, max_streams=2)
    yield api, ib
    api.close()


def later_ticks(ib: MagicMock, **values: float) -> None:
    """reqMktData answers with an empty ticker; the ticks arrive on the next loop turn."""
    def req(contract: Contract, *args: Any) -> Ticker:
        ticker = stubs.empty_ticker(contract)
        req_id = 5000 + len(ib.wrapper.reqId2Ticker)
        ib.wrapper.reqId2Ticker[req_id] = ticker

        def arrive() -> None:
            for k, v in values.items():
                setattr(ticker, k, v)
            ticker.updateEvent.emit(ticker)

        asyncio.get_running_loop().call_soon(arrive)
        return ticker

    ib.reqMktData.side_effect = req


def test_first_call_waits_on_the_ticker_event(state: stubs.StubState,
                                              caplog: pytest.LogCaptureFixture) -> None:
    api, ib = make_api(state, rt=60.0)
    try:
        later_ticks(ib, bid=1.0, ask=1.2, last=1.1)
        data = api.get_market_data("AAPL")
        assert (data["bid"], data["ask"], data["last"], data["volume"]) == (1.0, 1.2, 1.1, None)
        assert not any("No full quote" in r.getMessage() for r in caplog.records)
    finally:
        api.close()


def test_partial_quote_at_the_deadline(state: stubs.StubState) -> None:
    api, ib = make_api(state, rt=0.1)
    try:
        later_ticks(ib, last=99.0)  # never a bid/ask
        data = api.get_market_data("AAPL")
        assert "error" not in data and data["last"] == 99.0 and data["bid"] is None
    finally:
        api.close()


def test_stream_error_ends_the_wait_and_drops_the_line(state: stubs.StubState) -> None:
    api, ib = make_api(state, rt=60.0)
    try:
        def req(contract: Contract, *args: Any) -> Ticker:
            ticker = stubs.empty_ticker(contract)
            ib.wrapper.reqId2Ticker[77] = ticker
            asyncio.get_running_loop().call_soon(
                ib.errorEvent.emit, 77, 354, "Requested market data is not subscribed.",
                contract)
            return ticker

        ib.reqMktData.side_effect = req
        data = api.get_market_data("AAPL")
        assert "354" in data["error"] and data["symbol"] == "AAPL"
        assert api.metrics.value("ib_market_data_subscriptions") == 0
        ib.cancelMktData.assert_called_once()
    finally:
        api.close()


def test_streams_are_live_and_bounded_lru(adapter: tuple[IBKRIBInsyncApi, MagicMock],
                                          state: stubs.StubState) -> None:
    api, ib = adapter
    assert api.get_market_data("AAPL")["last"] == 150.25
    api._loop.call(setattr, state.stock_tickers["AAPL"], "last", 151.0)  # a new tick
    assert api.get_market_data("AAPL")["last"] == 151.0  # fresh, same line
    assert ib.reqMktData.call_count == 1 and ib.qualifyContractsAsync.await_count == 1
    api.get_market_data("MSFT")
    api.get_market_data("AAPL")  # AAPL becomes most recent
    api.get_market_data("TSLA")  # evicts MSFT
    assert list(api.market_service.streams) == ["AAPL", "TSLA"]
    assert ib.cancelMktData.call_args.args[0].symbol == "MSFT"
    assert api.metrics.value("ib_market_data_subscriptions") == 2


def test_unknown_symbol(adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    data = api.get_market_data("NOPE")
    assert data["symbol"] == "NOPE" and "No security definition" in data["error"]
    assert api.last_error is not None and api.last_error.code == 200
    ib.reqMktData.assert_not_called()


def test_option_chain_snapshots_are_concurrent_but_capped(state: stubs.StubState) -> None:
    state.strikes = tuple(float(s) for s in range(100, 220))
    api, ib = make_api(state, CHAIN_EXPIRATIONS=2, CHAIN_STRIKES=60)
    flight = {"now": 0, "max": 0}

    async def snapshot(*contracts: Contract, **kw: Any) -> list[Ticker]:
        flight["now"] += 1
        flight["max"] = max(flight["max"], flight["now"])
        for _ in range(3):
            await asyncio.sleep(0)
        flight["now"] -= 1
        return stubs.option_tickers(list(contracts))

    ib.reqTickersAsync.side_effect = snapshot
    try:
        options = api.get_option_chain("AAPL")
        assert len(options) == 2 * 60 * 2
        assert 1 < flight["max"] <= 90 - 1  # one line is the underlying's stream
        assert ib.reqContractDetailsAsync.await_count == 2
        assert ib.client.MaxRequests == 45
    finally:
        api.close()


def test_option_chain_skips_failed_snapshots(adapter: tuple[IBKRIBInsyncApi, MagicMock]
                                             ) -> None:
    api, ib = adapter
    api.market_service.chain_lines.limit = 0  # the snapshot path (no retained lines)
    calls = {"n": 0}

    async def sometimes(*contracts: Contract, **kw: Any) -> list[Ticker]:
        calls["n"] += 1
        if calls["n"] % 2:
            raise ConnectionError("Socket disconnect")
        return stubs.option_tickers(list(contracts))

    ib.reqTickersAsync.side_effect = sometimes
    options = api.get_option_chain("AAPL")
    assert len(options) == 24


def test_not_connected_shapes() -> None:
    ib = stubs.mock_ib()
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(Config())
    try:
        assert api.get_positions() == {}
        summary = api.get_account_summary()
        assert set(summary) == {"error", "timestamp"}
        assert api.get_option_chain("AAPL") == []
    finally:
        api.close()


def test_positions_follow_position_and_portfolio_events(
        adapter: tuple[IBKRIBInsyncApi, MagicMock], state: stubs.StubState) -> None:
    api, ib = adapter
    assert set(api.get_positions()) == {"AAPL", "MSFT"}
    option = stubs.option_contract("20300117", 150.0, "C")
    new = Position("DU12345", option, 2.0, 512.0)
    item = stubs.portfolio_item("AAPL", 100, 150.25, 160.0)
    gone = Position("DU12345", state.positions[1].contract, 0.0, 0.0)
    foreign = Position("DU99999", stubs.stock_contract("GME", 9), 10.0, 1.0)

    def gateway() -> None:
        state.positions = [state.positions[0], new]
        state.portfolio = [item]
        for p in (new, gone, foreign):
            ib.positionEvent.emit(p)
        ib.updatePortfolioEvent.emit(item)

    api._loop.call(gateway)
    with api.lock:
        rows = {k: dict(v) for k, v in api.positions.items()}
    assert set(rows) == {"AAPL", option.localSymbol}
    assert rows["AAPL"]["market_price"] == 160.0
    assert rows["AAPL"]["unrealized_pnl"] == pytest.approx(100 * (160.0 - 150.25))
    assert rows[option.localSymbol]["quantity"] == 2.0
    assert api.get_positions() == rows  # the same view when re-read from ib_insync's state


def test_account_summary_nan_free(adapter: tuple[IBKRIBInsyncApi, MagicMock],
                                  state: stubs.StubState) -> None:
    api, _ = adapter
    summary = api.get_account_summary()
    assert all(v is None or (isinstance(v, float) and math.isfinite(v))
               for k, v in summary.items() if k not in ("timestamp", "account_id"))


def test_disconnect_ends_requests_in_flight(state: stubs.StubState) -> None:
    import threading

    api, ib = make_api(state, rt=60.0)
    try:
        ib.reqMktData.side_effect = lambda contract, *a: stubs.empty_ticker(contract)  # silent
        box: dict[str, Any] = {}
        t = threading.Thread(target=lambda: box.update(data=api.get_market_data("AAPL")))
        t.start()
        for _ in range(1000):  # bounded: until the stream is open and waiting
            if api._loop.call(lambda: bool(api._inflight) and bool(
                    api.market_service.streams)):
                break
        api.disconnect()
        t.join(10)
        assert not t.is_alive()
        assert "disconnected while the request was in flight" in box["data"]["error"]
    finally:
        api.close()


def test_small_chain_keeps_streaming_and_a_repeat_call_sends_no_new_requests(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    """A chain within CHAIN_STREAM_LINES streams its options; the next call reads the live
    tickers (no snapshot, no new line, no new contract-details request)."""
    api, ib = adapter
    first = api.get_option_chain("AAPL")
    assert len(first) == 48 and ib.reqTickersAsync.await_count == 0
    lines, details = len(ib.stub.option_lines), ib.reqContractDetailsAsync.await_count
    assert lines == 48
    second = api.get_option_chain("AAPL")
    assert second == first
    assert len(ib.stub.option_lines) == lines and ib.reqContractDetailsAsync.await_count == details
    assert api.metrics.value("ib_market_data_subscriptions") == 1 + 48  # AAPL stream + options


def test_streaming_chain_reads_live_ticks_not_a_copy(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    api.get_option_chain("AAPL")
    tickers = [t for t in ib.wrapper.reqId2Ticker.values() if t.contract.secType == "OPT"]
    for t in tickers:  # the gateway streams new quotes into the live tickers
        t.bid, t.ask = 7.10, 7.30
    assert {(o.bid, o.ask) for o in api.get_option_chain("AAPL")} == {(7.10, 7.30)}


def test_chain_lines_are_released_when_another_chain_needs_the_room(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    ib.stub.stocks["SPY"] = 756733
    api.get_option_chain("AAPL")
    api.get_option_chain("SPY")
    cancelled = {c.conId for (c, *_), _kw in ib.cancelMktData.call_args_list}
    assert len(cancelled) == 48  # AAPL's options made room for SPY's (budget 80 lines)
    assert api.market_service.chain_lines.count() == 48
    assert list(api.market_service.chain_lines.lines) == ["SPY"]


def test_an_error_on_a_retained_line_drops_it_and_the_next_call_requests_it_again(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    api.get_option_chain("AAPL")
    req_id, ticker = next((r, t) for r, t in ib.wrapper.reqId2Ticker.items()
                          if t.contract.secType == "OPT")
    api._on_error(req_id, 10197, "No market data during competing live session", None)
    assert api.market_service.chain_lines.count() == 47
    before = len(ib.stub.option_lines)
    assert len(api.get_option_chain("AAPL")) == 48
    assert len(ib.stub.option_lines) == before + 1
    assert ib.stub.option_lines[-1].conId == ticker.contract.conId


def test_retention_off_uses_snapshots_and_keeps_no_option_line(
        adapter: tuple[IBKRIBInsyncApi, MagicMock]) -> None:
    api, ib = adapter
    api.market_service.chain_lines.limit = 0
    assert len(api.get_option_chain("AAPL")) == 48
    assert ib.reqTickersAsync.await_count == 48 and ib.stub.option_lines == []
    assert api.market_service.chain_lines.count() == 0
