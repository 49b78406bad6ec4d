"""Helpers for the integration tests (builders, thread runner, gateway look-ups)."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Callable
from datetime import date
from typing import Any

from src.models.option import Option, OptionSpread

ACCOUNT = "DU1234567"
# Optional: run the suite against a slower gateway (e.g. INTEG_GATEWAY_LATENCY_MS=30).
LATENCY_MS = float(os.environ.get("INTEG_GATEWAY_LATENCY_MS", "0"))
_client_ids = itertools.count(100)


def next_client_id() -> int:
    """A client id no other adapter of this test run uses."""
    return next(_client_ids)


def api_config(gw: Any, **overrides: Any) -> Any:
    from src.app.config import Config

    settings: dict[str, Any] = {
        "IBKR_HOST": "127.0.0.1",
        "IBKR_PORT": gw.port,
        "IBKR_CLIENT_ID": next_client_id(),
        "IBKR_TIMEOUT": 5.0,
        "IBKR_REQUEST_TIMEOUT": 5.0,
        "IBKR_AUTO_RECONNECT": False,
    }
    settings.update(overrides)
    return Config().replace(**settings)
AAPL_CON_ID = 265598
MSFT_CON_ID = 272093
UNKNOWN_SYMBOL = "ZZZNOPE"


from polling import wait_until  # noqa: E402 - re-exported for the integration tests


def run_in_thread(fn: Callable[..., Any], *args: Any, timeout: float = 20.0, **kwargs: Any) -> Any:
    """Call ``fn`` on a fresh non-main thread that has NO asyncio event loop; return its result
    (or re-raise its exception). Proves a method works where ib_insync alone would fail with
    "There is no current event loop in thread"."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            try:
                asyncio.get_event_loop()
                box["had_loop"] = True
            except RuntimeError:
                box["had_loop"] = False
            box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            box["error"] = e

    t = threading.Thread(target=target, name=f"no-loop-{getattr(fn, '__name__', 'call')}",
                         daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"{getattr(fn, '__name__', fn)} did not return within {timeout}s "
                             "on a non-main thread (deadlock?)")
    assert box.get("had_loop") is False, "the worker thread unexpectedly had an event loop"
    if "error" in box:
        raise box["error"]
    return box["result"]


def _expiry_date(expiry: str) -> date:
    return date(int(expiry[:4]), int(expiry[4:6]), int(expiry[6:]))


def chain_info(gw: Any, symbol: str = "AAPL") -> tuple[list[str], list[float], float]:
    """(expirations, strikes, current underlying price) from the gateway's market."""
    chain = gw.call(gw.market.chain, symbol)
    price = gw.call(gw.market.underlying_price, symbol)
    return list(chain.expirations), list(chain.strikes), float(price)


def option_con_id(gw: Any, symbol: str, expiry: str, strike: float, right: str) -> int:
    found = gw.call(lambda: gw.market.match(symbol=symbol, sec_type="OPT", expiry=expiry,
                                            strike=strike, right=right))
    assert len(found) == 1, f"no unique {symbol} {expiry} {strike} {right} in the gateway"
    return int(found[0].con_id)


def _leg(symbol: str, expiry: str, strike: float, option_type: str) -> Option:
    return Option(symbol=f"{symbol} {expiry} {strike:g}{option_type[0].upper()}",
                  underlying=symbol, option_type=option_type,  # type: ignore[arg-type]
                  strike=strike, expiration=_expiry_date(expiry), bid=1.0, ask=1.1, last=1.05)


def atm_strike(strikes: list[float], price: float) -> float:
    return min(strikes, key=lambda k: abs(k - price))


def bull_call(gw: Any, symbol: str = "AAPL", expiry_index: int = 0) -> OptionSpread:
    """Long the ATM call, short the next strike up."""
    exps, strikes, price = chain_info(gw, symbol)
    lo = atm_strike(strikes, price)
    hi = strikes[strikes.index(lo) + 1]
    exp = exps[expiry_index]
    return OptionSpread(symbol=symbol, spread_type="BULL_CALL",
                        long_leg=_leg(symbol, exp, lo, "call"),
                        short_leg=_leg(symbol, exp, hi, "call"))


def bear_put(gw: Any, symbol: str = "AAPL", expiry_index: int = 0) -> OptionSpread:
    """Long the ATM put, short the next strike down."""
    exps, strikes, price = chain_info(gw, symbol)
    hi = atm_strike(strikes, price)
    lo = strikes[strikes.index(hi) - 1]
    exp = exps[expiry_index]
    return OptionSpread(symbol=symbol, spread_type="BEAR_PUT",
                        long_leg=_leg(symbol, exp, hi, "put"),
                        short_leg=_leg(symbol, exp, lo, "put"))


def sim_order(gw: Any, client_id: int, order_id: int | str) -> Any:
    """The gateway's SimOrder for (client id, order id), or None."""
    oid = int(order_id)

    def find() -> Any:
        for o in gw.engine.orders.values():
            if o.client_id == client_id and o.request.order_id == oid:
                return o
        return None

    return gw.call(find)


def wait_sim_order(gw: Any, client_id: int, order_id: int | str, timeout: float = 5.0) -> Any:
    return wait_until(lambda: sim_order(gw, client_id, order_id), timeout,
                      what=f"order {order_id} of client {client_id} at the gateway")


def sim_status(gw: Any, client_id: int, order_id: int | str) -> str | None:
    o = sim_order(gw, client_id, order_id)
    return None if o is None else str(o.status)


def leg_actions(gw: Any, sim: Any) -> dict[int, str]:
    """conId → action of the BAG's combo legs as the gateway received them."""
    return {leg.con_id: leg.action for leg in sim.request.contract.combo_legs}


def set_market_open(gw: Any, value: bool) -> None:
    def _set() -> None:
        gw.engine.market_open = value

    gw.call(_set)


def round_trip(api: Any) -> None:
    """A request the gateway answers (reqCurrentTime) on the adapter's own connection: when it
    returns, the gateway has processed everything the adapter sent before it (one socket, in
    order). The barrier for negative assertions, instead of a fixed sleep."""
    answer = api._loop.run(lambda: api.ib.reqCurrentTimeAsync(), timeout=10.0)
    assert answer is not None


def market_steps(gw: Any, n: int = 2, timeout: float = 10.0) -> None:
    """Wait until the gateway's market has taken ``n`` more random-walk steps: each step runs
    the fill check of resting orders and pushes ticks on the gateway's loop, so afterwards a
    resting order has had ``n`` chances to fill (no fixed sleep)."""
    start = gw.call(lambda: gw.market.version)
    wait_until(lambda: gw.call(lambda: gw.market.version) >= start + n, timeout,
               what=f"{n} market steps")
