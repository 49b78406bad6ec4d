"""src.brokers.compat: choosing the IB client library, and the rules for the two libraries'
differences (ib_insync 0.9.86 vs ib_async 2.x). Runs in either environment: the tests that need
the other library's behaviour read it from the source's constants, not from an import."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import pkgutil
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import MagicMock, patch
from zoneinfo import ZoneInfo

import pytest
import stubs

import src
from src.app.config import SCHEMA, Config, ConfigError
from src.brokers import compat, translate
from src.brokers.errors import ClientLibraryError, ContractNotFound
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

BOTH = {"ib_insync": True, "ib_async": True}.get
ONLY_ASYNC = {"ib_insync": False, "ib_async": True}.get
NONE = {"ib_insync": False, "ib_async": False}.get
OTHER = "ib_async" if compat.LIBRARY == "ib_insync" else "ib_insync"


# --- choosing the library ---------------------------------------------------------------------

def test_auto_prefers_ib_insync_when_both_are_importable() -> None:
    assert compat.choose("auto", (3, 12), BOTH) == "ib_insync"
    assert compat.choose("auto", (3, 12), ONLY_ASYNC) == "ib_async"


def test_auto_on_python_314_takes_ib_async_even_when_ib_insync_is_installed() -> None:
    assert compat.choose("auto", (3, 14), BOTH) == "ib_async"


def test_ib_insync_on_python_314_is_a_clear_error_naming_the_setting() -> None:
    with pytest.raises(ClientLibraryError) as err:
        compat.choose("ib_insync", (3, 14), BOTH)
    message = str(err.value)
    assert "ibkr.client_library" in message and "Python 3.14" in message
    assert "ib_async" in message and "pip install" in message
    assert isinstance(err.value, ValueError)


def test_a_library_not_installed_names_what_to_install() -> None:
    with pytest.raises(ClientLibraryError, match=r"ib_insync is not installed: pip install .*"
                                                 r"\[ib-insync\]"):
        compat.choose("ib_insync", (3, 12), ONLY_ASYNC)
    with pytest.raises(ClientLibraryError, match="no IB client library can be used"):
        compat.choose("auto", (3, 12), NONE)


def test_an_unknown_choice_lists_the_choices() -> None:
    with pytest.raises(ClientLibraryError, match=r"must be one of \['auto', 'ib_insync', "
                                                 r"'ib_async'\], got 'ib_sync'"):
        compat.choose("ib_sync", (3, 12), BOTH)


def test_loaded_library_and_its_names() -> None:
    lib = importlib.import_module(compat.LIBRARY)
    assert lib.__version__ == compat.VERSION
    assert compat.IB is lib.IB and compat.Stock is lib.Stock and compat.util is lib.util
    assert compat.Client is importlib.import_module(f"{compat.LIBRARY}.client").Client
    import src.brokers.ibkr_ib_insync as adapter_module
    assert adapter_module.IB is lib.IB  # the contract's patch target is the loaded library's IB


def test_require_accepts_auto_and_the_loaded_library_and_refuses_the_other() -> None:
    assert compat.require(None) == compat.require("auto") == compat.require(compat.LIBRARY) \
        == compat.LIBRARY
    with pytest.raises(ClientLibraryError, match=f"ibkr.client_library = '{OTHER}'"):
        compat.require(OTHER)
    with pytest.raises(ClientLibraryError, match="must be one of"):
        compat.require(3)


def test_the_adapter_refuses_a_client_library_setting_it_cannot_honour() -> None:
    ib_class = MagicMock()
    with patch("src.brokers.ibkr_ib_insync.IB", ib_class), \
            pytest.raises(ValueError, match="ibkr.client_library"):
        IBKRIBInsyncApi(Config(IBKR_CLIENT_LIBRARY=OTHER))
    ib_class.assert_not_called()  # refused before any IB() is made


def test_config_schema_offers_the_same_choices_and_validates_them() -> None:
    spec = next(k for k in SCHEMA if (k.section, k.key) == ("ibkr", "client_library"))
    assert spec.choices == compat.CHOICES and spec.default == "auto"
    assert Config.from_dict({"ibkr": {"client_library": "ib_async"}}, env={}) \
        .IBKR_CLIENT_LIBRARY == "ib_async"
    with pytest.raises(ConfigError, match="ibkr.client_library"):
        Config.from_dict({"ibkr": {"client_library": "ib-async"}}, env={})
    assert Config.from_dict({}, env={"IBKR_CLIENT_LIBRARY": "ib_insync"}) \
        .IBKR_CLIENT_LIBRARY == "ib_insync"


def test_every_project_module_imports_with_the_installed_library() -> None:
    names = [m.name for m in pkgutil.walk_packages(src.__path__, "src.")
             if not m.name.endswith("__main__")]
    assert "src.brokers.compat" in names and "src.simulator.server" in names
    for name in names:
        importlib.import_module(name)


# --- qualifyContracts: None slots (ib_async) ---------------------------------------------------

def test_qualified_drops_none_slots_and_ambiguous_candidate_lists() -> None:
    aapl, msft = stubs.aapl_stock(), compat.Stock("MSFT", "SMART", "USD", conId=272093)
    assert translate is not None
    assert compat.qualified([None, aapl, [aapl, msft], msft]) == [aapl, msft]
    assert compat.qualified(None) == [] and compat.qualified([]) == []


def test_unknown_symbol_answered_with_a_none_slot_is_an_error_not_a_cached_none(
        stub_state: stubs.StubState) -> None:
    ib = stubs.mock_ib(stub_state)

    async def ib_async_style(*contracts: Any) -> list[Any]:
        return [None for _ in contracts]  # what ib_async 2.x returns for an unknown contract

    ib.qualifyContractsAsync.side_effect = ib_async_style
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(Config(IBKR_TIMEOUT=2.0, IBKR_REQUEST_TIMEOUT=2.0))
    try:
        assert api.connect()
        data = api.get_market_data("ZZZZ")
        assert "No security definition" in data["error"]
        assert "ZZZZ" not in api.market_service.stocks
        ib.reqMktData.assert_not_called()
    finally:
        api.close()


# --- market data only for qualified contracts (tickers keyed by hash = conId) ------------------

def test_require_con_id_refuses_an_unqualified_contract_before_anything_is_sent() -> None:
    with pytest.raises(ContractNotFound) as err:
        compat.require_con_id(compat.Stock("AAPL", "SMART", "USD"))
    assert err.value.code == 200
    compat.require_con_id(stubs.aapl_stock())  # qualified: fine
    compat.require_con_id(compat.Bag(symbol="SPY"))  # a BAG has no conId of its own
    compat.require_con_id(MagicMock())  # the seeds' MagicMock contracts pass


@pytest.mark.skipif(not compat.IS_IB_ASYNC, reason="ib_async behaviour")
def test_ib_async_keys_tickers_by_con_id_and_cannot_hash_an_unqualified_contract() -> None:
    a, b = stubs.aapl_stock(), stubs.aapl_stock()
    assert a is not b and hash(a) == hash(b)
    with pytest.raises(ValueError, match="conId"):
        hash(compat.Stock("AAPL", "SMART", "USD"))


# --- order statuses ----------------------------------------------------------------------------

def library_statuses() -> set[str]:
    cls = compat.OrderStatus
    return {v for k, v in vars(cls).items() if isinstance(v, str) and k[:1].isupper()
            and not k.endswith("States")}


def test_status_map_covers_every_status_of_the_loaded_library() -> None:
    assert library_statuses() <= set(compat.MAP_ORDER_STATUS)


def test_ib_async_only_statuses_keep_the_previous_status() -> None:
    assert {"ValidationError", "ApiUpdate"} <= set(compat.MAP_ORDER_STATUS)
    assert compat.contract_status("ValidationError", "Submitted") == "Submitted"
    assert compat.contract_status("ApiUpdate", "PreSubmitted") == "PreSubmitted"
    assert compat.contract_status("Filled", "Submitted") == "Filled"
    assert compat.contract_status("SomethingNew", "Submitted") == "SomethingNew"
    record = {"status": "Submitted", "filled": 0.0, "remaining": 2.0, "direction": "LONG"}
    now = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
    status = MagicMock(status="ValidationError", filled=0.0, remaining=2.0, avgFillPrice=0.0,
                       permId=0)
    translate.apply_order_status(record, status, now)
    assert record["status"] == "Submitted"


def test_inactive_is_done_on_both_libraries() -> None:
    assert "Inactive" in translate.TERMINAL_STATUSES
    assert set(compat.OrderStatus.DoneStates) <= translate.TERMINAL_STATUSES
    assert "ValidationError" not in translate.TERMINAL_STATUSES


# --- execution times ---------------------------------------------------------------------------

def test_execution_times_are_utc_whatever_zone_the_library_converted_them_to() -> None:
    ny = datetime(2026, 11, 18, 9, 30, 5, tzinfo=ZoneInfo("America/New_York"))
    fill = MagicMock()
    fill.execution = compat.Execution(execId="e1", time=ny, shares=2, price=1.1, side="BOT")
    row = translate.execution_row(fill)
    assert row["time"] == ny and row["time"].utcoffset() == timedelta(0)
    assert row["time"].isoformat() == "2026-11-18T14:30:05+00:00"
    naive = datetime(2026, 11, 18, 14, 30)
    assert compat.utc_time(naive) is naive and compat.utc_time("x") == "x"


# --- OptionComputation: read, never written (frozen dataclass in ib_async) ----------------------

def test_option_from_ticker_reads_the_librarys_option_computation() -> None:
    greeks = stubs.greeks(delta=0.6)
    assert isinstance(greeks, compat.OptionComputation)
    contract = stubs.option_contract("20261218", 150.0, "C")
    ticker = stubs.option_ticker(contract, modelGreeks=greeks)
    option = translate.option_from_ticker(ticker, contract, "AAPL")
    assert option is not None and option.delta == 0.6 and option.rho == 0.0
    if compat.IS_IB_ASYNC:
        with pytest.raises(dataclasses.FrozenInstanceError):
            greeks.delta = 0.1  # type: ignore[misc]


# --- 202 "Order Canceled": INFO on both libraries ------------------------------------------------

def test_order_cancelled_202_is_not_an_error_log(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger(f"{compat.LIBRARY}.wrapper")
    with caplog.at_level(logging.INFO, logger=logger.name):
        if compat.IS_IB_ASYNC:
            logger.error("Error 202, reqId 5: Order Canceled - reason:")
        else:
            logger.info("Warning 202, reqId 5: Order Canceled - reason:")
        logger.error("Error 201, reqId 6: Order rejected")
    levels = {r.getMessage().split(",")[0]: r.levelname for r in caplog.records}
    assert levels[("Error" if compat.IS_IB_ASYNC else "Warning") + " 202"] == "INFO"
    assert levels["Error 201"] == "ERROR"


# --- placeOrder: ib_async clears order.volatility ---------------------------------------------

def test_place_order_sends_volatility_unset_on_both_libraries() -> None:
    order = compat.LimitOrder("BUY", 1, 1.35)
    client = compat.Client(wrapper=None)
    client._serverVersion, client.connState = 176, compat.Client.CONNECTED
    sent: list[str] = []
    client.sendMsg = sent.append
    client.placeOrder(7, stubs.aapl_stock(), order)
    assert translate.finite(order.volatility) is None  # UNSET_DOUBLE (ib_insync) or None
    if compat.IS_IB_ASYNC:
        assert order.volatility is None  # ib_async writes it on the caller's Order
    fields = sent[0].split("\0")
    assert str(translate.UNSET_DOUBLE) not in fields  # never sent as a value


# --- a placement refused with one of ib_async's "warning" codes ---------------------------------

def test_new_order_refused_with_321_is_rejected_even_as_validation_error(
        stub_state: stubs.StubState) -> None:
    """ib_async treats 321 ("Error validating request") as a warning: the trade becomes
    ``ValidationError`` and stays active. For an order IB has not accepted yet (PendingSubmit)
    it is a refusal: the placement fails and the order is Inactive, as on ib_insync."""
    stub_state.on_place = "validation_error"
    stub_state.reject_code = 321
    stub_state.reject_message = "Error validating request.-'bN' : cause - bad field"
    ib = stubs.mock_ib(stub_state)
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(Config(IBKR_TIMEOUT=2.0, IBKR_REQUEST_TIMEOUT=5.0))
    try:
        assert api.connect()
        with pytest.raises(RuntimeError, match="Order placement failed") as info:
            api.place_order("AAPL", "LONG", 1, stubs.aapl_bull_call(), "LIMIT", 1.0)
        assert "321" in str(info.value)
        record = next(iter(api.orders.values()))
        assert record["status"] == "Inactive" and "validating" in record["error"]
    finally:
        api.close()


def test_batched_qualification_drops_ib_async_none_slots() -> None:
    """chain_fallback.qualify on ib_async's answer shape: qualified contracts in place, None
    for the others (ib_insync leaves them out)."""
    import asyncio

    from src.brokers import chain_fallback
    from src.brokers.pacing import BulkPacer

    good = stubs.option_contract("20261218", 150.0, "C")
    bad = compat.Option("AAPL", "20261218", 999.0, "C", exchange="SMART", currency="USD")
    ib = MagicMock()

    async def qualify_async(*contracts: Any) -> list[Any]:
        return [c if c is good else None for c in contracts]

    ib.qualifyContractsAsync.side_effect = qualify_async
    result = asyncio.run(chain_fallback.qualify(ib, BulkPacer(lambda: 45), [bad, good], 5.0))
    assert result == [good]


def test_extras_are_spelled_as_every_pip_matches_them() -> None:
    """pip < 23.3 (Python 3.11's own) compares an extra verbatim with the metadata's normalized
    name: "[ib_insync]" was silently ignored there and installed no client library at all."""
    import re
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert {"ib-insync", "ib-async"} <= set(extras)
    assert all(name == re.sub(r"[-_.]+", "-", name).lower() for name in extras)
    for command in compat.INSTALL.values():
        extra = command.split("[", 1)[1].split("]", 1)[0]
        assert extra in extras
