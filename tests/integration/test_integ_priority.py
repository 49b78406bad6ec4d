"""Order traffic is not queued behind bulk market-data traffic (BulkPacer's reserve).

ib_insync sends every message through one FIFO throttle. Without the reserve, an order placed
while a large option chain is being quoted waits behind every queued quote request; with it,
the order reaches the gateway while the chain is still sending. Asserted on the order of the
messages the gateway received, not on timings.
"""

from __future__ import annotations

import threading
from typing import Any

from integ_support import bull_call, wait_until

PLACE_ORDER, REQ_MKT_DATA = 3, 1


def test_an_order_overtakes_a_bulk_option_chain_in_flight(gateway: Any, make_api: Any) -> None:
    api = make_api(CHAIN_EXPIRATIONS=6, CHAIN_STRIKES=8, CHAIN_STREAM_LINES=0)  # 96 snapshots
    cid = api.test_client_id
    spread = bull_call(gateway)
    api.get_market_data("AAPL")  # the underlying's stream: not part of the bulk below
    start = len(gateway.requests)
    chain: list[Any] = []
    worker = threading.Thread(target=lambda: chain.extend(api.get_option_chain("AAPL")))
    worker.start()

    def quotes_sent() -> int:
        return sum(1 for r in gateway.requests[start:] if r[0] == cid and r[1] == REQ_MKT_DATA)

    assert wait_until(lambda: quotes_sent() >= 45, timeout=10.0)  # the throttle window is full
    order_id = api.place_order("AAPL", "LONG", 1, spread, "LIMIT", 0.05)
    worker.join(timeout=30.0)
    assert not worker.is_alive() and len(chain) == 96
    mine = [r for r in gateway.requests[start:] if r[0] == cid]
    placed = next(i for i, r in enumerate(mine) if r[1] == PLACE_ORDER)
    later_quotes = [r for r in mine[placed:] if r[1] == REQ_MKT_DATA]
    assert len(later_quotes) >= 10, "the order waited behind the chain's quote requests"
    assert api.get_order_status(order_id)["status"] in ("Submitted", "PreSubmitted")
    assert api.cancel_order(order_id) is True
