"""IBKRClientProtocol: what a gateway client offers (``IBKRClient`` and ``MockIBKRClient``).

``tests/unit/test_mock_ib_client.py`` checks that both classes have every member of this
protocol with the same signature, so code written against one runs against the other.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from src.brokers.client_types import (
    AccountValue,
    ConnectionState,
    ContractDetailsInfo,
    Execution,
    OrderResult,
    Position,
    Quote,
    WhatIfResult,
)
from src.brokers.errors import BrokerError
from src.brokers.metrics import AdapterMetrics
from src.brokers.settings import BrokerSettings


@runtime_checkable
class IBKRClientProtocol(Protocol):
    """A gateway session: connection, orders, market data, account — typed, thread-safe."""

    settings: BrokerSettings
    account_id: str
    last_error: BrokerError | None
    metrics: AdapterMetrics

    @property
    def state(self) -> ConnectionState: ...

    def connect(self) -> bool: ...

    def disconnect(self) -> None: ...

    def close(self) -> None: ...

    def is_connected(self) -> bool: ...

    def is_live_account(self) -> bool: ...

    def qualify(self, *contracts: Any) -> list[Any]: ...

    def contract_details(self, contract: Any) -> list[ContractDetailsInfo]: ...

    def place_order(self, contract: Any, order: Any) -> OrderResult: ...

    def what_if(self, contract: Any, order: Any) -> WhatIfResult: ...

    def cancel_order(self, order_id: int) -> OrderResult: ...

    def order_state(self, order_id: int) -> OrderResult: ...

    def request_market_data(self, contract: Any) -> Quote: ...

    def cancel_market_data(self, contract: Any) -> bool: ...

    def executions(self) -> list[Execution]: ...

    def positions(self) -> list[Position]: ...

    def account_values(self) -> list[AccountValue]: ...
