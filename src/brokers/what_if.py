"""``what_if_order``: the margin and commission of a spread order, without placing it.

An addition to the drop-in contract (docs/contract.md), offered by both brokers with the
arguments of ``place_order``: ``what_if_order(symbol, direction, contracts, option_spread,
price_type="LIMIT", limit_price=None) -> dict``. The adapter asks IB (a ``whatIf`` order for the
same BAG ``place_order`` would send, :meth:`IBKRClient.what_if`); the placeholder estimates.
The dict: ``symbol`` and the :class:`~src.brokers.client_types.WhatIfResult` figures
(``init_margin_before/change/after``, ``maint_margin_*``, ``equity_with_loan_*``,
``commission``, ``min_commission``, ``max_commission``, ``commission_currency``, ``warning``);
on trouble (not connected, refused by the gateway, no answer) ``symbol`` and ``error``, logged.
Bad arguments raise ``ValueError`` (``InvalidOrder``) as ``place_order`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from src.brokers import translate, validation
from src.brokers.client_types import WhatIfResult
from src.utils.logger import log_error

if TYPE_CHECKING:
    from src.brokers.ib_client import IBKRClient
    from src.brokers.orders_service import OrderService
    from src.models.option import OptionSpread


async def preview_spread(client: IBKRClient, service: OrderService, symbol: str,
                         direction: str, contracts: int, spread: OptionSpread, price_type: str,
                         limit_price: float | None) -> WhatIfResult:
    """The what-if of the BAG order ``place_order`` would send (loop thread)."""
    legs = translate.leg_specs(spread, direction)
    con_ids = await service._qualify_legs(legs)
    bag = translate.build_bag(symbol, zip(legs, con_ids, strict=True))
    order = translate.build_order(price_type, contracts, limit_price, "", client.account_id,
                                  direction)
    return await client._what_if(bag, order)


class WhatIfOrders:
    """``what_if_order`` of ``IBKRIBInsyncApi`` (a mixin: the facade has the attributes)."""

    client: IBKRClient
    order_service: OrderService
    max_contracts: int
    request_timeout: float

    def what_if_order(self, symbol: str, direction: str, contracts: int,
                      option_spread: OptionSpread, price_type: str = "LIMIT",
                      limit_price: float | None = None) -> dict[str, Any]:
        """The margin impact and commission of this order (see the module doc)."""
        sym, dirn, qty, spread, kind, price, _ = validation.order_args(
            symbol, direction, contracts, option_spread, price_type, limit_price, None,
            self.max_contracts)
        client = self.client
        if not client.connected:
            return {"symbol": sym, "error": "Not connected to IBKR"}
        try:
            result = client.run(lambda: preview_spread(client, self.order_service, sym, dirn,
                                                       qty, spread, kind, price),
                                timeout=2 * self.request_timeout + 5)
        except Exception as exc:  # noqa: BLE001 - the contract's shape: an error dict
            why = str(exc).removeprefix("Order placement failed: ")
            log_error(f"What-if for {sym} failed: {why}")
            return {"symbol": sym, "error": why}
        return {"symbol": sym, **result.as_dict()}
