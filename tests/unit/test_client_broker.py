"""ClientBroker over MockIBKRClient: what reaches the client (the BAG, its legs and signed
price), the error tree on each path (refused before sending, refused by IB, interrupted,
unknown contract), and the offline shapes. The contract's scenarios themselves run in
tests/dropin (backend ``client+mock``) and through the service in tests/service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import clock_support
import pytest

from src.app.executor import select_spread
from src.brokers.client_broker import ClientBroker
from src.brokers.client_types import ConnectionState
from src.brokers.compat import Option as IBOption
from src.brokers.errors import (
    ContractNotFound,
    InvalidOrder,
    LiveTradingNotAllowed,
    NotConnected,
    OrderInterrupted,
    OrderRejected,
)
from src.brokers.mock_client import MockIBKRClient
from src.brokers.mock_market import LISTED_EXPIRATIONS, STRIKES_EACH_SIDE, seed_universe
from src.brokers.settings import BrokerSettings
from src.models.option import OptionSpread
from src.models.pricing import black_scholes, implied_vol


def make(settings: BrokerSettings | None = None, **mock_kwargs: Any
         ) -> tuple[ClientBroker, MockIBKRClient]:
    clock = clock_support.pinned_clock()
    mock = MockIBKRClient(settings, clock=clock, **mock_kwargs)
    seed_universe(mock)
    broker = ClientBroker(mock, clock=clock)
    assert broker.connect()
    return broker, mock


@pytest.fixture
def pair() -> Iterator[tuple[ClientBroker, MockIBKRClient]]:
    broker, mock = make()
    yield broker, mock
    broker.close()


def spread_of(broker: ClientBroker, kind: str = "BULL_CALL") -> OptionSpread:
    chain = broker.get_option_chain("AAPL")
    return select_spread(chain, "AAPL", "LONG" if kind == "BULL_CALL" else "SHORT", 230.10)


def test_a_short_spread_flips_the_legs_and_buys_the_bag_at_a_negative_limit(pair: Any) -> None:
    broker, mock = pair
    spread = spread_of(broker)
    mock.script("immediate")
    order_id = broker.place_order("AAPL", "SHORT", 2, spread, "LIMIT", 1.25)
    sent = mock.order_state(int(order_id))
    assert (sent.action, sent.order_type, sent.limit_price, sent.quantity) == (
        "BUY", "LMT", -1.25, 2.0)  # a credit combo: IB prices it negative
    status = broker.get_order_status(order_id)
    assert [leg["action"] for leg in status["legs"]] == ["SELL", "BUY"]
    assert status["filled_price"] == 1.25  # reported back as the credit received
    positions = broker.get_positions()
    assert positions[spread.long_leg.symbol]["quantity"] == -2
    assert positions[spread.short_leg.symbol]["quantity"] == 2
    assert len(status["executions"]) == len(status["commissions"]) == 2


def test_refused_before_sending_leaves_the_mock_untouched() -> None:
    broker, mock = make(BrokerSettings(account_id="U1234567"))  # a live account
    spread = spread_of(broker)
    with pytest.raises(LiveTradingNotAllowed, match="allow_live"):
        broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)
    with pytest.raises(InvalidOrder, match="limit_price"):
        broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", None)
    assert broker.orders == {} and mock.metrics.value("ib_orders_total") == 0
    assert isinstance(broker.last_error, InvalidOrder)
    mock.set_state(ConnectionState.LOST)
    with pytest.raises(NotConnected):
        broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)


def test_an_unknown_leg_is_an_order_rejected_with_code_200_counted_once(pair: Any) -> None:
    broker, mock = pair
    spread = spread_of(broker)
    mock.inject_error("qualify", 200, "No security definition has been found")
    with pytest.raises(OrderRejected) as e:
        broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)
    assert e.value.code == 200 and str(e.value).startswith("Order placement failed: ")
    assert mock.metrics.value("ib_order_errors_total") == 1.0
    assert mock.metrics.value("ib_orders_total") == 0.0 and broker.orders == {}


def test_a_connection_loss_interrupts_placement_and_the_same_ref_can_retry(pair: Any) -> None:
    broker, mock = pair
    spread = spread_of(broker)
    mock.inject_error("place_order", 1100, "Connectivity between IB and TWS has been lost")
    with pytest.raises(OrderInterrupted, match="^Order placement failed: ") as e:
        broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05, order_ref="retry-1")
    assert e.value.retryable and broker.orders == {}
    order_id = broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05, order_ref="retry-1")
    assert broker.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05,
                              order_ref="retry-1") == order_id
    assert mock.metrics.value("ib_orders_total") == 1.0


def test_reads_when_offline_keep_the_contract_shapes(pair: Any) -> None:
    broker, mock = pair
    order_id = broker.place_order("AAPL", "LONG", 1, spread_of(broker), "LIMIT", 0.05)
    mock.set_state(ConnectionState.LOST)
    assert broker.connected is False and broker.connection.reconnecting is True
    assert broker.get_order_status(order_id)["status"] == "Submitted"  # the last known record
    assert broker.cancel_order(order_id) is False
    assert broker.get_positions() == {}
    assert broker.get_option_chain("AAPL") == []
    assert broker.get_market_data("AAPL")["error"]
    assert "error" in broker.get_account_summary()
    assert isinstance(broker.last_error, NotConnected)
    mock.set_state(ConnectionState.DISCONNECTED)
    assert broker.connection.reconnecting is False  # nobody reconnects it: connect() must


def test_an_unknown_symbol_records_ib_code_200(pair: Any) -> None:
    broker, _ = pair
    assert broker.get_market_data("ZZZNOPE")["error"]
    assert isinstance(broker.last_error, ContractNotFound) and broker.last_error.code == 200
    assert broker.get_option_chain("ZZZNOPE") == []


def test_the_chain_picks_the_nearest_expirations_and_strikes(pair: Any) -> None:
    broker, mock = pair
    chain = broker.get_option_chain("AAPL")
    settings = broker.settings
    assert len({o.expiration for o in chain}) == settings.chain_expirations
    strikes = sorted({o.strike for o in chain})
    assert settings.chain_strikes == 6
    assert strikes == [220.0, 225.0, 230.0, 235.0, 240.0, 245.0]  # nearest 230.10
    lines = list(mock.subscriptions.values())
    assert [line.sec_type for line in lines] == ["STK"]  # every option line was cancelled


def test_the_mock_lists_weeklies_around_the_money() -> None:
    _, mock = make()
    details = mock.contract_details(IBOption("AAPL", "", exchange="SMART", currency="USD"))
    expiries = {d.contract.expiry for d in details}
    assert len(expiries) == LISTED_EXPIRATIONS
    assert len(details) == LISTED_EXPIRATIONS * 2 * (2 * STRIKES_EACH_SIDE + 1)
    first = details[0].contract
    assert first.local_symbol.startswith("AAPL  ") and first.con_id > 0
    with pytest.raises(ContractNotFound):
        mock.contract_details(IBOption("ZZZNOPE", "", exchange="SMART", currency="USD"))


@pytest.mark.parametrize(("right", "strike", "vol"), [("C", 230.0, 0.27), ("P", 210.0, 0.6),
                                                      ("C", 260.0, 0.15)])
def test_implied_vol_inverts_the_kernel(right: str, strike: float, vol: float) -> None:
    price = black_scholes(230.1, strike, 0.1, vol, 0.04, right).price
    assert implied_vol(price, 230.1, strike, 0.1, 0.04, right) == pytest.approx(vol, rel=1e-6)
    assert implied_vol(0.0, 230.1, strike, 0.1, 0.04, right) is None
    assert implied_vol(1e6, 230.1, strike, 0.1, 0.04, right) == 5.0  # clamped
