"""The drop-in scenario set: one ``broker`` fixture parametrized over every backend, and the steps.

Backends:
  * ``placeholder``   — ``IBKRApi``, the in-memory simulated broker;
  * ``ib_insync+sim`` / ``ib_async+sim`` — ``IBKRIBInsyncApi`` (the real adapter on the client
    library of this environment) connected over TCP to ``SimulatedGateway(port=0)``, the
    TWS-protocol gateway simulator, in-process;
  * ``client+mock`` — ``ClientBroker`` (the broker interface over any ``IBKRClientProtocol``) on
    ``MockIBKRClient`` with the placeholder's symbols quoted and MARKET orders filling at once
    (the service's ``mock`` backend); "the market is closed" scripts IB's 201 rejection;
  * ``client+sim`` — ``ClientBroker`` on the real ``IBKRClient`` connected to the simulated
    gateway: the same protocol-only broker against the TWS wire protocol.

The steps only use the broker contract (plus the host's own spread selection), so a scenario that
passes on both backends is behaviour the host application can rely on whichever is configured.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import clock_support
import pytest
from model_support import assert_true_to_model, gateway_inputs
from pytest_bdd import given, parsers, then, when

from src.app.config import Config
from src.app.executor import select_spread
from src.brokers import compat
from src.brokers.base import ACCOUNT_FIELDS, FINAL_STATUSES, MARKET_DATA_FIELDS, ORDER_FIELDS
from src.brokers.errors import InvalidOrder, ReadOnlyViolation
from src.brokers.ibkr_api import RISK_FREE_RATE, IBKRApi
from src.models.option import OptionSpread
from src.utils.clock import Clock, FixedClock
from src.utils.market_calendar import years_to_expiry

WAIT = 15.0  # upper bound for an asynchronous answer from the gateway (not a speed assertion)
SIM_BACKEND = f"{compat.LIBRARY}+sim"
MOCK_BACKEND = "client+mock"
CLIENT_SIM_BACKEND = "client+sim"
BACKENDS = ("placeholder", SIM_BACKEND, MOCK_BACKEND, CLIENT_SIM_BACKEND)


@dataclass
class Backend:
    """A connected broker and the hooks a scenario needs on its (simulated) gateway."""

    name: str
    broker: Any
    close_market: Callable[[], None]
    model: Callable[[Any], dict[str, Any]]  # option -> the pricing inputs its quoter used
    state: dict[str, Any] = field(default_factory=dict)  # what the steps pass along


def _placeholder(clock: Clock) -> Iterator[Backend]:
    api = IBKRApi(Config().replace(USE_IB_INSYNC=False), clock=clock)
    assert api.connect()

    def close_market() -> None:
        api.market_open = False

    def model(option: Any) -> dict[str, Any]:
        spot = api._spot(option.underlying)  # the path moves only in handle_callbacks()
        return {"years": years_to_expiry(option.expiration, clock), "rate": RISK_FREE_RATE,
                "spot_lo": spot, "spot_hi": spot, "with_rho": True, "iv_rel": 2e-4}

    yield Backend("placeholder", api, close_market, model)
    api.disconnect()


def _sim(clock: Clock) -> Iterator[Backend]:
    try:
        from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi
        from src.simulator import SimulatedGateway
    except ImportError as e:  # pragma: no cover - only while the other parts are being written
        pytest.skip(f"{SIM_BACKEND} backend not available yet: {e}")
    with SimulatedGateway(port=0, seed=7, clock=clock) as gw:
        config = Config().replace(IBKR_HOST=gw.host, IBKR_PORT=gw.port, IBKR_CLIENT_ID=11,
                                  USE_IB_INSYNC=True, IBKR_TIMEOUT=10.0)
        api = IBKRIBInsyncApi(config, clock=clock)
        try:
            assert api.connect(), "the adapter could not connect to the simulated gateway"

            def close_market() -> None:
                gw.call(setattr, gw.engine, "market_open", False)

            yield Backend(SIM_BACKEND, api, close_market,
                          lambda option: gateway_inputs(gw, option))
        finally:
            api.disconnect()
            api.close()


def _client_mock(clock: Clock) -> Iterator[Backend]:
    from src.brokers.client_broker import ClientBroker
    from src.brokers.mock_client import MockIBKRClient
    from src.brokers.mock_market import seed_universe

    mock = MockIBKRClient(clock=clock, fill_market_orders=True)
    seed_universe(mock)
    api = ClientBroker(mock, clock=clock)
    assert api.connect()

    def close_market() -> None:
        mock.script("rejected", code=201, message="Order rejected - reason: market is closed")

    def model(option: Any) -> dict[str, Any]:
        spot = api.get_market_data(option.underlying)["last"]  # the mock's price stands still
        return {"years": years_to_expiry(option.expiration, clock), "rate": RISK_FREE_RATE,
                "spot_lo": spot, "spot_hi": spot}

    yield Backend(MOCK_BACKEND, api, close_market, model)
    api.close()


def _client_sim(clock: Clock) -> Iterator[Backend]:
    from src.brokers.client_broker import ClientBroker
    from src.brokers.ib_client import IBKRClient
    from src.brokers.settings import BrokerSettings
    from src.simulator import SimulatedGateway

    with SimulatedGateway(port=0, seed=7, clock=clock) as gw:
        client = IBKRClient(BrokerSettings(host=gw.host, port=gw.port, client_id=12,
                                           timeout=10.0), clock=clock)
        api = ClientBroker(client, clock=clock)
        try:
            assert api.connect(), "the client could not connect to the simulated gateway"

            def close_market() -> None:
                gw.call(setattr, gw.engine, "market_open", False)

            yield Backend(CLIENT_SIM_BACKEND, api, close_market,
                          lambda option: gateway_inputs(gw, option))
        finally:
            api.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, clock: FixedClock) -> Iterator[Backend]:
    """Each backend at the pinned instant (tests/clock_support.py), whatever the host date."""
    make = {"placeholder": _placeholder, SIM_BACKEND: _sim, MOCK_BACKEND: _client_mock,
            CLIENT_SIM_BACKEND: _client_sim}
    yield from make[request.param](clock)


@pytest.fixture
def broker(backend: Backend) -> Any:
    return backend.broker


def eventually(broker: Any, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Pump the broker's callbacks until ``predicate()`` holds or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        broker.handle_callbacks()
        time.sleep(0.02)


def status_of(backend: Backend) -> dict[str, Any]:
    result: dict[str, Any] = backend.broker.get_order_status(backend.state["order_id"])
    return result


# -- given -------------------------------------------------------------------------------------


@given("a connected broker")
def a_connected_broker(broker: Any) -> None:
    assert broker.connected is True


@given(parsers.parse('a {kind} spread from the live chain for "{symbol}"'))
def a_spread_from_the_chain(backend: Backend, kind: str, symbol: str) -> None:
    broker = backend.broker
    chain = broker.get_option_chain(symbol)
    assert chain, f"empty chain for {symbol}"
    quote = broker.get_market_data(symbol)
    spot = quote.get("last") or None
    spread = select_spread(chain, symbol, "LONG" if kind == "BULL_CALL" else "SHORT", spot)
    assert spread.spread_type == kind
    backend.state["spread"] = spread


@given("the market is closed")
def the_market_is_closed(backend: Backend) -> None:
    backend.close_market()


# -- when --------------------------------------------------------------------------------------


@when(parsers.parse('I request market data for "{symbol}"'))
def request_market_data(backend: Backend, symbol: str) -> None:
    backend.state["quote"] = backend.broker.get_market_data(symbol)


@when(parsers.parse('I request the option chain for "{symbol}"'))
def request_option_chain(backend: Backend, symbol: str) -> None:
    backend.state["chain"] = backend.broker.get_option_chain(symbol)


@when(parsers.parse("I place a LIMIT order for {n:d} contract at {price:f}"))
def place_limit(backend: Backend, n: int, price: float) -> None:
    spread: OptionSpread = backend.state["spread"]
    backend.state["order_id"] = backend.broker.place_order(
        spread.symbol, "LONG", n, spread, "LIMIT", price)


@when(parsers.parse('I place a LIMIT order for {n:d} contract at {price:f} with reference "{ref}"'))
def place_limit_with_ref(backend: Backend, n: int, price: float, ref: str) -> None:
    spread: OptionSpread = backend.state["spread"]
    order_id = backend.broker.place_order(spread.symbol, "LONG", n, spread, "LIMIT", price,
                                          order_ref=ref)
    backend.state.setdefault("order_ids", []).append(order_id)


@when(parsers.parse("I place a MARKET order for {n:d} contracts"))
def place_market(backend: Backend, n: int) -> None:
    spread: OptionSpread = backend.state["spread"]
    backend.state["order_id"] = backend.broker.place_order(
        spread.symbol, "LONG", n, spread, "MARKET")


@when("I cancel the order")
def cancel_the_order(backend: Backend) -> None:
    backend.state["cancelled"] = backend.broker.cancel_order(backend.state["order_id"])


@when("I disconnect")
def disconnect(broker: Any) -> None:
    broker.disconnect()


# -- then --------------------------------------------------------------------------------------


@then("the broker is connected with an account id")
def connected_with_account(broker: Any) -> None:
    assert broker.connected is True
    assert isinstance(broker.account_id, str) and broker.account_id.startswith("DU")


@then("the account summary has every contract key")
def account_summary_keys(broker: Any) -> None:
    summary = broker.get_account_summary()
    assert "error" not in summary
    assert set(ACCOUNT_FIELDS) <= set(summary)
    assert summary["account_id"] == broker.account_id
    assert eventually(broker, lambda: isinstance(
        broker.get_account_summary().get("net_liquidation"), float))
    summary = broker.get_account_summary()
    assert summary["net_liquidation"] > 0
    for key in ACCOUNT_FIELDS:
        if key not in ("timestamp", "account_id"):
            assert summary[key] is None or isinstance(summary[key], float), key


@then("the quote has a bid, an ask and a last price")
def quote_has_prices(backend: Backend) -> None:
    quote = backend.state["quote"]
    assert "error" not in quote, quote
    assert set(MARKET_DATA_FIELDS) <= set(quote)
    assert quote["symbol"] == "AAPL"
    assert 0 < quote["bid"] <= quote["ask"]
    assert quote["last"] > 0


@then("the chain has calls and puts with quotes and greeks")
def chain_has_greeks(backend: Backend) -> None:
    chain = backend.state["chain"]
    assert chain
    assert {o.option_type for o in chain} == {"call", "put"}
    assert len({o.expiration for o in chain}) >= 2
    quote = backend.state["quote"]
    strikes = sorted({o.strike for o in chain})
    assert strikes[0] <= quote["last"] <= strikes[-1]  # near the money
    for o in chain:
        assert o.underlying == "AAPL"
        assert 0 <= o.bid <= o.ask and o.ask > 0
        assert o.implied_volatility > 0
        assert_true_to_model(o, **backend.model(o))  # greeks: the kernel's, not "usual" signs


@then("the order status is tracked as working")
def tracked_as_working(backend: Backend) -> None:
    broker = backend.broker
    assert eventually(broker, lambda: status_of(backend).get("status") in (
        "Submitted", "PreSubmitted"))
    status = status_of(backend)
    assert set(ORDER_FIELDS) <= set(status)
    assert status["id"] == backend.state["order_id"]
    assert status["spread_type"] == "BULL_CALL" and status["price_type"] == "LIMIT"
    assert status["limit_price"] == 0.05
    assert status["filled"] == 0 and status["remaining"] == 1
    assert status["filled_price"] is None and status["fill_time"] is None


@then(parsers.parse('the order ends "{final}"'))
def order_ends(backend: Backend, final: str) -> None:
    if "cancelled" in backend.state:
        assert backend.state["cancelled"] is True
    assert eventually(backend.broker, lambda: status_of(backend).get("status") in FINAL_STATUSES)
    assert status_of(backend)["status"] == final


@then("both placements return the same order id")
def same_order_id(backend: Backend) -> None:
    first, second = backend.state["order_ids"]
    assert first == second


@then("the broker tracks exactly one order")
def exactly_one_order(broker: Any) -> None:
    with broker.lock:
        assert len(broker.orders) == 1


@then("cancelling it again is refused")
def cancel_again(backend: Backend) -> None:
    assert backend.broker.cancel_order(backend.state["order_id"]) is False


@then(parsers.parse(
    "the fill is for {n:d} contracts at a positive price with executions and commissions"))
def fill_details(backend: Backend, n: int) -> None:
    broker = backend.broker
    assert eventually(broker, lambda: len(status_of(backend).get("commissions", [])) >= 2)
    status = status_of(backend)
    assert status["filled"] == n and status["remaining"] == 0
    assert status["filled_price"] > 0
    assert status["fill_time"] is not None
    assert len(status["executions"]) >= 2
    assert sum(c["commission"] for c in status["commissions"]) > 0


@then(parsers.parse("the positions hold +{n:d} of the long leg and -{m:d} of the short leg"))
def positions_hold_legs(backend: Backend, n: int, m: int) -> None:
    broker = backend.broker
    spread: OptionSpread = backend.state["spread"]
    legs = (spread.long_leg.symbol, spread.short_leg.symbol)

    def both() -> bool:
        positions = broker.get_positions()
        return all(k in positions for k in legs)

    assert eventually(broker, both), f"positions {sorted(broker.get_positions())} lack {legs}"
    positions = broker.get_positions()
    assert positions[legs[0]]["quantity"] == n
    assert positions[legs[1]]["quantity"] == -m
    for key in legs:
        assert positions[key]["symbol"] == key
        assert positions[key]["account"] == broker.account_id


@then(parsers.parse('the quote is an error for "{symbol}"'))
def quote_is_error(backend: Backend, symbol: str) -> None:
    quote = backend.state["quote"]
    assert quote["symbol"] == symbol and quote.get("error")


@then(parsers.parse('the option chain for "{symbol}" is empty'))
def chain_is_empty(broker: Any, symbol: str) -> None:
    assert broker.get_option_chain(symbol) == []


@then("an unknown order id has an empty status and cannot be cancelled")
def unknown_order(broker: Any) -> None:
    assert broker.get_order_status("987654") == {}
    assert broker.cancel_order("987654") is False


@then(parsers.parse('placing an order for 0 contracts raises a ValueError naming "{name}"'))
def zero_contracts(backend: Backend, name: str) -> None:
    a_spread_from_the_chain(backend, "BULL_CALL", "AAPL")
    spread = backend.state["spread"]
    before = dict(backend.broker.orders)
    with pytest.raises(ValueError, match=name):
        backend.broker.place_order("AAPL", "LONG", 0, spread, "LIMIT", 1.0)
    assert backend.broker.orders == before


@then(parsers.parse('placing a MARKET order raises "{text}"'))
def market_order_refused(backend: Backend, text: str, caplog: pytest.LogCaptureFixture) -> None:
    spread = backend.state["spread"]
    caplog.set_level(logging.ERROR)
    with pytest.raises(RuntimeError, match=f"^{text}"):
        backend.broker.place_order("AAPL", "LONG", 1, spread, "MARKET")


@then(parsers.parse('"{text}" is logged'))
def text_is_logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    assert any(text in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)


@then("the broker is not connected")
def not_connected(broker: Any) -> None:
    assert broker.connected is False


@then(parsers.parse('placing an order raises a ValueError naming "{name}"'))
def order_when_disconnected(backend: Backend, name: str) -> None:
    from datetime import timedelta

    from src.models.option import Option

    expiry = clock_support.today() + timedelta(days=30)
    legs = [Option(symbol=f"AAPL C{k}", underlying="AAPL", option_type="call", strike=k,
                   expiration=expiry) for k in (230.0, 235.0)]
    spread = OptionSpread(symbol="AAPL", spread_type="BULL_CALL", long_leg=legs[0],
                          short_leg=legs[1])
    with pytest.raises(ValueError, match=f"(?i){name}"):
        backend.broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 1.0)


@then("market data and the account summary answer with errors")
def errors_when_disconnected(broker: Any) -> None:
    quote = broker.get_market_data("AAPL")
    assert quote["symbol"] == "AAPL" and quote.get("error")
    summary = broker.get_account_summary()
    assert summary.get("error") and "timestamp" in summary


# -- parity of the two brokers (issue 8) -----------------------------------------------------


def host_made(spread: OptionSpread, **changes: Any) -> SimpleNamespace:
    """The spread as a host application's own object (any object with those attributes)."""
    def leg(option: Any, **over: Any) -> SimpleNamespace:
        fields = {"symbol": option.symbol, "underlying": option.underlying,
                  "option_type": option.option_type, "strike": option.strike,
                  "expiration": option.expiration, "bid": option.bid, "ask": option.ask}
        fields.update(over)
        return SimpleNamespace(**fields)

    long_over = {"strike": changes.pop("long_strike")} if "long_strike" in changes else {}
    fields = {"symbol": spread.symbol, "spread_type": spread.spread_type,
              "long_leg": leg(spread.long_leg, **long_over), "short_leg": leg(spread.short_leg)}
    fields.update(changes)
    return SimpleNamespace(**fields)


