"""``python -m src.app --demo``: the whole application against a simulated IB gateway.

With ``--broker sim`` (the default) it starts the embedded TWS-protocol gateway in-process and
runs the Trader with the real ib_insync adapter against it; with ``--broker placeholder`` the same
script runs against the in-memory ``IBKRApi``. It prints the connection, a quote, the option chain,
a bull call spread bought at MARKET and filled, a LIMIT spread far from the market placed and
cancelled, the positions and the account summary. Exit code 0 only if every step passed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from src.app.config import Config
from src.app.executor import TradeRecord
from src.app.trader import Trader
from src.brokers.base import ACCOUNT_FIELDS, FINAL_STATUSES
from src.utils.clock import SYSTEM_CLOCK, Clock
from src.utils.logger import mask_account

WAIT = 15.0  # seconds any single step may wait for the gateway
REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned text table (numbers right-aligned)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    numeric = [all(_is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _is_number(value: Any) -> bool:
    if value is None or isinstance(value, (int, float)):
        return True
    try:
        float(str(value).replace(",", ""))
    except ValueError:
        return False
    return True


def _qty(value: Any) -> Any:
    """Quantities as ints when integral (IB reports them as floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _greek(value: float) -> str:
    return f"{value:.4f}"


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT,
               poll: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


class Demo:
    """The demo's steps, run in order against one Trader; failures are counted, not raised."""

    def __init__(self, trader: Trader, out: TextIO) -> None:
        self.trader = trader
        self.broker = trader.broker_api
        self.symbol = trader.symbols[0]  # the demo trades the first of trader.symbols
        self.out = out
        self.failures: list[str] = []

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def section(self, title: str) -> None:
        self.say()
        self.say(f"== {title} " + "=" * max(0, 66 - len(title)))

    def step(self, title: str, fn: Callable[[], None]) -> None:
        self.section(title)
        try:
            fn()
        except Exception as e:
            self.failures.append(f"{title}: {e}")
            self.say(f"FAILED: {e}")

    def connection(self) -> None:
        broker: Any = self.broker
        started = time.perf_counter()
        ok = broker.connect()
        ms = (time.perf_counter() - started) * 1000
        host, port = getattr(broker, "host", "?"), getattr(broker, "port", "?")
        self.say(table(["broker", "endpoint", "account", "connected", "connect ms"], [
            [type(broker).__name__, f"{host}:{port}", mask_account(broker.account_id or "-"),
             str(ok), round(ms, 1)]]))
        if not ok:
            raise RuntimeError("could not connect")
        self.trader.start()

    def quote(self) -> None:
        data = self.broker.get_market_data(self.symbol)
        if "error" in data:
            raise RuntimeError(data["error"])
        keys = ["last", "bid", "ask", "volume", "high", "low", "close"]
        self.say(table(["symbol", *keys], [[self.symbol, *(
            _qty(data.get(k)) if k == "volume" else data.get(k) for k in keys)]]))

    def chain(self) -> None:
        chain = self.broker.get_option_chain(self.symbol)
        if not chain:
            raise RuntimeError("empty option chain")
        expirations = sorted({o.expiration for o in chain})
        strikes = sorted({o.strike for o in chain})
        calls = sum(o.option_type == "call" for o in chain)
        self.say(f"{len(chain)} options: {len(expirations)} expirations x {len(strikes)} strikes "
                 f"({calls} calls, {len(chain) - calls} puts); strikes "
                 f"{strikes[0]:g}..{strikes[-1]:g}; expirations "
                 + ", ".join(f"{e:%Y-%m-%d}" for e in expirations))
        near = [o for o in chain if o.expiration == expirations[0]]
        spot = _spot(self.broker.get_market_data(self.symbol)) or strikes[len(strikes) // 2]
        near.sort(key=lambda o: (abs(o.strike - spot), o.option_type))
        rows = [[o.symbol, o.option_type, o.strike, o.bid, o.ask, _greek(o.implied_volatility),
                 _greek(o.delta), _greek(o.gamma), _greek(o.theta), _greek(o.vega)] for o in
                sorted(near[:6], key=lambda o: (o.option_type, o.strike))]
        self.say(table(["contract", "type", "strike", "bid", "ask", "iv", "delta", "gamma",
                        "theta", "vega"], rows))
        if not any(o.delta for o in chain):
            raise RuntimeError("no greeks in the chain")

    def market_spread(self) -> None:
        signal = self.trader.submit_signal(self.symbol, "LONG", 1, price_type="MARKET")
        outcome = self.trader.wait_for_outcome(signal, timeout=WAIT)
        if outcome is None:
            raise RuntimeError("signal not processed in time")
        status, result = outcome
        if not isinstance(result, TradeRecord) or result.order_id is None:
            raise RuntimeError(f"signal {status}: {getattr(result, 'error', result)}")
        spread, order_id = result.spread, result.order_id
        assert spread is not None
        self.say(f"signal {signal.id} -> order #{order_id}: BUY 1 {spread.spread_type} "
                 f"{spread.long_leg.symbol} / {spread.short_leg.symbol} at MARKET")
        filled = wait_until(
            lambda: self.broker.get_order_status(order_id).get("status") == "Filled")
        order = self.broker.get_order_status(order_id)
        self.say(table(["order", "status", "filled", "remaining", "fill price"], [
            [order_id, order.get("status"), _qty(order.get("filled")),
             _qty(order.get("remaining")),
             order.get("filled_price")]]))
        wait_until(lambda: len(self.broker.get_order_status(order_id).get("commissions", []))
                   >= len(self.broker.get_order_status(order_id).get("executions", [])) > 0,
                   timeout=5.0)
        order = self.broker.get_order_status(order_id)
        execs = order.get("executions", [])
        self.say(table(["execution", "contract", "side", "qty", "price"], [
            [e.get("execution_id"), e.get("symbol") or e.get("con_id"), e.get("side", ""),
             _qty(e.get("shares")), e.get("price")] for e in execs]))
        comms = order.get("commissions", [])
        self.say(table(["execution", "commission", "currency", "realized pnl"], [
            [c.get("execution_id"), c.get("commission"), c.get("currency"),
             c.get("realized_pnl")] for c in comms]))
        if not filled:
            raise RuntimeError(f"order #{order_id} not filled: {order.get('status')}")

    def limit_cancel(self) -> None:
        spread = self.trader.trade_executor.select_spread(self.symbol, "LONG")
        far = 0.05  # far below the spread's debit: it rests
        order_id = self.broker.place_order(self.symbol, "LONG", 1, spread, "LIMIT", far)
        wait_until(lambda: self.broker.get_order_status(order_id).get("status")
                   in ("Submitted", "PreSubmitted", *FINAL_STATUSES), timeout=5.0)
        before = self.broker.get_order_status(order_id).get("status")
        sent = self.broker.cancel_order(order_id)
        cancelled = wait_until(lambda: self.broker.get_order_status(order_id).get("status")
                               in ("Cancelled", "ApiCancelled"))
        after = self.broker.get_order_status(order_id).get("status")
        self.say(table(["order", "spread", "limit", "debit (mid)", "status", "cancel sent",
                        "status after"], [
            [order_id, f"{spread.long_leg.strike:g}/{spread.short_leg.strike:g}", far,
             round(spread.net_debit, 2), before, str(sent), after]]))
        if not (sent and cancelled):
            raise RuntimeError(f"order #{order_id} not cancelled: {after}")

    def client_trade(self) -> None:
        """Seed 003's tiny paper trade through ``IBKRClient`` directly: quote AAPL, place a
        1-share STK limit far below the market, cancel it (own client id: the adapter's + 1)."""
        from src.brokers.compat import LimitOrder, Stock
        from src.brokers.ib_client import IBKRClient
        from src.brokers.settings import BrokerSettings

        settings = BrokerSettings.from_config(self.trader.config)
        settings = settings.replace(client_id=settings.client_id + 1)
        refuse_live(settings.port, "")
        clock = getattr(self.broker, "clock", None) or SYSTEM_CLOCK  # the app's clock
        with IBKRClient(settings, clock=clock) as client:
            if not client.connect():
                raise RuntimeError(f"IBKRClient could not connect: {client.last_error}")
            refuse_live(settings.port, client.account_id)
            stock = Stock(self.symbol, "SMART", "USD")
            quote = client.request_market_data(stock)
            reference = quote.bid or quote.last or quote.ask
            if not reference:
                raise RuntimeError(f"no {self.symbol} price from the gateway: {quote}")
            limit = max(0.01, round(reference * 0.5, 2))  # far below the market: it rests
            placed = client.place_order(stock, LimitOrder("BUY", 1, limit))
            cancelled = client.cancel_order(placed.order_id)
            client.cancel_market_data(stock)
            self.say(table(["client", "symbol", "bid", "ask", "last", "order", "limit",
                            "status", "after cancel"], [
                ["IBKRClient", self.symbol, quote.bid, quote.ask, quote.last, placed.order_id,
                 limit, placed.status, cancelled.status]]))
            if cancelled.status not in ("Cancelled", "ApiCancelled"):
                raise RuntimeError(f"order #{placed.order_id} not cancelled: {cancelled.status}")

    def positions(self) -> None:
        wait_until(lambda: bool(self.broker.get_positions()), timeout=5.0)
        positions = self.broker.get_positions()
        self.say(table(["symbol", "qty", "avg cost", "mkt price", "mkt value", "unrealized"], [
            [p.get("symbol"), _qty(p.get("quantity")), p.get("avg_price"), p.get("market_price"),
             p.get("market_value"), p.get("unrealized_pnl")]
            for p in sorted(positions.values(), key=lambda p: str(p.get("symbol")))]))
        if not positions:
            raise RuntimeError("no positions after the fill")

    def account(self) -> None:
        summary = self.broker.get_account_summary()
        if "error" in summary:
            raise RuntimeError(summary["error"])
        rows = [[k, summary.get(k) if k != "account_id" else mask_account(str(summary.get(k)))]
                for k in ACCOUNT_FIELDS if k != "timestamp"]
        self.say(table(["field", "value"], rows))
        missing = [k for k in ACCOUNT_FIELDS if k not in summary]
        if missing:
            raise RuntimeError(f"missing keys: {missing}")

    def run(self, *, roundtrip: bool = False) -> int:
        """All steps; ``roundtrip``: only connect, quote and a 1-lot LIMIT placed and cancelled
        (the paper round-trip of seed 003 — nothing is left open, nothing fills), then the same
        through ``IBKRClient`` with a 1-share stock order; refused on a live port or account."""
        port = int(getattr(self.broker, "port", 0) or 0)
        if roundtrip:
            self.step("Paper gateway check", lambda: refuse_live(port, ""))
        if not self.failures:
            self.step("Connection", self.connection)
        if not self.failures and roundtrip:
            self.step("Paper account check",
                      lambda: refuse_live(port, str(self.broker.account_id or "")))
        if not self.failures:
            self.step(f"Quote {self.symbol}", self.quote)
            if roundtrip:
                self.step("1-lot LIMIT spread far from the market, then cancelled",
                          self.limit_cancel)
                self.step(f"IBKRClient: quote {self.symbol}, 1-share LIMIT far from the market, "
                          "then cancelled", self.client_trade)
            else:
                self.step(f"Option chain {self.symbol}", self.chain)
                self.step("Bull call spread at MARKET", self.market_spread)
                self.step("LIMIT spread far from the market, then cancelled", self.limit_cancel)
                self.step("Positions", self.positions)
                self.step("Account summary", self.account)
        self.section("Result")
        stopped = self.trader.stop(timeout=10.0)
        if not stopped:
            self.failures.append("trader did not stop in time")
        for failure in self.failures:
            self.say(f"FAILED {failure}")
        self.say("all steps passed" if not self.failures
                 else f"{len(self.failures)} step(s) failed")
        return 0 if not self.failures else 1


class LiveAccountRefused(RuntimeError):
    """The paper round trip refuses a live gateway port or a live account."""


def refuse_live(port: int, account: str) -> None:
    """Raise ``LiveAccountRefused`` for a live port (7496/4001) or a non-paper account."""
    from src.brokers.settings import LIVE_PORTS, PAPER_ACCOUNT_PREFIXES

    if port in LIVE_PORTS:
        raise LiveAccountRefused(
            f"refusing to run the paper round trip on port {port} (a live TWS / IB Gateway "
            "port): point ibkr.port at a paper gateway (7497 / 4002)")
    if account and not account.startswith(PAPER_ACCOUNT_PREFIXES):
        raise LiveAccountRefused(
            f"refusing to run the paper round trip on account {mask_account(account)}: not a "
            "paper account (DU… / DF…); log the gateway in with a paper account")


def _spot(quote: dict[str, Any]) -> float | None:
    bid, ask = quote.get("bid"), quote.get("ask")
    if isinstance(bid, (int, float)) and isinstance(ask, (int, float)) and 0 < bid <= ask:
        return (bid + ask) / 2
    last = quote.get("last")
    return float(last) if isinstance(last, (int, float)) else None


def base_config(path: str | Path | None = None) -> Config:
    """config.yaml (the given one, else the repository's), else the defaults."""
    candidate = Path(path) if path else REPO_CONFIG
    return Config.from_yaml(candidate) if candidate.exists() else Config()


@contextmanager
def _gateway(kind: str, clock: Clock | None) -> Iterator[Any]:
    if kind == "sim":
        from src.simulator import SimulatedGateway

        with SimulatedGateway(port=0, seed=7, clock=clock) as gw:
            yield gw
    else:
        yield None


def run_demo(broker: str = "sim", config_path: str | Path | None = None,
             out: TextIO | None = None, *, roundtrip: bool = False,
             clock: Clock | None = None) -> int:
    """Run the demo against ``broker``; the exit code.

    ``broker``: "sim" (the embedded simulated gateway + the ib_insync adapter), "placeholder"
    (the in-memory IBKRApi) or "gateway" (the TWS / IB Gateway that config.yaml points at — a
    paper account: the adapter refuses live accounts unless config allows them)."""
    out = out if out is not None else sys.stdout
    if broker not in ("sim", "placeholder", "gateway"):
        raise ValueError(f"broker must be 'sim', 'placeholder' or 'gateway', got {broker!r}")
    base = base_config(config_path)
    with _gateway(broker, clock) as gw:
        if broker == "gateway":
            config = base.replace(USE_IB_INSYNC=True)
            print(f"IB gateway at {config.IBKR_HOST}:{config.IBKR_PORT} "
                  f"(client id {config.IBKR_CLIENT_ID})", file=out)
        elif gw is not None:
            config = base.replace(IBKR_HOST=gw.host, IBKR_PORT=gw.port,
                                  IBKR_CLIENT_ID=base.IBKR_CLIENT_ID + 100, USE_IB_INSYNC=True,
                                  IBKR_READ_ONLY=False, TRADING_MODE="paper")
            print(f"Simulated IB gateway listening on {gw.host}:{gw.port} (seed 7)", file=out)
        else:
            config = base.replace(USE_IB_INSYNC=False, IBKR_READ_ONLY=False,
                                  TRADING_MODE="paper")
            print("Placeholder broker IBKRApi (in memory, deterministic)", file=out)
        trader = Trader(config=config, connect=False, clock=clock)
        try:
            return Demo(trader, out).run(roundtrip=roundtrip)
        finally:
            trader.stop(timeout=5.0)
            close = getattr(trader.broker_api, "close", None)
            if callable(close):
                close()
