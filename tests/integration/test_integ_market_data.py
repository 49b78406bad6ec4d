"""Quotes and option chains — real ib_insync against the simulated gateway."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import date
from typing import Any

import pytest
from integ_support import (
    UNKNOWN_SYMBOL,
    atm_strike,
    chain_info,
    market_steps,
    round_trip,
    run_in_thread,
)
from metrics_support import metric_value
from model_support import assert_true_to_model, gateway_inputs

from src.brokers.base import MARKET_DATA_FIELDS
from src.models.option import Option

# IBKR_REQUEST_TIMEOUT is 5 s in these tests: an answer well inside it ended on the event
# (the gateway's error / end message), not on the timeout.


def _check_quote(data: dict[str, Any], symbol: str, gw: Any) -> None:
    assert "error" not in data, data
    assert set(MARKET_DATA_FIELDS) <= set(data), sorted(data)
    assert data["symbol"] == symbol
    for key in ("last", "bid", "ask", "volume", "high", "low", "close"):
        assert isinstance(data[key], (int, float)), f"{key}={data[key]!r}"
    assert 0 < data["bid"] < data["ask"]
    assert data["low"] <= data["high"]
    assert data["volume"] > 0
    spot = gw.call(gw.market.underlying_price, symbol)
    assert abs(data["last"] - spot) / spot < 0.02, (data["last"], spot)
    assert data["timestamp"]


def test_quote_aapl(gateway: Any, api: Any) -> None:
    _check_quote(api.get_market_data("AAPL"), "AAPL", gateway)


def test_quote_from_a_thread_without_event_loop(gateway: Any, api: Any) -> None:
    _check_quote(run_in_thread(api.get_market_data, "MSFT"), "MSFT", gateway)


@pytest.mark.allow_ib_errors(200)
def test_unknown_symbol_quote_is_an_error_dict_promptly(
        api: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        data = run_in_thread(api.get_market_data, UNKNOWN_SYMBOL)
    assert data["symbol"] == UNKNOWN_SYMBOL
    assert data.get("error"), data
    assert "timed out" not in data["error"], "waited for a timeout, not the gateway's error"
    assert any(r.levelno >= logging.ERROR and UNKNOWN_SYMBOL in r.getMessage()
               and not r.name.startswith(("ib_insync", "ib_async")) for r in caplog.records)
    # The adapter stays usable after the error.
    assert "error" not in api.get_market_data("AAPL")


def _check_chain(options: list[Option], gw: Any, symbol: str = "AAPL",
                 n_exp: int = 4, n_strikes: int = 6) -> None:
    expirations, strikes, spot = chain_info(gw, symbol)
    assert len(options) == 2 * n_exp * n_strikes, len(options)
    assert all(isinstance(o, Option) for o in options)
    by_right = Counter(o.option_type for o in options)
    assert by_right == {"call": n_exp * n_strikes, "put": n_exp * n_strikes}
    wanted_exps = {date(int(e[:4]), int(e[4:6]), int(e[6:])) for e in expirations[:n_exp]}
    assert {o.expiration for o in options} == wanted_exps, "not the nearest expirations"
    keys = {(o.expiration, o.option_type, o.strike) for o in options}
    assert len(keys) == len(options), "duplicate options"
    atm = atm_strike(strikes, spot)
    step = strikes[1] - strikes[0]
    for exp in wanted_exps:
        for right in ("call", "put"):
            ks = sorted(o.strike for o in options if o.expiration == exp and o.option_type == right)
            assert len(ks) == n_strikes
            assert atm in ks, f"ATM strike {atm} missing from {ks}"
            assert all(abs(k - spot) <= (n_strikes / 2 + 1) * step for k in ks), (ks, spot)
    for o in options:
        assert o.underlying == symbol
        assert o.symbol.strip()
        assert 0 < o.bid <= o.ask, o
        assert o.implied_volatility > 0, o
        assert o.rho == 0.0  # ib_insync's OptionComputation has no rho (seed bug)
        assert_true_to_model(o, **gateway_inputs(gw, o))  # the kernel's greeks


def test_option_chain_with_greeks(gateway: Any, api: Any) -> None:
    _check_chain(api.get_option_chain("AAPL"), gateway)


def test_option_chain_matches_the_gateway_model(gateway: Any, api: Any) -> None:
    """Values come from the gateway (not defaults): ATM call delta ≈ 0.5, put-call parity of
    deltas, and quotes near the gateway's current bid/ask."""
    options = api.get_option_chain("AAPL")
    assert options
    expirations, strikes, spot = chain_info(gateway, "AAPL")
    atm = atm_strike(strikes, spot)
    first = min(o.expiration for o in options)
    call = next(o for o in options
                if o.expiration == first and o.strike == atm and o.option_type == "call")
    put = next(o for o in options
               if o.expiration == first and o.strike == atm and o.option_type == "put")
    assert_true_to_model(call, **gateway_inputs(gateway, call))
    assert_true_to_model(put, **gateway_inputs(gateway, put))
    assert call.delta - put.delta == pytest.approx(1.0, abs=0.05)  # parity (same vol ± walk)
    found = gateway.call(lambda: gateway.market.match(
        symbol="AAPL", sec_type="OPT", expiry=first.strftime("%Y%m%d"), strike=atm, right="C"))
    bid, ask, _ = gateway.call(gateway.market.quote, found[0].con_id)
    assert abs(call.bid - bid) < 1.0 and abs(call.ask - ask) < 1.0


