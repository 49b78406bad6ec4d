"""Option chain fallback: when the wildcard contract-details request per expiration answers
nothing usable (empty, an error, a truncated answer), the chain is built from the secdef
expirations and strikes, qualified in ONE batched qualifyContracts request (stub IB)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock, patch

import pytest
import stubs

from src.app.config import Config
from src.brokers import chain_fallback
from src.brokers.ibkr_ib_insync import IBKRIBInsyncApi

Key = tuple[Any, str, float]


def make_api(state: stubs.StubState) -> tuple[IBKRIBInsyncApi, MagicMock]:
    ib = stubs.mock_ib(state)
    config = Config(IBKR_TIMEOUT=2.0, IBKR_REQUEST_TIMEOUT=2.0)
    with patch("src.brokers.ibkr_ib_insync.IB", return_value=ib):
        api = IBKRIBInsyncApi(config)
    assert api.connect()
    return api, ib


@pytest.fixture
def state() -> stubs.StubState:
    return stubs.StubState()


@pytest.fixture
def adapter(state: stubs.StubState) -> Iterator[tuple[IBKRIBInsyncApi, MagicMock]]:
    api, ib = make_api(state)
    yield api, ib
    api.close()


def keys(options: list[Any]) -> set[Key]:
    return {(o.expiration, o.option_type, o.strike) for o in options}


def option_batches(ib: MagicMock) -> list[list[Any]]:
    """The option contracts of each qualifyContracts request (stock qualifications left out)."""
    return [list(c.args) for c in ib.qualifyContractsAsync.await_args_list
            if c.args and c.args[0].secType == "OPT"]


def full_chain() -> set[Key]:
    api, _ = make_api(stubs.StubState())
    try:
        return keys(api.get_option_chain("AAPL"))
    finally:
        api.close()


def test_full_wildcard_answer_needs_no_fallback(adapter: tuple[IBKRIBInsyncApi, MagicMock]
                                                ) -> None:
    api, ib = adapter
    options = api.get_option_chain("AAPL")
    assert len(options) == 48  # 4 expirations x 6 strikes x 2 rights
    assert option_batches(ib) == []


@pytest.mark.parametrize("mode", ["empty", "error"])
def test_refused_wildcard_falls_back_to_one_batched_qualification(
        state: stubs.StubState, mode: str) -> None:
    expected = full_chain()
    state.wildcard = mode
    api, ib = make_api(state)
    try:
        options = api.get_option_chain("AAPL")
        assert keys(options) == expected and len(options) == 48
        batches = option_batches(ib)
        assert len(batches) == 1 and len(batches[0]) == 48  # ONE request for all expirations
        first = batches[0][0]
        assert (first.exchange, first.currency, first.tradingClass, first.multiplier) == (
            "SMART", "USD", "AAPL", "100")
        assert all(o.bid > 0 and o.delta != 0 for o in options)  # quoted like any chain
    finally:
        api.close()


def test_truncated_wildcard_answer_qualifies_only_the_missing_strikes(
        state: stubs.StubState) -> None:
    expected = full_chain()
    state.wildcard = "truncate"  # the answer lists 140, 145, 147.5 only
    api, ib = make_api(state)
    try:
        assert keys(api.get_option_chain("AAPL")) == expected
        (batch,) = option_batches(ib)
        missing = {k[2] for k in expected} - {140.0, 145.0, 147.5}
        assert missing and {c.strike for c in batch} == missing
        assert len(batch) == 4 * len(missing) * 2
    finally:
        api.close()


def test_contracts_that_do_not_qualify_are_dropped_and_not_asked_again(
        state: stubs.StubState) -> None:
    state.wildcard = "empty"
    state.unqualifiable = {150.0}
    api, ib = make_api(state)
    try:
        options = api.get_option_chain("AAPL")
        assert options and 150.0 not in {o.strike for o in options}
        assert len(options) == 40  # 5 strikes of the 6 wanted, 4 expirations, 2 rights
        again = api.get_option_chain("AAPL")
        assert keys(again) == keys(options)
        assert len(option_batches(ib)) == 1  # the day's answer is kept: nothing re-qualified
    finally:
        api.close()


def test_the_batch_takes_one_pacer_slot_per_contract(state: stubs.StubState) -> None:
    state.wildcard = "empty"
    api, ib = make_api(state)
    try:
        pacer = api.market_service.pacer
        taken: list[int] = []
        slot = pacer.slot

        async def counting_slot() -> None:
            taken.append(ib.qualifyContractsAsync.await_count)
            await slot()

        pacer.slot = counting_slot  # type: ignore[method-assign]
        api.get_option_chain("AAPL")
        batch_at = [c.args[0].secType for c in ib.qualifyContractsAsync.await_args_list]
        opt_call = batch_at.index("OPT")
        # 48 slots taken before the batched request went out (+4 wildcard requests, + quotes)
        assert sum(1 for n in taken if n == opt_call) >= 48
    finally:
        api.close()


def test_failed_batch_keeps_what_the_wildcard_gave(state: stubs.StubState) -> None:
    state.wildcard = "truncate"
    api, ib = make_api(state)
    try:
        original = ib.qualifyContractsAsync.side_effect

        async def qualify(*contracts: Any) -> Any:
            if contracts and contracts[0].secType == "OPT":
                raise RuntimeError("gateway busy")
            return await original(*contracts)

        ib.qualifyContractsAsync.side_effect = qualify
        options = api.get_option_chain("AAPL")
        assert options and {o.strike for o in options} <= {140.0, 145.0, 147.5}
    finally:
        api.close()


def test_missing_pairs_ignore_junk_listings() -> None:
    junk = MagicMock()  # a test double's detail: right/strike are mocks
    real = MagicMock(right="C", strike=150.0)
    assert chain_fallback.missing_pairs([junk, real], [150.0]) == [(150.0, "P")]
    assert chain_fallback.usable([junk, real]) == [real]
    assert chain_fallback.text_field(MagicMock()) == "" and chain_fallback.text_field("X") == "X"
