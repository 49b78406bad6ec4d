"""IBKRApi, the simulated placeholder: the whole contract, deterministically."""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, time
from typing import Any
from unittest.mock import MagicMock

import pytest
from model_support import assert_true_to_model

from src.app.config import Config
from src.brokers.base import (
    ACCOUNT_FIELDS,
    MARKET_DATA_FIELDS,
    ORDER_FIELDS,
    POSITION_FIELDS,
)
from src.brokers.ibkr_api import RISK_FREE_RATE, IBKRApi, occ_symbol
from src.models.option import Option, OptionSpread
from src.utils.clock import FixedClock
from src.utils.market_calendar import years_to_expiry

TODAY = date(2026, 11, 20)  # a Friday, after the close (16:30 New York): next Friday is first
AT = time(16, 30)


def make(**kw: Any) -> IBKRApi:
    api = IBKRApi(kw.pop("config", None), clock=FixedClock.new_york(TODAY, AT), **kw)
    return api


@pytest.fixture
def api() -> IBKRApi:
    a = make()
    assert a.connect() is True
    return a


def spread(api: IBKRApi, kind: str = "BULL_CALL", expiry_index: int = 0) -> OptionSpread:
    chain = api.get_option_chain("AAPL")
    expiration = sorted({o.expiration for o in chain})[expiry_index]
    right = "call" if kind == "BULL_CALL" else "put"
    legs = sorted((o for o in chain if o.expiration == expiration and o.option_type == right),
                  key=lambda o: o.strike)
    mid = len(legs) // 2
    if kind == "BULL_CALL":
        return OptionSpread(symbol="AAPL", spread_type="BULL_CALL", long_leg=legs[mid],
                            short_leg=legs[mid + 1])
    return OptionSpread(symbol="AAPL", spread_type="BEAR_PUT", long_leg=legs[mid],
                        short_leg=legs[mid - 1])


def run_until(api: IBKRApi, order_id: str, status: str, steps: int = 200) -> int:
    for step in range(steps):
        if api.get_order_status(order_id)["status"] == status:
            return step
        api.handle_callbacks()
    raise AssertionError(f"order {order_id} never reached {status}")


# -- connection --------------------------------------------------------------------------------


def test_connect_fills_the_account_and_disconnect_clears_connected() -> None:
    api = make()
    assert api.connected is False and api.account_id == ""
    assert api.connect() is True
    assert api.connected is True
    assert api.account_id.startswith("DU") and len(api.account_id) == 9
    api.disconnect()
    assert api.connected is False
    api.disconnect()  # idempotent, never raises
    api.close()


def test_configured_account_is_kept() -> None:
    config = Config().replace(IBKR_ACCOUNT_ID="DU1234567")
    api = make(config=config)
    api.connect()
    assert api.account_id == "DU1234567"


def test_reads_settings_from_a_magicmock_config() -> None:
    config = MagicMock(spec=Config)
    config.IBKR_PORT = 4002
    api = IBKRApi(config)
    assert (api.host, api.port, api.client_id, api.read_only) == ("127.0.0.1", 4002, 1, False)


def test_failed_connect_returns_false_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    api = make()
    api.available = False
    with caplog.at_level(logging.ERROR):
        assert api.connect() is False
    assert api.connected is False
    assert any("Failed to connect to IBKR" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)


def test_lock_is_reentrant(api: IBKRApi) -> None:
    with api.lock, api.lock:
        assert api.get_positions() == {}


# -- market data -------------------------------------------------------------------------------


def test_market_data_has_every_field_and_is_deterministic(api: IBKRApi) -> None:
    data = api.get_market_data("AAPL")
    assert set(MARKET_DATA_FIELDS) <= set(data)
    assert data["symbol"] == "AAPL"
    assert data["bid"] < data["last"] < data["ask"]
    assert data["low"] <= data["last"] <= data["high"]
    other = make()
    other.connect()
    again = other.get_market_data("AAPL")
    assert {k: v for k, v in again.items() if k != "timestamp"} == {
        k: v for k, v in data.items() if k != "timestamp"}