@when("the broker is made read-only")
def made_read_only(broker: Any) -> None:
    broker.read_only = True


@then(parsers.parse('placing an order raises a ReadOnlyViolation naming "{name}"'))
def place_read_only(backend: Backend, name: str) -> None:
    spread = backend.state["spread"]
    before = dict(backend.broker.orders)
    with pytest.raises(ReadOnlyViolation, match=re.escape(name)):
        backend.broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)
    assert backend.broker.orders.keys() == before.keys()


@then(parsers.parse('cancelling the order raises a ReadOnlyViolation naming "{name}"'))
def cancel_read_only(backend: Backend, name: str) -> None:
    with pytest.raises(ReadOnlyViolation, match=re.escape(name)):
        backend.broker.cancel_order(backend.state["order_id"])


@then(parsers.re(r'requesting market data for "(?P<symbol>[^"]*)" raises a ValueError '
                 r'naming "(?P<name>[^"]+)"'))
def market_data_bad_symbol(broker: Any, symbol: str, name: str) -> None:
    with pytest.raises(InvalidOrder, match=name):
        broker.get_market_data(symbol)


@then(parsers.re(r'requesting the option chain for "(?P<symbol>[^"]*)" raises a ValueError '
                 r'naming "(?P<name>[^"]+)"'))
