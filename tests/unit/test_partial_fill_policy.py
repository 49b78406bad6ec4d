"""TradeExecutor's policy for a partly filled order: keep it working, or cancel the rest."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import clock_support
import pytest

from src.app.config import Config, ConfigError
from src.app.executor import TradeExecutor, TradeRecord
from src.app.signals import Signal


class Broker:
    """The two calls the follow-up makes; the order's status is set by the test."""

    def __init__(self) -> None:
        self.connected = True
        self.status: dict[str, Any] = {}
        self.cancels: list[str] = []

    def get_order_status(self, order_id: str) -> dict[str, Any]:
        return dict(self.status)

    def place_order(self, *args: Any, order_ref: str | None = None) -> str:
        raise AssertionError("the follow-up never places an order")

    def cancel_order(self, order_id: str) -> bool:
        self.cancels.append(order_id)
        self.status["status"] = "Cancelled"
        return True


def _executor(policy: str, timeout: float = 30.0) -> tuple[TradeExecutor, Broker, Any]:
    clock = clock_support.pinned_clock()
    broker = Broker()
    config = Config().replace(PARTIAL_FILL_POLICY=policy, PARTIAL_FILL_TIMEOUT=timeout)
    executor = TradeExecutor(config, broker, clock=clock)  # type: ignore[arg-type]
    record = TradeRecord(signal=Signal("AAPL", "LONG", 5), status="PLACED", order_id="7")
    executor.trades[record.signal.id] = record
    return executor, broker, clock


def _partly(broker: Broker, filled: float) -> None:
    broker.status = {"id": "7", "status": "Submitted", "contracts": 5, "filled": filled,
                     "remaining": 5 - filled}


def test_cancel_rest_cancels_once_the_timeout_passed_since_the_first_partial_fill() -> None:
    executor, broker, clock = _executor("cancel_rest", timeout=30)
    _partly(broker, 0)
    executor.process_queued_trades()
    clock.advance(timedelta(seconds=60))
    executor.process_queued_trades()  # nothing filled yet: the timeout has not started
    assert broker.cancels == []
    _partly(broker, 2)
    executor.process_queued_trades()  # first seen partly filled now
    clock.advance(timedelta(seconds=29))
    executor.process_queued_trades()
    assert broker.cancels == []
    clock.advance(timedelta(seconds=1))
    executor.process_queued_trades()
    assert broker.cancels == ["7"]
    executor.process_queued_trades()  # the Cancelled status ends the trade
    record = next(iter(executor.trades.values()))
    assert record.status == "Cancelled" and broker.cancels == ["7"]


def test_keep_never_cancels_a_partly_filled_order() -> None:
    executor, broker, clock = _executor("keep", timeout=0)
    _partly(broker, 2)
    for _ in range(3):
        executor.process_queued_trades()
        clock.advance(timedelta(hours=1))
    assert broker.cancels == []
    broker.status.update(status="Filled", filled=5, remaining=0)
    executor.process_queued_trades()
    assert next(iter(executor.trades.values())).status == "Filled"


def test_cancel_rest_waits_for_the_broker_to_be_connected() -> None:
    executor, broker, clock = _executor("cancel_rest", timeout=0)
    _partly(broker, 1)
    broker.connected = False
    executor.process_queued_trades()
    assert broker.cancels == []
    broker.connected = True
    executor.process_queued_trades()
    assert broker.cancels == ["7"]


@pytest.mark.parametrize("changes, key", [
    ({"PARTIAL_FILL_POLICY": "sometimes"}, "trader.partial_fill_policy"),
    ({"PARTIAL_FILL_TIMEOUT": -1.0}, "trader.partial_fill_timeout_seconds"),
    ({"PARTIAL_FILL_TIMEOUT": "soon"}, "trader.partial_fill_timeout_seconds"),
])
def test_bad_policy_settings_are_refused_naming_the_key(changes: dict[str, Any],
                                                        key: str) -> None:
    config = SimpleNamespace(**changes)  # any object with the attributes (Config checks too)
    with pytest.raises(ConfigError, match=key):
        TradeExecutor(config, Broker())  # type: ignore[arg-type]


def test_the_yaml_keys_reach_the_executor(tmp_path: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("trader:\n  partial_fill_policy: cancel_rest\n"
                    "  partial_fill_timeout_seconds: 12\n")
    executor = TradeExecutor(Config.from_yaml(str(path)), Broker())  # type: ignore[arg-type]
    assert (executor.partial_policy, executor.partial_timeout) == ("cancel_rest", 12.0)
