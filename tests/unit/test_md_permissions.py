"""Market-data permissions (pure parts): data_type of a ticker, IB's refusals as errors naming
the code and the setting, the bounded refusal record, stale tickers blanked, Option.data_type."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from src.brokers import md_permissions
from src.brokers.errors import (
    CompetingLiveSession,
    MarketDataNotPermitted,
    NonRetryableError,
    error_from_ib,
    is_warning,
)
from src.models.option import Option

TEXT_10089 = ("Requested market data requires additional subscription for API. See link in "
              "'Market Data Connections' dialog for more details.Delayed market data is "
              "available.")


@pytest.mark.parametrize(("value", "kind"), [
    (1, "live"), (2, "frozen"), (3, "delayed"), (4, "delayed_frozen"), (None, "live"),
    (True, "live"), ("3", "live"), (9, "live"),
])
def test_data_type_follows_the_lines_market_data_type(value: object, kind: str) -> None:
    assert md_permissions.data_type(SimpleNamespace(marketDataType=value)) == kind


def test_data_type_without_the_attribute_is_live_and_a_quote_names_its_own() -> None:
    assert md_permissions.data_type(object()) == "live"
    assert md_permissions.data_type(SimpleNamespace(data_type="delayed")) == "delayed"
    assert md_permissions.data_type(SimpleNamespace(data_type="bogus", marketDataType=3)
                                    ) == "delayed"


@pytest.mark.parametrize("code", [10089, 10090])
def test_delayed_available_under_a_live_setting_names_the_setting_and_value_3(code: int) -> None:
    error = md_permissions.refusal(code, TEXT_10089, "MSFT", 1)
    assert isinstance(error, MarketDataNotPermitted) and not error.retryable
    assert error.code == code
    text = str(error)
    assert f"IB error {code}" in text and "MSFT" in text and TEXT_10089 in text
    assert "delayed data is available" in text
    assert "ibkr.market_data_type" in text and "to 3" in text


def test_354_says_delayed_is_available_only_when_its_text_does() -> None:
    plain = str(md_permissions.refusal(354, "Requested market data is not subscribed.", "X", 1))
    assert "delayed data is available" not in plain and "ibkr.market_data_type" in plain
    delayed = md_permissions.refusal(
        354, "Requested market data is not subscribed.Delayed market data is available.", "X", 2)
    assert "delayed data is available" in str(delayed)


@pytest.mark.parametrize("setting", [3, 4])
def test_no_data_under_a_delayed_setting_says_to_subscribe(setting: int) -> None:
    error = md_permissions.refusal(10168, "Delayed market data is not enabled.", "SPY", setting)
    assert isinstance(error, MarketDataNotPermitted)
    text = str(error)
    assert "neither live nor delayed" in text and f"is {setting}" in text
    assert "subscribe" in text and "IB error 10168" in text


def test_a_competing_live_session_is_retryable_and_says_what_to_do() -> None:
    error = md_permissions.refusal(10197, "No market data during competing live session",
                                   "AAPL", 3)
    assert isinstance(error, CompetingLiveSession) and error.retryable and error.code == 10197
    assert "live session" in str(error) and "log it out" in str(error)


@pytest.mark.parametrize("code", [200, 10167, 2104, 101])
def test_other_codes_are_no_refusal(code: int) -> None:
    assert md_permissions.refusal(code, "x", "AAPL", 1) is None


def test_error_tree_maps_the_codes_and_10168_is_no_warning_any_more() -> None:
    for code in (354, 10089, 10090, 10168):
        assert isinstance(error_from_ib(code, "x"), MarketDataNotPermitted)
        assert isinstance(error_from_ib(code, "x"), NonRetryableError)
        assert not is_warning(code)
    assert isinstance(error_from_ib(10197, "x"), CompetingLiveSession)
    assert is_warning(10167)  # "Displaying delayed market data": the data follows


def test_refusals_are_read_once_and_bounded() -> None:
    refusals = md_permissions.Refusals()
    error = MarketDataNotPermitted("x", 354)
    refusals.add(1, error)
    assert refusals.has(1)
    assert refusals.take([1, 2]) == [error]
    assert refusals.take([1]) == []
    for con_id in range(md_permissions.MAX_REFUSALS + 5):
        refusals.add(con_id, error)
    assert not refusals.has(0) and refusals.has(md_permissions.MAX_REFUSALS + 4)
    refusals.clear([md_permissions.MAX_REFUSALS + 4])
    assert not refusals.has(md_permissions.MAX_REFUSALS + 4)


def test_forget_quote_blanks_a_reused_tickers_prices_and_greeks() -> None:
    ticker = SimpleNamespace(bid=1.0, ask=1.1, last=1.05, bidSize=5.0, askSize=5.0, lastSize=1.0,
                             volume=100.0, high=1.2, low=0.9, close=1.0, modelGreeks=object(),
                             bidGreeks=None, askGreeks=None, lastGreeks=None)
    md_permissions.forget_quote(ticker)
    assert all(math.isnan(getattr(ticker, f)) for f in md_permissions.QUOTE_FIELDS)
    assert ticker.modelGreeks is None
    md_permissions.forget_quote(None)  # no ticker yet: nothing to do


def test_forget_quote_blanks_a_partly_quoted_ticker_and_leaves_non_tickers_alone() -> None:
    ticker = SimpleNamespace(bid=math.nan, ask=1.1, last=1.05, modelGreeks=object())
    md_permissions.forget_quote(ticker)
    assert math.isnan(ticker.ask) and ticker.modelGreeks is None
    greeks = object()
    other = SimpleNamespace(bid="1.0", ask=1.1, last=1.05, modelGreeks=greeks)  # not a Ticker
    md_permissions.forget_quote(other)
    assert other.ask == 1.1 and other.modelGreeks is greeks


def test_option_data_type_defaults_to_live_and_is_validated() -> None:
    args = ("AAPL  261218C00230000", "AAPL", "call", 230.0, date(2026, 12, 18))
    assert Option(*args).data_type == "live"
    assert Option(*args, 1.0, 1.1, 1.05, 1, 2, 0.3, 0.5, 0.01, -0.02, 0.1, 0.0, "delayed"
                  ).data_type == "delayed"
    with pytest.raises(ValueError, match="data_type"):
        Option(*args, data_type="stale")


def test_the_client_protocols_quote_carries_the_data_type_too() -> None:
    from src.brokers.client_types import Quote
    from src.brokers.compat import Stock
    from src.brokers.mock_client import MockIBKRClient

    ticker = SimpleNamespace(bid=1.0, ask=1.1, last=1.05, marketDataType=3)
    stock = Stock("AAPL", "SMART", "USD")
    assert Quote.from_ticker(ticker, stock, datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
                             ).data_type == "delayed"
    mock = MockIBKRClient()
    mock.set_quote("AAPL", 1.0, 1.1, 1.05)
    mock.set_quote("MSFT", 2.0, 2.1, 2.05, data_type="delayed")
    assert mock.connect()
    assert mock.request_market_data(stock).data_type == "live"
    assert mock.request_market_data(Stock("MSFT", "SMART", "USD")).data_type == "delayed"


def test_client_broker_quotes_and_options_carry_the_clients_data_type() -> None:
    import clock_support

    from src.brokers.client_broker import ClientBroker
    from src.brokers.mock_client import MockIBKRClient
    from src.brokers.mock_market import UNIVERSE, seed_universe

    clock = clock_support.pinned_clock()
    mock = MockIBKRClient(clock=clock)
    seed_universe(mock)
    price, vol = UNIVERSE["AAPL"]
    mock.set_quote("AAPL", price - 0.01, price + 0.01, price, vol=vol, data_type="delayed")
    broker = ClientBroker(mock, clock=clock)
    assert broker.connect()
    try:
        assert broker.get_market_data("AAPL")["data_type"] == "delayed"
        assert broker.get_market_data("MSFT")["data_type"] == "live"
        chain = broker.get_option_chain("AAPL")
        assert chain and {o.data_type for o in chain} == {"delayed"}
    finally:
        broker.close()