def test_option_chain_from_a_thread_without_event_loop(gateway: Any, api: Any) -> None:
    _check_chain(run_in_thread(api.get_option_chain, "AAPL"), gateway)


def test_option_chain_size_follows_config(gateway: Any, make_api: Any) -> None:
    api = make_api(CHAIN_EXPIRATIONS=2, CHAIN_STRIKES=3)
    _check_chain(api.get_option_chain("SPY"), gateway, "SPY", n_exp=2, n_strikes=3)


@pytest.mark.allow_ib_errors(200)
def test_unknown_symbol_chain_is_empty_promptly(
        api: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        options = run_in_thread(api.get_option_chain, UNKNOWN_SYMBOL)
    assert options == []
    errors = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.ERROR and not r.name.startswith(("ib_insync", "ib_async"))]
    assert errors and not any("timed out" in m for m in errors), errors


@pytest.mark.allow_ib_errors(200)
def test_symbol_without_listed_options_gives_empty_chain_promptly(
        api: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert api.get_option_chain("MSFT") == []
    assert not any("timed out" in r.getMessage() for r in caplog.records)


def _open_lines(gw: Any, client_id: int) -> list[str]:
    """secType of every market-data line the client holds at the gateway."""
    lines = gw.runtime.marketdata.lines
    return gw.call(lambda: [ln.contract.sec_type if ln.contract else "BAG"
                            for ln in lines.values() if ln.session.client_id == client_id])


@pytest.mark.allow_ib_errors(200)
def test_market_data_lines_are_bounded_and_accounted(gateway: Any, api: Any) -> None:
    """Chains never leak lines (the seeds' skip path did): the underlyings' quote lines stay,
    plus the option lines of the most recent chain that fits the retention budget (AAPL's
    are released to make room for SPY's); the subscriptions gauge counts exactly the lines
    the gateway holds for this client."""
    api.get_market_data("AAPL")
    api.get_option_chain("AAPL")
    api.get_option_chain("SPY")
    api.get_market_data(UNKNOWN_SYMBOL)
    api.get_option_chain("MSFT")
    lines = _open_lines(gateway, api.test_client_id)
    assert 1 <= lines.count("STK") <= 3  # AAPL, SPY (MSFT at most): one per underlying
    assert lines.count("OPT") == 48 and set(lines) == {"STK", "OPT"}, lines
    retained = api.market_service.chain_lines.lines
    assert list(retained) == ["SPY"]
    assert metric_value(api, "ib_market_data_subscriptions") == float(len(lines))


def test_a_repeated_chain_streams_fresh_quotes_without_new_requests(
        gateway: Any, api: Any) -> None:
    """The second chain call sends no contract-details request and market-data requests only
    for strikes that entered the window; its quotes follow the market (it moved in between):
    live streams, not a copy of the first call."""
    first = {o.symbol: o for o in api.get_option_chain("AAPL")}
    sent = len(gateway.requests)
    # a move small enough to keep the same strikes nearest the money
    gateway.set_price("AAPL", gateway.market.underlying_price("AAPL") * 1.004)
    market_steps(gateway, 2)  # the gateway has pushed the moved quotes...
    round_trip(api)  # ...and the adapter has read everything sent before this answer
    second = api.get_option_chain("AAPL")
    new = [r for r in gateway.requests[sent:] if r[0] == api.test_client_id]
    assert len(second) == 48
    entered = [o for o in second if o.symbol not in first]  # the money may cross a strike
    assert not [r for r in new if r[1] == 9], new  # no contract-details request
    assert len([r for r in new if r[1] == 1]) == len(entered)  # lines only for new strikes
    assert len(entered) <= 8
    moved = [o for o in second if o.symbol in first and (o.bid, o.ask) != (
        first[o.symbol].bid, first[o.symbol].ask)]
    assert len(moved) >= 30  # live streams: the move reprices most options


def test_idle_chain_lines_are_released(make_api: Any, gateway: Any) -> None:
    api = make_api(CHAIN_STREAM_IDLE=1.0)
    api.get_option_chain("AAPL")
    assert _open_lines(gateway, api.test_client_id).count("OPT") == 48
    deadline = time.monotonic() + 5.0
    while _open_lines(gateway, api.test_client_id).count("OPT") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _open_lines(gateway, api.test_client_id) == ["STK"]
    assert metric_value(api, "ib_market_data_subscriptions") == 1.0
