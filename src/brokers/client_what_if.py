"""``IBKRClient.what_if(contract, order)``: IB's margin and commission preview (a mixin).

IB answers an order sent with ``whatIf`` set by an ``openOrder`` whose ``OrderState`` carries
the initial / maintenance margin and equity with loan before, change and after, and the
commission estimate (``commission``, ``minCommission``, ``maxCommission``); nothing is placed.
Both client libraries' ``whatIfOrderAsync`` end the request with ``[]`` when the gateway answers
with an error (201 "Order rejected", 321 …) and keep the code to themselves: this mixin sends
the same request itself (``wrapper.startReq`` + ``client.placeOrder``, as the libraries do) so
that it knows the request id, keeps the error of that id, and raises it at once.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from src.brokers.client_types import WhatIfResult
from src.brokers.errors import OrderRejected, RequestTimeout, is_warning
from src.brokers.settings import BrokerSettings
from src.utils.logger import log_info

T = TypeVar("T")


class WhatIfRequests:
    """``what_if``; mixed into ``IBKRClient``, which provides the attributes below."""

    settings: BrokerSettings
    account_id: str
    ib: Any

    def _init_what_if(self) -> None:
        # request id -> the gateway's error for it (None while none came); loop thread only
        self._what_if_errors: dict[int, tuple[int, str] | None] = {}

    # provided by IBKRClient / ClientRequests
    def run(self, coro_fn: Callable[[], Coroutine[Any, Any, T]],
            timeout: float | None = None) -> T:
        raise NotImplementedError

    async def abortable(self, awaitable: Awaitable[T]) -> T:
        raise NotImplementedError

    def _require_connection(self) -> None:
        raise NotImplementedError

    def _timeout(self, factor: float = 1.0) -> float:
        raise NotImplementedError

    def what_if(self, contract: Any, order: Any) -> WhatIfResult:
        """The margin impact and commission of ``order`` for ``contract`` (qualified), without
        placing it. ``NotConnected`` before sending, ``OrderRejected`` when the gateway refuses
        the preview, ``RequestTimeout`` when it does not answer. The caller's objects are not
        modified."""
        self._require_connection()
        mine, sent = copy.deepcopy(contract), copy.copy(order)
        result = self.run(lambda: self._what_if(mine, sent), timeout=self._timeout())
        log_info(f"What-if {getattr(sent, 'action', '?')} {getattr(sent, 'totalQuantity', '?')} "
                 f"{getattr(mine, 'symbol', '?')}: initial margin change "
                 f"{result.init_margin_change}, commission {result.commission}")
        return result

    async def _what_if(self, contract: Any, order: Any) -> WhatIfResult:
        if not getattr(order, "account", "") and self.account_id:
            order.account = self.account_id
        order.whatIf = True
        ib = self.ib
        req_id = int(ib.client.getReqId())
        future = ib.wrapper.startReq(req_id, contract)
        self._what_if_errors[req_id] = None
        try:
            ib.client.placeOrder(req_id, contract, order)
            answer = await asyncio.wait_for(self.abortable(future),
                                            self.settings.request_timeout)
        except TimeoutError:
            raise RequestTimeout(f"what-if order {req_id}: no answer within "
                                 f"{self.settings.request_timeout:g}s") from None
        finally:
            error = self._what_if_errors.pop(req_id, None)
        if error is not None:
            code, message = error
            raise OrderRejected(f"what-if refused: {message} (IB error {code})", code)
        if not hasattr(answer, "initMarginChange"):
            raise OrderRejected(f"what-if order {req_id}: the gateway sent no margin figures")
        return WhatIfResult.from_order_state(answer)

    def _what_if_error(self, req_id: int, code: int, message: str) -> bool:
        """An IB error for a what-if request in flight: kept for it (loop thread)."""
        if req_id not in self._what_if_errors or is_warning(code):
            return False
        self._what_if_errors[req_id] = (code, message)
        return True
