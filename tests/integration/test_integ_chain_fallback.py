"""Option chain fallback against the simulated gateway: wildcard contract-details requests
refused (no answer, error 321) or truncated for a symbol; the chain is then built from the
secdef expirations and strikes, qualified in one batched request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from integ_support import ACCOUNT, LATENCY_MS


@pytest.fixture(scope="module")
def gateway() -> Iterator[Any]:
    """A gateway whose prices stand still (no random-walk step during the module), so two
    chains asked one after the other centre on the same strikes."""
    from src.simulator import SimulatedGateway

    with SimulatedGateway(port=0, seed=1, latency_ms=LATENCY_MS, accounts=[ACCOUNT],
                          pacing=True, step_seconds=3600.0) as gw:
        yield gw

def _keys(options: list[Any]) -> set[tuple[Any, str, float]]:
    return {(o.expiration, o.option_type, o.strike) for o in options}


def _check_chain(options: list[Any], expected: list[Any]) -> None:
    """The fallback chain lists the same options as the wildcard one, quoted by the gateway."""
    assert len(options) == len(expected) == 48
    assert _keys(options) == _keys(expected)
    assert all(0 < o.bid <= o.ask and o.implied_volatility > 0 and o.delta != 0
               for o in options)


@pytest.fixture
def expected(make_api: Any) -> list[Any]:
    """The AAPL chain as the gateway lists it with working wildcards (another adapter)."""
    return make_api().get_option_chain("AAPL")


@pytest.fixture
def refuse(gateway: Any) -> Iterator[Any]:
    refused: list[str] = []

    def _refuse(symbol: str, mode: str) -> None:
        refused.append(symbol)
        gateway.refuse_wildcard_details(symbol, mode)

    yield _refuse
    for symbol in refused:
        gateway.refuse_wildcard_details(symbol, None)


def _option_details(gateway: Any, api: Any) -> tuple[int, int]:
    """(wildcard, fully specified) option reqContractDetails (9) requests of this client."""
    wild = full = 0
    for cid, msg, fields in gateway.requests:
        if cid == api.test_client_id and msg == 9 and "OPT" in fields:
            strike = fields[fields.index("OPT") + 2]
            if strike in ("", "0", "0.0"):
                wild += 1
            else:
                full += 1
    return wild, full


@pytest.mark.parametrize("mode", ["empty", "truncate"])
def test_chain_without_a_usable_wildcard_answer(gateway: Any, make_api: Any, refuse: Any,
                                                expected: list[Any], mode: str) -> None:
    refuse("AAPL", mode)
    api = make_api()
    _check_chain(api.get_option_chain("AAPL"), expected)
    wild, full = _option_details(gateway, api)
    assert wild == 4  # one a expiration was asked, then the fallback qualified the rest
    assert 0 < full <= 4 * 6 * 2
    if mode == "empty":
        assert full == 4 * 6 * 2


@pytest.mark.allow_ib_errors(321)
def test_chain_when_the_wildcard_request_is_an_error(gateway: Any, make_api: Any, refuse: Any,
                                                     expected: list[Any]) -> None:
    refuse("AAPL", "error")
    api = make_api()
    _check_chain(api.get_option_chain("AAPL"), expected)
    assert _option_details(gateway, api) == (4, 4 * 6 * 2)


def test_switch_heals(gateway: Any, make_api: Any, refuse: Any, expected: list[Any]) -> None:
    refuse("AAPL", "empty")
    gateway.refuse_wildcard_details("AAPL", None)
    api = make_api()
    _check_chain(api.get_option_chain("AAPL"), expected)
    assert _option_details(gateway, api) == (4, 0)  # the wildcards answered: no fallback


def test_unknown_mode_is_refused(gateway: Any) -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        gateway.refuse_wildcard_details("AAPL", "sometimes")