def test_prices_follow_the_path_one_step_per_callback(api: IBKRApi) -> None:
    seen = []
    for _ in range(40):
        seen.append(api.get_market_data("AAPL")["last"])
        api.handle_callbacks()
    assert len(set(seen)) > 10  # it moves
    assert api.get_market_data("AAPL")["last"] == seen[0]  # one full period: back to the start


def test_seed_shifts_the_path() -> None:
    a, b = make(seed=0), make(seed=10)
    a.connect()
    b.connect()
    assert a.get_market_data("AAPL")["last"] != b.get_market_data("AAPL")["last"]


def test_market_data_errors(api: IBKRApi, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        bad = api.get_market_data("INVALID")
    assert bad["symbol"] == "INVALID" and "error" in bad
    assert any("Error getting market data" in r.getMessage() for r in caplog.records)
    api.disconnect()
    assert api.get_market_data("AAPL") == {"symbol": "AAPL", "error": "Not connected to IBKR"}


# -- option chain ------------------------------------------------------------------------------


def test_option_chain_shape(api: IBKRApi) -> None:
    chain = api.get_option_chain("AAPL")
    assert all(isinstance(o, Option) for o in chain)
    expirations = sorted({o.expiration for o in chain})
    assert expirations[0] == date(2026, 11, 27)  # today's expired at the close
    assert len(expirations) == 4 and all(e.weekday() == 4 for e in expirations)
    assert len(chain) == 4 * 2 * 6
    assert {o.option_type for o in chain} == {"call", "put"}
    spot = api.get_market_data("AAPL")["last"]
    strikes = sorted({o.strike for o in chain})
    assert strikes[0] < spot < strikes[-1]
    for o in chain:
        assert o.underlying == "AAPL"
        assert o.symbol == occ_symbol("AAPL", o.expiration, o.right, o.strike)
        assert 0 <= o.bid < o.ask
        assert o.implied_volatility > 0
        assert_true_to_model(o, years=years_to_expiry(o.expiration, api.clock),
                             rate=RISK_FREE_RATE, spot_lo=spot, spot_hi=spot, with_rho=True,
                             iv_rel=2e-4)


def test_chain_size_follows_the_config() -> None:
    config = Config().replace(CHAIN_EXPIRATIONS=2, CHAIN_STRIKES=3)
    api = make(config=config)
    api.connect()
    assert len(api.get_option_chain("SPY")) == 2 * 2 * 3


def test_occ_symbol_format() -> None:
    assert occ_symbol("AAPL", date(2026, 12, 18), "C", 150.0) == "AAPL  261218C00150000"
    assert occ_symbol("SPY", date(2027, 1, 15), "P", 592.5) == "SPY   270115P00592500"


def test_option_chain_errors(api: IBKRApi, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert api.get_option_chain("INVALID") == []
    assert any("Error getting option chain" in r.getMessage() for r in caplog.records)
    api.disconnect()
    assert api.get_option_chain("AAPL") == []


@pytest.mark.parametrize(("at", "first"), [
    (time(15, 59), date(2026, 11, 20)),  # expiration day before the 16:00 close: still listed
    (time(16, 0), date(2026, 11, 27)),  # from the close on: gone
])
def test_expiration_day_is_listed_until_the_close(at: time, first: date) -> None:
    api = IBKRApi(None, clock=FixedClock.new_york(date(2026, 11, 20), at))
    api.connect()
    assert min(o.expiration for o in api.get_option_chain("AAPL")) == first


def test_holiday_week_expires_on_thursday() -> None:
    api = IBKRApi(None, clock=FixedClock.new_york(date(2026, 12, 21)))
    api.connect()
    expirations = sorted({o.expiration for o in api.get_option_chain("AAPL")})
    assert expirations[:3] == [date(2026, 12, 24), date(2026, 12, 31), date(2027, 1, 8)]


# -- orders ------------------------------------------------------------------------------------


def test_market_order_fills_at_once_at_the_mid_debit(api: IBKRApi) -> None:
    s = spread(api)
    order_id = api.place_order("AAPL", "LONG", 2, s, "MARKET")
    assert isinstance(order_id, str)
    status = api.get_order_status(order_id)
    assert set(ORDER_FIELDS) <= set(status)
    assert status["status"] == "Filled"
    assert (status["filled"], status["remaining"]) == (2, 0)
    assert status["filled_price"] == pytest.approx(s.long_leg.mid - s.short_leg.mid, abs=0.011)
    assert isinstance(status["fill_time"], datetime)
    assert status["limit_price"] is None and status["price_type"] == "MARKET"
    assert [e["side"] for e in status["executions"]] == ["BOT", "SLD"]
    assert [e["shares"] for e in status["executions"]] == [2, 2]
    assert len(status["commissions"]) == 2
    assert all(c["commission"] >= 1.0 for c in status["commissions"])
    assert status["commission"] == pytest.approx(sum(c["commission"]
                                                     for c in status["commissions"]))
    assert (status["fills_settled"], status["commission_pending"]) == (2, 0)
    assert {leg["action"] for leg in status["legs"]} == {"BUY", "SELL"}


def test_positions_follow_fills_keyed_by_local_symbol(api: IBKRApi) -> None:
    s = spread(api)
    first = api.place_order("AAPL", "LONG", 2, s, "MARKET")
    positions = api.get_positions()
    long_key, short_key = s.long_leg.symbol, s.short_leg.symbol
    assert set(positions) == {long_key, short_key}
    for key, qty in ((long_key, 2), (short_key, -2)):
        row = positions[key]
        assert set(POSITION_FIELDS) <= set(row)
        assert row["symbol"] == key and row["quantity"] == qty
        assert row["account"] == api.account_id
        assert row["trades"] == [first]
        assert row["market_value"] == pytest.approx(qty * row["market_price"] * 100)
    # selling the spread back closes both legs
    api.place_order("AAPL", "SHORT", 2, s, "MARKET")
    assert api.get_positions() == {}


def test_short_direction_sells_the_spread(api: IBKRApi) -> None:
    s = spread(api, "BEAR_PUT")
    order_id = api.place_order("AAPL", "SHORT", 1, s, "MARKET")
    status = api.get_order_status(order_id)
    assert [e["side"] for e in status["executions"]] == ["SLD", "BOT"]
    positions = api.get_positions()
    assert positions[s.long_leg.symbol]["quantity"] == -1
    assert positions[s.short_leg.symbol]["quantity"] == 1


def test_limit_order_rests_then_fills_when_the_path_crosses(api: IBKRApi) -> None:
    s = spread(api)
    limit = round(s.net_debit - 0.10, 2)
    order_id = api.place_order("AAPL", "LONG", 1, s, "LIMIT", limit)
    assert api.get_order_status(order_id)["status"] == "Submitted"
    assert api.get_positions() == {}
    steps = run_until(api, order_id, "Filled")
    assert steps > 0
    status = api.get_order_status(order_id)
    assert status["filled_price"] <= limit
    assert status["limit_price"] == limit


def test_marketable_limit_fills_immediately(api: IBKRApi) -> None:
    s = spread(api)
    order_id = api.place_order("AAPL", "LONG", 1, s, "LIMIT", round(s.net_debit + 0.5, 2))
    assert api.get_order_status(order_id)["status"] == "Filled"


def test_far_limit_rests_and_cancels(api: IBKRApi) -> None:
    s = spread(api)
    order_id = api.place_order("AAPL", "LONG", 1, s, "LIMIT", 0.05)
    for _ in range(80):  # two full price cycles
        api.handle_callbacks()
    assert api.get_order_status(order_id)["status"] == "Submitted"
    assert api.cancel_order(order_id) is True
    status = api.get_order_status(order_id)
    assert status["status"] == "Cancelled" and status["filled"] == 0
    assert api.cancel_order(order_id) is False  # already final
    api.handle_callbacks()
    assert api.get_order_status(order_id)["status"] == "Cancelled"  # a cancel is final


def test_cancel_false_cases(api: IBKRApi) -> None:
    s = spread(api)
    filled = api.place_order("AAPL", "LONG", 1, s, "MARKET")
    assert api.cancel_order(filled) is False
    assert api.cancel_order("999") is False
    resting = api.place_order("AAPL", "LONG", 1, s, "LIMIT", 0.05)
    api.disconnect()
    assert api.cancel_order(resting) is False
    assert api.get_order_status(resting)["status"] == "Submitted"


def test_order_ids_increase_and_unknown_status_is_empty(api: IBKRApi) -> None:
    first = api.get_next_order_id()
    assert api.get_next_order_id() == first + 1
    s = spread(api)
    order_id = api.place_order("AAPL", "LONG", 1, s, "LIMIT", 0.05)
    assert int(order_id) == first + 2
    assert api.get_order_status("12345") == {}


def test_status_is_a_copy(api: IBKRApi) -> None:
    order_id = api.place_order("AAPL", "LONG", 1, spread(api), "MARKET")
    status = api.get_order_status(order_id)
    status["status"] = "Nonsense"
    status["executions"].clear()
    again = api.get_order_status(order_id)
    assert again["status"] == "Filled" and len(again["executions"]) == 2
    positions = api.get_positions()
    next(iter(positions.values()))["quantity"] = 99
    assert 99 not in [p["quantity"] for p in api.get_positions().values()]


def test_order_ref_makes_placement_idempotent(api: IBKRApi) -> None:
    s = spread(api)
    first = api.place_order("AAPL", "LONG", 1, s, "LIMIT", 0.05, order_ref="sig-1")
    again = api.place_order("AAPL", "LONG", 1, s, "LIMIT", 0.05, order_ref="sig-1")
    assert first == again
    assert len(api.orders) == 1
    assert api.get_order_status(first)["order_ref"] == "sig-1"
    other = api.place_order("AAPL", "LONG", 1, s, "LIMIT", 0.05, order_ref="sig-2")
    assert other != first


@pytest.mark.parametrize("args, fragment", [
    (("AAPL", "SIDEWAYS", 1, None, "LIMIT", 1.0), "direction"),
    (("AAPL", "LONG", 0, None, "LIMIT", 1.0), "contracts"),
    (("AAPL", "LONG", -1, None, "LIMIT", 1.0), "contracts"),
    (("AAPL", "LONG", 1.5, None, "LIMIT", 1.0), "contracts"),
    (("AAPL", "LONG", True, None, "LIMIT", 1.0), "contracts"),
    (("AAPL", "LONG", 11, None, "LIMIT", 1.0), "risk.max_contracts_per_order"),
    (("AAPL", "LONG", 1, "a spread", "LIMIT", 1.0), "option_spread"),
    (("MSFT", "LONG", 1, None, "LIMIT", 1.0), "symbol"),
    (("", "LONG", 1, None, "LIMIT", 1.0), "symbol"),
    (("aapl;", "LONG", 1, None, "LIMIT", 1.0), "symbol"),
    (("AAPL", "LONG", 1, None, "STOP", 1.0), "price_type"),
    (("AAPL", "LONG", 1, None, "LIMIT", None), "limit_price is required"),
    (("AAPL", "LONG", 1, None, "LIMIT", 0.0), "limit_price"),
    (("AAPL", "LONG", 1, None, "LIMIT", float("nan")), "limit_price"),
    (("AAPL", "LONG", 1, None, "LIMIT", "1.0"), "limit_price"),
    (("AAPL", "LONG", 1, None, "MARKET", float("inf")), "limit_price"),
])
def test_invalid_arguments_raise_value_error_naming_the_field(
        api: IBKRApi, args: tuple[Any, ...], fragment: str) -> None:
    s = spread(api)
    args = tuple(s if a is None and i == 3 else a for i, a in enumerate(args))
    with pytest.raises(ValueError, match=fragment):
        api.place_order(*args)
    assert api.orders == {} and api.next_order_id == 1  # state unchanged


def test_bad_order_ref_is_rejected(api: IBKRApi) -> None:
    with pytest.raises(ValueError, match="order_ref"):
        api.place_order("AAPL", "LONG", 1, spread(api), "MARKET", order_ref="bad ref!")


def test_not_connected_raises_value_error(api: IBKRApi) -> None:
    s = spread(api)
    api.disconnect()
    with pytest.raises(ValueError, match="Not connected"):
        api.place_order("AAPL", "LONG", 1, s, "MARKET")


@pytest.mark.parametrize("hook", ["market_closed", "expired"])  # read-only: test_parity.py
def test_refusals_raise_runtime_error_and_log(
        hook: str, caplog: pytest.LogCaptureFixture) -> None:
    api = make(config=Config().replace(IBKR_READ_ONLY=hook == "read_only"))
    api.connect()
    s = spread(api)
    if hook == "market_closed":
        api.market_open = False
    if hook == "expired":
        api.clock = FixedClock.new_york(date(2027, 6, 1))
    with caplog.at_level(logging.ERROR), pytest.raises(
            RuntimeError, match="^Order placement failed: "):
        api.place_order("AAPL", "LONG", 1, s, "MARKET")
    assert any("Error placing order" in r.getMessage() for r in caplog.records)
    assert api.orders == {} and api.positions == {}


# -- account -----------------------------------------------------------------------------------


def test_account_summary_keys_and_cash_accounting(api: IBKRApi) -> None:
    before = api.get_account_summary()
    assert set(ACCOUNT_FIELDS) <= set(before)
    assert before["account_id"] == api.account_id
    assert before["cash_balance"] == 1_000_000.0
    assert before["gross_position_value"] == 0.0
    assert all(isinstance(before[k], float) for k in ACCOUNT_FIELDS
               if k not in ("timestamp", "account_id"))
    order_id = api.place_order("AAPL", "LONG", 1, spread(api), "MARKET")
    status = api.get_order_status(order_id)
    debit = status["filled_price"] * 100
    fees = sum(c["commission"] for c in status["commissions"])
    after = api.get_account_summary()
    assert after["cash_balance"] == pytest.approx(1_000_000.0 - debit - fees, abs=0.01)
    assert after["gross_position_value"] > 0
    assert after["net_liquidation"] == pytest.approx(
        after["cash_balance"] + sum(p["market_value"] for p in api.get_positions().values()),
        abs=0.01)


def test_account_and_positions_when_disconnected(api: IBKRApi) -> None:
    api.place_order("AAPL", "LONG", 1, spread(api), "MARKET")
    api.disconnect()
    summary = api.get_account_summary()
    assert set(summary) == {"error", "timestamp"}
    assert api.get_positions() == {}
    api.connect()  # the gateway's state survives a reconnect
    assert len(api.get_positions()) == 2


def test_handle_callbacks_never_raises(api: IBKRApi) -> None:
    api._spreads.clear()  # corrupt the state: a resting order without its spread
    api.orders["x"] = {"status": "Submitted", "price_type": "LIMIT"}
    api.handle_callbacks()
    api.disconnect()
    api.handle_callbacks()


def test_thread_safe_concurrent_orders(api: IBKRApi) -> None:
    s = spread(api)
    ids: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(20):
                ids.append(api.place_order("AAPL", "LONG", 1, s, "LIMIT", 0.05))
                api.handle_callbacks()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(set(ids)) == 80 == len(api.orders)