def chain_bad_symbol(broker: Any, symbol: str, name: str) -> None:
    with pytest.raises(InvalidOrder, match=name):
        broker.get_option_chain(symbol)


@then(parsers.parse(
    'placing it with spread type "{kind}" raises a ValueError naming "{name}"'))
def place_bad_spread_type(backend: Backend, kind: str, name: str) -> None:
    before = dict(backend.broker.orders)
    with pytest.raises(InvalidOrder, match=re.escape(name)):
        backend.broker.place_order("AAPL", "LONG", 1,
                                   host_made(backend.state["spread"], spread_type=kind),
                                   "LIMIT", 0.05)
    assert backend.broker.orders.keys() == before.keys()


@then(parsers.parse(
    'placing it with a long leg strike of {strike:g} raises a ValueError naming "{name}"'))
def place_bad_strike(backend: Backend, strike: float, name: str) -> None:
    with pytest.raises(InvalidOrder, match=re.escape(name)):
        backend.broker.place_order("AAPL", "LONG", 1,
                                   host_made(backend.state["spread"], long_strike=strike),
                                   "LIMIT", 0.05)


@then(parsers.parse("placing it as a host-made object at {price:f} is tracked as working"))
def place_host_made(backend: Backend, price: float) -> None:
    spread = host_made(backend.state["spread"])
    backend.state["order_id"] = backend.broker.place_order("AAPL", "LONG", 1, spread, "LIMIT",
                                                           price)
    tracked_as_working(backend)
