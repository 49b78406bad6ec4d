"""Every broker satisfies the BrokerApi protocol — the placeholder, the adapter and
ClientBroker (over any IBKRClientProtocol; here on MockIBKRClient): every member, every
signature (names, defaults, kinds), checked with ``inspect`` — the host application calls them
interchangeably."""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Iterator
from typing import Any
from unittest.mock import MagicMock

import pytest

import src.brokers as brokers
from src.app.config import Config
from src.brokers.base import BrokerApi
from src.brokers.client_broker import ClientBroker
from src.brokers.ibkr_api import IBKRApi
from src.brokers.mock_client import MockIBKRClient
from src.brokers.settings import BrokerSettings

PROTOCOL_METHODS = sorted(
    name for name, value in vars(BrokerApi).items()
    if callable(value) and not name.startswith("_"))
PROTOCOL_ATTRIBUTES = sorted(BrokerApi.__annotations__)


def _adapter_class() -> type:
    try:
        module = importlib.import_module("src.brokers.ibkr_ib_insync")
    except ImportError as e:  # pragma: no cover - only while the adapter is being written
        pytest.skip(f"src.brokers.ibkr_ib_insync not importable yet: {e}")
    return module.IBKRIBInsyncApi  # type: ignore[no-any-return]


@pytest.fixture(params=["IBKRApi", "IBKRIBInsyncApi", "ClientBroker"])
def broker_class(request: pytest.FixtureRequest) -> type:
    if request.param == "ClientBroker":
        return ClientBroker
    return IBKRApi if request.param == "IBKRApi" else _adapter_class()


@pytest.fixture
def broker(broker_class: type) -> Iterator[Any]:
    config = MagicMock(spec=Config)
    instance = (ClientBroker(MockIBKRClient(BrokerSettings.from_config(config)), config)
                if broker_class is ClientBroker else broker_class(config))
    yield instance
    for name in ("close", "disconnect"):
        closer = getattr(instance, name, None)
        if callable(closer):
            closer()
            break


def test_the_protocol_lists_the_contract() -> None:
    assert sorted([
        "connect", "disconnect", "handle_callbacks", "get_next_order_id", "place_order",
        "get_order_status", "cancel_order", "get_market_data", "get_option_chain",
        "get_account_summary", "get_positions"]) == PROTOCOL_METHODS
    assert sorted(
        ["connected", "account_id", "orders", "positions", "lock"]) == PROTOCOL_ATTRIBUTES


def test_instance_is_a_broker_api(broker: Any) -> None:
    assert isinstance(broker, BrokerApi)


def test_attributes_have_the_contract_types(broker: Any) -> None:
    assert broker.connected is False
    assert isinstance(broker.account_id, str)
    assert isinstance(broker.orders, dict)
    assert isinstance(broker.positions, dict)
    assert isinstance(broker.lock, (type(threading.Lock()), type(threading.RLock())))
    with broker.lock:  # usable as a context manager
        pass


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_method_signature_matches_the_protocol(broker_class: type, name: str) -> None:
    implementation = getattr(broker_class, name, None)
    assert callable(implementation), f"{broker_class.__name__}.{name} is missing"
    wanted = inspect.signature(getattr(BrokerApi, name)).parameters
    actual = inspect.signature(implementation).parameters
    for pname, p in wanted.items():
        assert pname in actual, f"{broker_class.__name__}.{name} lacks parameter {pname!r}"
        q = actual[pname]
        assert q.kind == p.kind, f"{name}({pname}): kind {q.kind} != {p.kind}"
        assert q.default == p.default, f"{name}({pname}): default {q.default!r} != {p.default!r}"
    assert list(actual)[:len(wanted)] == list(wanted), f"{name}: parameter order differs"
    for pname, q in list(actual.items())[len(wanted):]:
        assert q.default is not inspect.Parameter.empty or q.kind in (
            inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD), (
            f"{broker_class.__name__}.{name}: extra parameter {pname!r} needs a default")


def test_place_order_accepts_order_ref_keyword(broker_class: type) -> None:
    p = inspect.signature(broker_class.place_order).parameters["order_ref"]
    assert p.default is None


def test_factory_returns_each_implementation() -> None:
    adapter = _adapter_class()
    config = MagicMock(spec=Config)
    assert type(brokers.get_broker_api(config, use_ib_insync=False)) is IBKRApi
    made = [brokers.get_broker_api(config, use_ib_insync=True), brokers.get_broker_api(config)]
    try:
        assert [type(b) for b in made] == [adapter, adapter]  # True is the default
    finally:
        for b in made:
            getattr(b, "close", b.disconnect)()


def test_package_exports_the_contract_names() -> None:
    assert set(brokers.__all__) >= {"IBKRApi", "IBKRIBInsyncApi", "get_broker_api", "BrokerApi"}
    from src.brokers import IBKRApi as Placeholder

    assert Placeholder is IBKRApi
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        brokers.Nope  # noqa: B018


def test_package_exports_the_adapter_lazily() -> None:
    adapter = _adapter_class()
    from src.brokers import IBKRIBInsyncApi

    assert IBKRIBInsyncApi is adapter
