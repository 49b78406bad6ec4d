"""RiskManager limits and TradeExecutor's spread selection, pricing, placement and follow-up."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from src.app.config import Config
from src.app.executor import TradeExecutor, round_to_tick, select_spread
from src.app.risk import RiskManager
from src.app.signals import Signal
from src.brokers.ibkr_api import IBKRApi
from src.models.option import Option

TODAY = date(2026, 11, 20)
E1, E2 = date(2026, 11, 27), date(2026, 12, 4)
CONFIG = Config().replace(USE_IB_INSYNC=False, MAX_CONTRACTS_PER_ORDER=5, MAX_OPEN_ORDERS=2)


@pytest.fixture
def broker() -> IBKRApi:
    b = IBKRApi(CONFIG, today=TODAY)
    b.connect()
    return b


def opt(kind: str, strike: float, expiration: date = E1, delta: float = 0.0,
        underlying: str = "AAPL", bid: float = 1.0, ask: float = 1.2) -> Option:
    return Option(symbol=f"{underlying}-{kind}-{strike}-{expiration}", underlying=underlying,
                  option_type=kind, strike=strike, expiration=expiration,  # type: ignore[arg-type]
                  bid=bid, ask=ask, delta=delta)


# -- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, fragment", [
    ({"symbol": ""}, "symbol"),
    ({"direction": "UP"}, "direction"),
    ({"contracts": 0}, "contracts"),
    ({"contracts": 2.0}, "contracts"),
    ({"price_type": "STOP"}, "price_type"),
    ({"limit_price": -1.0}, "limit_price"),
    ({"limit_price": float("nan")}, "limit_price"),
    ({"price_type": "MARKET", "limit_price": 1.0}, "limit_price must be None for MARKET"),
    ({"id": ""}, "id"),
])
def test_invalid_signals(kwargs: dict[str, Any], fragment: str) -> None:
    fields: dict[str, Any] = {"symbol": "AAPL", "direction": "LONG"}
    fields.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        Signal(**fields)


def test_signal_ids_are_unique_and_spread_type_follows_direction() -> None:
    a, b = Signal("AAPL", "LONG"), Signal("AAPL", "SHORT")
    assert a.id != b.id
    assert (a.spread_type, b.spread_type) == ("BULL_CALL", "BEAR_PUT")


# -- risk --------------------------------------------------------------------------------------


def test_risk_allows_a_normal_order(broker: IBKRApi) -> None:
    assert RiskManager(CONFIG, broker).check(Signal("AAPL", "LONG", 5)) == (True, "ok")


@pytest.mark.parametrize("contracts", [6, 100])
def test_risk_refuses_too_many_contracts(broker: IBKRApi, contracts: int) -> None:
    ok, reason = RiskManager(CONFIG, broker).check(Signal("AAPL", "LONG", contracts))
    assert ok is False and "risk.max_contracts_per_order 5" in reason


@pytest.mark.parametrize("contracts", [0, -1, True, 1.5])
def test_risk_refuses_nonsense_counts(broker: IBKRApi, contracts: Any) -> None:
    ok, reason = RiskManager(CONFIG, broker).check(contracts)
    assert ok is False and "contracts" in reason


def test_risk_counts_only_open_broker_orders(broker: IBKRApi) -> None:
    risk = RiskManager(CONFIG, broker)
    executor = TradeExecutor(CONFIG, broker)
    spread = executor.select_spread("AAPL", "LONG")
    broker.place_order("AAPL", "LONG", 1, spread, "MARKET")  # Filled: does not count
    first = broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)
    assert risk.check(1)[0] is True and risk.open_order_count() == 1
    broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)
    ok, reason = risk.check(1)
    assert ok is False and "risk.max_open_orders 2" in reason
    broker.cancel_order(first)
    assert risk.check(1) == (True, "ok")


def test_risk_refuses_read_only_and_unapproved_live(broker: IBKRApi) -> None:
    ok, reason = RiskManager(CONFIG.replace(IBKR_READ_ONLY=True), broker).check(1)
    assert ok is False and "read-only" in reason
    live = RiskManager(CONFIG.replace(TRADING_MODE="live"), broker)
    assert live.check(1)[0] is False and "live trading is not allowed" in live.check(1)[1]
    approved = RiskManager(CONFIG.replace(TRADING_MODE="live", ALLOW_LIVE=True), broker)
    assert approved.check(1) == (True, "ok")


def test_update_positions_from_broker_keeps_a_copy(broker: IBKRApi) -> None:
    risk = RiskManager(CONFIG, broker)
    assert risk.update_positions_from_broker() == {}
    spread = TradeExecutor(CONFIG, broker).select_spread("AAPL", "LONG")
    broker.place_order("AAPL", "LONG", 1, spread, "MARKET")
    positions = risk.update_positions_from_broker()
    assert set(positions) == {spread.long_leg.symbol, spread.short_leg.symbol}
    positions.clear()
    broker.positions.clear()
    assert len(risk.positions) == 2  # the copy is the risk manager's own


def test_update_positions_ignores_garbage() -> None:
    class Odd(IBKRApi):
        def get_positions(self) -> Any:
            return None

    assert RiskManager(CONFIG, Odd()).update_positions_from_broker() == {}


# -- spread selection --------------------------------------------------------------------------


CHAIN = [
    opt("call", 225, E1), opt("call", 230, E1), opt("call", 235, E1),
    opt("put", 225, E1), opt("put", 230, E1), opt("put", 235, E1),
    opt("call", 230, E2), opt("call", 235, E2), opt("put", 225, E2), opt("put", 230, E2),
]


def test_long_picks_a_bull_call_nearest_atm_and_next_higher() -> None:
    s = select_spread(CHAIN, "AAPL", "LONG", spot=231.0)
    assert s.spread_type == "BULL_CALL" and s.expiration == E1
    assert (s.long_leg.strike, s.short_leg.strike) == (230, 235)
    assert s.long_leg in CHAIN and s.short_leg in CHAIN


def test_short_picks_a_bear_put_nearest_atm_and_next_lower() -> None:
    s = select_spread(CHAIN, "AAPL", "SHORT", spot=229.0)
    assert s.spread_type == "BEAR_PUT" and s.expiration == E1
    assert (s.long_leg.strike, s.short_leg.strike) == (230, 225)


def test_the_nearest_expiration_without_both_legs_is_skipped() -> None:
    # spot above every strike: ATM is the top strike in both expirations, no higher one exists
    with pytest.raises(ValueError, match="no BULL_CALL spread"):
        select_spread(CHAIN, "AAPL", "LONG", spot=240.0)
    chain = [opt("call", 230, E1), opt("call", 230, E2), opt("call", 235, E2)]
    s = select_spread(chain, "AAPL", "LONG", spot=230.0)
    assert s.expiration == E2


def test_selection_ignores_other_underlyings_and_types() -> None:
    chain = [opt("call", 230, underlying="SPY"), opt("call", 235, underlying="SPY"),
             opt("put", 230), opt("put", 235)]
    with pytest.raises(ValueError, match="no BULL_CALL spread"):
        select_spread(chain, "AAPL", "LONG", spot=230.0)


def test_without_a_spot_atm_is_the_delta_nearest_half() -> None:
    chain = [opt("call", 225, delta=0.7), opt("call", 230, delta=0.52), opt("call", 235, delta=0.3)]
    s = select_spread(chain, "AAPL", "LONG")
    assert s.long_leg.strike == 230


def test_round_to_tick() -> None:
    assert round_to_tick(1.92) == 1.90
    assert round_to_tick(1.93) == 1.95
    assert round_to_tick(0.01) == 0.05  # never below one tick
    assert round_to_tick(2.0) == 2.0


# -- execution ---------------------------------------------------------------------------------


def test_executor_uses_the_live_chain_and_prices_at_mid(broker: IBKRApi) -> None:
    executor = TradeExecutor(CONFIG, broker)
    record = executor.execute(Signal("AAPL", "LONG", 1))
    assert record.status == "PLACED" and record.spread is not None
    chain_symbols = {o.symbol for o in broker.get_option_chain("AAPL")}
    assert {record.spread.long_leg.symbol, record.spread.short_leg.symbol} <= chain_symbols
    assert record.limit_price == round_to_tick(record.spread.net_debit)
    order = broker.get_order_status(record.order_id or "")
    assert order["spread_type"] == "BULL_CALL" and order["direction"] == "LONG"
    assert order["limit_price"] == record.limit_price
    assert order["order_ref"] == record.signal.id


def test_short_signal_buys_a_bear_put(broker: IBKRApi) -> None:
    record = TradeExecutor(CONFIG, broker).execute(Signal("AAPL", "SHORT", 2, "MARKET"))
    order = broker.get_order_status(record.order_id or "")
    assert order["spread_type"] == "BEAR_PUT" and order["status"] == "Filled"
    assert order["direction"] == "LONG"  # a debit spread is bought
    assert record.spread is not None
    assert broker.get_positions()[record.spread.long_leg.symbol]["quantity"] == 2


def test_explicit_limit_is_kept(broker: IBKRApi) -> None:
    record = TradeExecutor(CONFIG, broker).execute(Signal("AAPL", "LONG", 1, limit_price=0.1))
    assert broker.get_order_status(record.order_id or "")["limit_price"] == 0.1


def test_a_signal_is_never_sent_twice(broker: IBKRApi) -> None:
    executor = TradeExecutor(CONFIG, broker)
    signal = Signal("AAPL", "LONG", 1, limit_price=0.1)
    first = executor.execute(signal)
    assert executor.execute(signal) is first
    assert len(broker.orders) == 1


def test_refusal_fails_the_trade(broker: IBKRApi) -> None:
    broker.market_open = False
    record = TradeExecutor(CONFIG, broker).execute(Signal("AAPL", "LONG", 1, "MARKET"))
    assert record.status == "FAILED" and "Order placement failed" in (record.error or "")


def test_unknown_symbol_fails_the_trade(broker: IBKRApi) -> None:
    record = TradeExecutor(CONFIG, broker).execute(Signal("ZZZZ", "LONG", 1))
    assert record.status == "FAILED" and "no option chain" in (record.error or "")


def test_not_connected_queues_and_retries(broker: IBKRApi) -> None:
    executor = TradeExecutor(CONFIG, broker)
    broker.disconnect()
    record = executor.execute(Signal("AAPL", "LONG", 1, "MARKET"))
    assert record.status == "QUEUED" and executor.queued == 1
    broker.connect()
    assert executor.process_queued_trades() >= 1
    assert record.status in ("PLACED", "Filled") and record.order_id is not None
    executor.process_queued_trades()
    assert record.status == "Filled"
    assert len(broker.orders) == 1


def test_queued_trades_give_up_after_max_attempts(broker: IBKRApi) -> None:
    executor = TradeExecutor(CONFIG, broker)
    broker.disconnect()
    record = executor.queue_trade(Signal("AAPL", "LONG", 1))
    assert record.status == "QUEUED"
    for _ in range(10):
        executor.process_queued_trades()
    assert record.status == "FAILED" and "gave up after 5 attempts" in (record.error or "")
    assert executor.queued == 0 and broker.orders == {}


def test_process_queued_trades_follows_orders_to_the_end(broker: IBKRApi) -> None:
    executor = TradeExecutor(CONFIG, broker)
    record = executor.execute(Signal("AAPL", "LONG", 1, limit_price=0.05))
    assert record.status == "PLACED"
    executor.process_queued_trades()
    assert record.status == "PLACED" and record.order["status"] == "Submitted"
    broker.cancel_order(record.order_id or "")
    assert executor.process_queued_trades() == 1
    assert record.status == "Cancelled"


def test_broker_without_order_ref_support_is_called_without_it() -> None:
    calls: list[dict[str, Any]] = []

    class Legacy(IBKRApi):
        def place_order(self, symbol: str, direction: str, contracts: int,  # type: ignore[override]
                        option_spread: Any, price_type: str = "LIMIT",
                        limit_price: float | None = None) -> str:
            calls.append({"symbol": symbol})
            return super().place_order(symbol, direction, contracts, option_spread, price_type,
                                       limit_price)

    broker = Legacy(CONFIG, today=TODAY)
    broker.connect()
    record = TradeExecutor(CONFIG, broker).execute(Signal("AAPL", "LONG", 1, "MARKET"))
    assert record.status == "PLACED" and calls == [{"symbol": "AAPL"}]
