"""Round trip against a running simulated gateway (``ibkr-sim --port 4002``) with plain
ib_insync: connect, quote AAPL, place a resting limit order, cancel it.

    python examples/sim_roundtrip.py --port 4002
"""

from __future__ import annotations

import argparse
import sys

from src.brokers.compat import IB, LimitOrder, Stock


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4002)
    p.add_argument("--client-id", type=int, default=11)
    args = p.parse_args(argv)

    ib = IB()
    ib.connect(args.host, args.port, clientId=args.client_id, timeout=5)
    try:
        print("accounts:", ib.managedAccounts())
        aapl = Stock("AAPL", "SMART", "USD")
        ib.qualifyContracts(aapl)
        [ticker] = ib.reqTickers(aapl)
        print(f"AAPL conId={aapl.conId} bid={ticker.bid} ask={ticker.ask} last={ticker.last}")
        if not ticker.bid > 0:
            print("no quote", file=sys.stderr)
            return 1

        limit = round(ticker.bid * 0.9, 2)  # far below the market: rests
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 1, limit))
        ib.sleep(0.2)
        print(f"placed orderId={trade.order.orderId} status={trade.orderStatus.status}")
        if trade.orderStatus.status not in ("PreSubmitted", "Submitted"):
            print("order did not rest", file=sys.stderr)
            return 1

        ib.cancelOrder(trade.order)
        for _ in range(50):
            if trade.orderStatus.status == "Cancelled":
                break
            ib.sleep(0.05)
        print(f"cancelled status={trade.orderStatus.status}")
        return 0 if trade.orderStatus.status == "Cancelled" else 1
    finally:
        ib.disconnect()


if __name__ == "__main__":
    raise SystemExit(main())
