"""The risk manager's margin rule (``check_margin``, risk.check_margin), the executor's use of
it, and the what-if shapes of both brokers and both clients."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest

from src.app.config import Config, ConfigError
from src.app.executor import TradeExecutor
from src.app.risk import RiskManager
from src.app.signals import Signal
from src.brokers.client_types import WhatIfResult
from src.brokers.ibkr_api import IBKRApi
from src.brokers.mock_client import MockIBKRClient
from src.models.option import Option, OptionSpread

TODAY = date(2026, 11, 20)
EXPIRY = date(2026, 11, 27)
DBL_MAX = 1.7976931348623157e308


def spread() -> OptionSpread:
    def leg(strike: float) -> Option:
        return Option(symbol=f"AAPL-{strike}", underlying="AAPL", option_type="call",
                      strike=strike, expiration=EXPIRY, bid=1.0, ask=1.2, delta=0.5)

    return OptionSpread(symbol="AAPL", spread_type="BULL_CALL", long_leg=leg(150.0),
                        short_leg=leg(155.0))


class Broker:
    """A BrokerApi stand-in with a scripted what-if and account summary."""

    def __init__(self, change: Any = 5000.0, available: Any = 10_000.0, live: bool = False,
                 what_if_error: str | None = None) -> None:
        self.connected = True
        self.lock = threading.RLock()
        self.orders: dict[str, dict[str, Any]] = {}
        self.change, self.available, self.live = change, available, live
        self.what_if_error = what_if_error
        self.what_if_calls: list[tuple[Any, ...]] = []
        self.placed: list[tuple[Any, ...]] = []

    def is_live_account(self) -> bool:
        return self.live

    def what_if_order(self, *args: Any) -> dict[str, Any]:
        self.what_if_calls.append(args)
        if self.what_if_error:
            return {"symbol": args[0], "error": self.what_if_error}
        return {"symbol": args[0], "init_margin_change": self.change}

    def get_account_summary(self) -> dict[str, Any]:
        return {"available_funds": self.available}

    # what the executor needs
    def get_option_chain(self, symbol: str) -> list[Option]:
        s = spread()
        return [s.long_leg, s.short_leg]

    def get_market_data(self, symbol: str) -> dict[str, Any]:
        return {"symbol": symbol, "bid": 150.0, "ask": 150.2, "last": 150.1}

    def place_order(self, *args: Any, order_ref: str | None = None) -> str:
        self.placed.append(args)
        return "1"

    def get_order_status(self, order_id: str) -> dict[str, Any]:
        return {"id": order_id, "status": "Submitted"}


def risk(broker: Any, check: Any, **config: Any) -> RiskManager:
    return RiskManager(Config().replace(RISK_CHECK_MARGIN=check, **config), broker)


def test_over_the_available_funds_is_refused_with_both_figures_and_the_key() -> None:
    b = Broker(change=12_500.0, available=10_000.0)
    ok, reason = risk(b, "true").check_margin("AAPL", "LONG", 2, spread(), "LIMIT", 1.5)
    assert ok is False
    assert "12,500.00" in reason and "10,000.00" in reason and "risk.check_margin" in reason
    assert b.what_if_calls == [("AAPL", "LONG", 2, b.what_if_calls[0][3], "LIMIT", 1.5)]


@pytest.mark.parametrize("change", [9_999.99, 10_000.0, -300.0])
def test_at_or_below_the_available_funds_passes(change: float) -> None:
    ok, reason = risk(Broker(change=change), "true").check_margin("AAPL", "LONG", 1, spread())
    assert (ok, reason) == (True, "ok")


def test_false_never_asks_for_the_margin() -> None:
    b = Broker(change=1e9, live=True)
    ok, _ = risk(b, "false").check_margin("AAPL", "LONG", 1, spread())
    assert ok is True and b.what_if_calls == []


@pytest.mark.parametrize("live, asked", [(False, False), (True, True)])
def test_auto_checks_live_accounts_only(live: bool, asked: bool) -> None:
    b = Broker(change=1e9, live=live)
    ok, _ = risk(b, "auto").check_margin("AAPL", "LONG", 1, spread())
    assert ok is (not asked) and bool(b.what_if_calls) is asked


def test_auto_without_is_live_account_follows_trading_mode() -> None:
    b = Broker(change=1e9)
    b.is_live_account = None  # type: ignore[assignment, method-assign]
    assert risk(b, "auto").margin_check_enabled() is False
    assert risk(b, "auto", TRADING_MODE="live").margin_check_enabled() is True


@pytest.mark.parametrize("broker, fragment", [
    (Broker(what_if_error="Order rejected - reason:The market is closed (IB error 201)"),
     "The market is closed"),
    (Broker(change=None), "no initial margin"),
    (Broker(change=float("nan")), "no initial margin"),
    (Broker(available=None), "available funds unknown"),
])
def test_an_unknown_margin_is_refused_when_the_check_is_on(broker: Broker, fragment: str) -> None:
    ok, reason = risk(broker, "true").check_margin("AAPL", "LONG", 1, spread())
    assert ok is False and "margin check failed" in reason and fragment in reason


def test_a_broker_without_what_if_is_refused_when_the_check_is_on() -> None:
    class Plain:
        lock = threading.RLock()
        orders: dict[str, Any] = {}

    ok, reason = risk(Plain(), "true").check_margin("AAPL", "LONG", 1, spread())
    assert ok is False and "what_if_order" in reason and "risk.check_margin" in reason


def test_a_bad_setting_names_the_key() -> None:
    class Raw:
        RISK_CHECK_MARGIN = "sometimes"

    with pytest.raises(ConfigError, match="risk.check_margin"):
        RiskManager(Raw(), Broker())
    with pytest.raises(ConfigError, match="risk.check_margin"):
        Config.from_dict({"risk": {"check_margin": "sometimes"}})


@pytest.mark.parametrize("raw, value", [(True, "true"), (False, "false"), ("auto", "auto")])
def test_yaml_booleans_are_read_as_the_strings(raw: Any, value: str) -> None:
    read = Config.from_dict({"risk": {"check_margin": raw}}).RISK_CHECK_MARGIN
    assert read == value
    assert Config().RISK_CHECK_MARGIN == "auto"  # the default


def test_the_executor_refuses_before_placing_anything() -> None:
    b = Broker(change=50_000.0, available=1_000.0)
    config = Config().replace(RISK_CHECK_MARGIN="true")
    record = TradeExecutor(config, b, RiskManager(config, b)).execute(
        Signal(symbol="AAPL", direction="LONG", contracts=1, limit_price=0.5))
    assert record.status == "FAILED" and record.order_id is None
    assert record.error is not None and record.error.startswith("refused by risk: ")
    assert b.placed == [] and len(b.what_if_calls) == 1


def test_the_executor_places_what_passes_and_without_a_risk_manager_asks_nothing() -> None:
    b = Broker(change=500.0, available=1_000.0)
    config = Config().replace(RISK_CHECK_MARGIN="true")
    record = TradeExecutor(config, b, RiskManager(config, b)).execute(
        Signal(symbol="AAPL", direction="LONG", contracts=1, limit_price=0.5))
    assert record.status == "PLACED" and len(b.placed) == 1 and len(b.what_if_calls) == 1
    bare = Broker(change=1e9, available=0.0)
    record = TradeExecutor(config, bare).execute(
        Signal(symbol="AAPL", direction="LONG", contracts=1, limit_price=0.5))
    assert record.status == "PLACED" and bare.what_if_calls == []


# -- the what-if shapes ---------------------------------------------------------------------------


WHAT_IF_KEYS = {"symbol", *WhatIfResult.__dataclass_fields__}


def test_placeholder_what_if_has_the_adapters_keys_and_places_nothing() -> None:
    api = IBKRApi(Config().replace(USE_IB_INSYNC=False), today=TODAY)
    assert api.what_if_order("AAPL", "LONG", 2, spread(), "LIMIT", 1.5) == {
        "symbol": "AAPL", "error": "Not connected to IBKR"}
    api.connect()
    out = api.what_if_order("AAPL", "LONG", 2, spread(), "LIMIT", 1.5)
    assert set(out) == WHAT_IF_KEYS
    assert out["init_margin_change"] > 0 and out["commission"] == 2 * 1.3
    assert out["init_margin_after"] == round(out["init_margin_before"]
                                             + out["init_margin_change"], 2)
    assert api.orders == {}
    with pytest.raises(ValueError, match="contracts"):
        api.what_if_order("AAPL", "LONG", 0, spread(), "LIMIT", 1.5)


def test_what_if_result_reads_ib_strings_and_unset_values() -> None:
    class State:
        initMarginBefore, initMarginChange, initMarginAfter = "100.5", "250.25", "350.75"
        maintMarginBefore, maintMarginChange, maintMarginAfter = "", str(DBL_MAX), "x"
        equityWithLoanBefore = equityWithLoanChange = equityWithLoanAfter = "1000"
        commission, minCommission, maxCommission = 1.3, DBL_MAX, 2.6
        commissionCurrency, warningText = "USD", "margin warning"

    r = WhatIfResult.from_order_state(State())
    assert (r.init_margin_before, r.init_margin_change, r.init_margin_after) == (
        100.5, 250.25, 350.75)
    assert (r.maint_margin_before, r.maint_margin_change, r.maint_margin_after) == (
        None, None, None)
    assert (r.commission, r.min_commission, r.max_commission) == (1.3, None, 2.6)
    assert r.as_dict()["warning"] == "margin warning" and set(r.as_dict()) == WHAT_IF_KEYS - {
        "symbol"}


def test_mock_client_what_if_is_deterministic_and_needs_a_connection() -> None:
    from types import SimpleNamespace

    from src.brokers.errors import NotConnected

    m = MockIBKRClient()
    with pytest.raises(NotConnected):
        m.what_if(SimpleNamespace(symbol="AAPL"), SimpleNamespace(totalQuantity=2))
    assert m.connect()
    r = m.what_if(SimpleNamespace(symbol="AAPL"), SimpleNamespace(totalQuantity=2))
    assert r.init_margin_change == 1000.0 and r.commission == 2.6
    assert r.equity_with_loan_after == 100_000.0 - 2.6


def test_client_broker_what_if_asks_its_client_and_places_nothing() -> None:
    import clock_support

    from src.app.executor import select_spread
    from src.brokers.client_broker import ClientBroker
    from src.brokers.mock_market import seed_universe

    clock = clock_support.pinned_clock()
    mock = MockIBKRClient(clock=clock)
    seed_universe(mock)
    broker = ClientBroker(mock, clock=clock)
    try:
        assert broker.connect()
        chosen = select_spread(broker.get_option_chain("AAPL"), "AAPL", "LONG", 230.10)
        out = broker.what_if_order("AAPL", "LONG", 3, chosen, "LIMIT", 1.25)
        assert set(out) == WHAT_IF_KEYS
        assert out["init_margin_change"] == 3 * mock.what_if_margin
        assert out["commission"] == round(3 * mock.what_if_commission, 2)
        assert broker.orders == {}
        mock.inject_error("what_if", 201, "Order rejected - reason:The market is closed")
        refused = broker.what_if_order("AAPL", "LONG", 3, chosen, "LIMIT", 1.25)
        assert set(refused) == {"symbol", "error"} and "market is closed" in refused["error"]
    finally:
        broker.close()
