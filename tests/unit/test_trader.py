"""The Trader with an injected placeholder broker: its thread, signals, risk, stop; the demo."""

from __future__ import annotations

import io
import logging
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from src.app.__main__ import main
from src.app.config import Config
from src.app.demo import run_demo, table
from src.app.executor import TradeRecord
from src.app.signals import Signal
from src.app.trader import Trader
from src.brokers.ibkr_api import IBKRApi

TODAY = date(2026, 11, 20)
CONFIG = Config().replace(USE_IB_INSYNC=False, LOOP_INTERVAL=0.01, MAX_CONTRACTS_PER_ORDER=3)
WAIT = 10.0  # generous bound for a background step; not a speed assertion


class SpyBroker(IBKRApi):
    """The placeholder, recording which threads pump its callbacks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.callback_threads: set[str] = set()
        self.pumped = threading.Event()

    def handle_callbacks(self) -> None:
        self.callback_threads.add(threading.current_thread().name)
        self.pumped.set()
        super().handle_callbacks()


@pytest.fixture
def broker() -> SpyBroker:
    return SpyBroker(CONFIG, today=TODAY)


@pytest.fixture
def trader(broker: SpyBroker) -> Any:
    t = Trader(config=CONFIG, broker=broker)
    yield t
    t.stop(timeout=WAIT)


def test_construction_connects_the_injected_broker(trader: Trader, broker: SpyBroker) -> None:
    assert trader.broker_api is broker and trader.broker is broker
    assert broker.connected is True
    assert trader.risk_manager.broker is broker and trader.trade_executor.broker is broker
    assert trader.signal_queue.empty() and trader.processing is False
    assert trader.scanner is None  # the seam for a signal source


def test_long_signal_places_a_bull_call_from_the_chain(trader: Trader, broker: SpyBroker) -> None:
    trader.start()
    signal = trader.submit_signal("AAPL", "LONG", 1, price_type="MARKET")
    outcome = trader.wait_for_outcome(signal, timeout=WAIT)
    assert outcome is not None
    status, record = outcome
    assert status == "PLACED" and isinstance(record, TradeRecord)
    order = broker.get_order_status(record.order_id or "")
    assert order["spread_type"] == "BULL_CALL" and order["symbol"] == "AAPL"
    assert order["status"] == "Filled"
    chain = {o.symbol for o in broker.get_option_chain("AAPL")}
    assert record.spread is not None
    assert {record.spread.long_leg.symbol, record.spread.short_leg.symbol} <= chain
    assert record.spread.long_leg.strike < record.spread.short_leg.strike
    assert trader.stop(timeout=WAIT) is True
    assert trader.processing_thread is None and broker.connected is False


def test_the_signal_thread_pumps_broker_callbacks(trader: Trader, broker: SpyBroker) -> None:
    trader.start()
    assert broker.pumped.wait(WAIT)
    assert "trader-signals" in broker.callback_threads


def test_the_thread_follows_a_resting_order_to_its_fill(trader: Trader,
                                                        broker: SpyBroker) -> None:
    trader.start()
    signal = trader.submit_signal("AAPL", "LONG", 1)  # LIMIT at the rounded mid debit
    outcome = trader.wait_for_outcome(signal, timeout=WAIT)
    assert outcome is not None and outcome[0] == "PLACED"
    record = outcome[1]
    finished = threading.Event()

    def check() -> None:
        while not finished.wait(0.01):
            if record.status == "Filled":
                finished.set()

    watcher = threading.Thread(target=check, daemon=True)
    watcher.start()
    watcher.join(WAIT)
    finished.set()
    assert record.status == "Filled"  # the thread's handle_callbacks moved the price across
    assert record.order["status"] == "Filled"
    assert trader.risk_manager.positions  # positions refreshed by the thread


def test_risk_refusal_places_nothing(trader: Trader, broker: SpyBroker,
                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        status, reason = trader.process_signal(Signal("AAPL", "LONG", 4))
    assert status == "REJECTED" and "risk.max_contracts_per_order 3" in reason
    assert broker.orders == {}
    assert any("rejected by risk" in r.getMessage() for r in caplog.records)


def test_process_signal_records_the_outcome(trader: Trader) -> None:
    signal = Signal("AAPL", "SHORT", 1, "MARKET")
    status, record = trader.process_signal(signal)
    assert status == "PLACED" and record.spread.spread_type == "BEAR_PUT"
    assert trader.wait_for_outcome(signal.id, timeout=0) == (status, record)
    assert trader.wait_for_outcome("unknown", timeout=0) is None


def test_submit_signal_validates_before_queueing(trader: Trader) -> None:
    with pytest.raises(ValueError, match="direction"):
        trader.submit_signal("AAPL", "UP")
    assert trader.signal_queue.empty()
    signal = Signal("AAPL", "LONG")
    assert trader.submit_signal(signal) is signal
    assert trader.signal_queue.get_nowait() is signal


def test_stop_is_bounded_with_a_long_loop_interval(broker: SpyBroker) -> None:
    trader = Trader(config=CONFIG.replace(LOOP_INTERVAL=60.0), broker=broker)
    trader.start()
    assert broker.pumped.wait(WAIT)  # the thread is now in its 60 s wait
    assert trader.stop(timeout=WAIT) is True
    assert broker.connected is False


def test_start_is_idempotent_and_context_manager_stops(broker: SpyBroker) -> None:
    with Trader(config=CONFIG, broker=broker) as trader:
        thread = trader.processing_thread
        trader.start()
        assert trader.processing_thread is thread and thread is not None
    assert trader.processing_thread is None and not thread.is_alive()


def test_errors_in_the_loop_are_logged_and_the_loop_survives(
        broker: SpyBroker, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    recovered = threading.Event()

    class Flaky(SpyBroker):
        def get_positions(self) -> dict[str, dict[str, Any]]:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("positions exploded")
            recovered.set()
            return super().get_positions()

    trader = Trader(config=CONFIG, broker=Flaky(CONFIG, today=TODAY))
    with caplog.at_level(logging.ERROR):
        trader.start()
        assert recovered.wait(WAIT)
        trader.stop(timeout=WAIT)
    assert any("Error in signal processing thread: positions exploded" in r.getMessage()
               for r in caplog.records)


def test_failed_connect_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    broker = IBKRApi(CONFIG, today=TODAY)
    broker.available = False
    with caplog.at_level(logging.ERROR):
        trader = Trader(config=CONFIG, broker=broker)
    assert broker.connected is False
    assert any("Failed to connect to IBKR, some functionality may be limited" in r.getMessage()
               for r in caplog.records)
    status, record = trader.process_signal(Signal("AAPL", "LONG", 1))
    assert status == "QUEUED" and record.error == "broker not connected"


def test_config_file_and_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("IBKR_HOST", "IBKR_PORT", "IBKR_CLIENT_ID", "IBKR_ACCOUNT"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "config.yaml"
    path.write_text("ibkr:\n  use_ib_insync: false\n  port: 4002\n", encoding="utf-8")
    trader = Trader(str(path))
    try:
        assert type(trader.broker_api) is IBKRApi
        assert trader.config.IBKR_PORT == 4002
        assert trader.broker_api.connected is True
    finally:
        trader.stop(timeout=WAIT)


def test_demo_against_the_placeholder_passes() -> None:
    out = io.StringIO()
    assert run_demo("placeholder", out=out) == 0
    text = out.getvalue()
    for heading in ("== Connection", "== Quote AAPL", "== Option chain AAPL",
                    "== Bull call spread at MARKET", "== LIMIT spread far from the market",
                    "== Positions", "== Account summary", "all steps passed"):
        assert heading in text
    assert "Filled" in text and "Cancelled" in text
    assert "DU****" in text  # the account is masked


def test_demo_rejects_an_unknown_broker() -> None:
    with pytest.raises(ValueError, match="broker must be"):
        run_demo("paper")


def test_main_runs_the_placeholder_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "--broker", "placeholder"]) == 0
    assert "all steps passed" in capsys.readouterr().out


def test_main_reports_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ibkr:\n  port: abc\n", encoding="utf-8")
    assert main(["--config", str(bad)]) == 2
    assert "'ibkr.port' must be int" in capsys.readouterr().err


def test_table_aligns_columns() -> None:
    text = table(["name", "qty"], [["a", 1], ["long name", 12.5]])
    lines = text.splitlines()
    assert lines[0].startswith("name") and lines[1].startswith("---------")
    assert lines[2].endswith("1") and lines[3].endswith("12.50")
    assert len({len(line) for line in lines[1:]}) == 1
