"""``IBKRApi``: the simulated placeholder broker — a sibling of the real adapter, not a mock.

It honours the whole drop-in contract (docs/contract.md) in memory, deterministically:

* prices: every symbol of a small universe has a fixed starting price; the underlying follows a
  deterministic path (a sine wave, ``seed`` shifts its phase) that advances one step per
  :meth:`handle_callbacks`;
* option chains: the listed weekly expirations (each week's Friday, the business day before when
  it is an exchange holiday; today's until the 16:00 New York close, see
  :mod:`src.utils.market_calendar`) × strikes around the money, quoted and greeked with the
  shared Black–Scholes kernel (with rho), time to expiry from the injected clock to the
  expiration's close;
* orders: MARKET fills at once at the spread's mid debit; a marketable LIMIT fills at once, any
  other rests until the price path crosses it (a limit far from the market rests forever) and
  can be cancelled;
  ``order_ref`` makes placement idempotent (same ref → same id, nothing new);
* positions follow fills, legs keyed like the real adapter (options by their OCC local symbol,
  ``"AAPL  261218C00150000"``); the account summary is derived from cash and positions.

Errors behave like the real adapter's: ``ValueError`` naming the field for bad arguments or no
connection (state unchanged), ``RuntimeError("Order placement failed: …")`` with
"Error placing order" logged when the (simulated) broker refuses, ``{}``/``[]``/error dicts for
lookups. Every member is safe to call from any thread (one ``RLock``).
"""

from __future__ import annotations

import math
import threading
import zlib
from datetime import date
from typing import Any

from src.brokers import validation
from src.brokers.base import FINAL_STATUSES
from src.brokers.errors import NotConnected, ReadOnlyViolation
from src.brokers.settings import BrokerSettings
from src.models.option import Option, OptionSpread
from src.models.pricing import black_scholes
from src.utils import market_calendar
from src.utils.clock import Clock, clock_for, wall_now
from src.utils.logger import log_error, log_info, log_warning

# symbol -> (starting price, volatility); the same names as the simulated gateway's universe.
UNIVERSE: dict[str, tuple[float, float]] = {
    "AAPL": (230.10, 0.27), "MSFT": (421.35, 0.25), "SPY": (592.40, 0.15),
    "QQQ": (512.80, 0.18), "TSLA": (248.50, 0.55), "AMZN": (201.20, 0.32),
}
RISK_FREE_RATE = 0.04
MULTIPLIER = 100
COMMISSION_PER_CONTRACT = 0.65
MIN_COMMISSION = 1.0
STARTING_CASH = 1_000_000.0
PATH_AMPLITUDE = 0.03  # ± relative move of the underlying over one cycle
PATH_PERIOD = 40  # handle_callbacks() steps per cycle


def occ_symbol(underlying: str, expiration: date, right: str, strike: float) -> str:
    """IB's local symbol for a US option: ``"AAPL  261218C00150000"``."""
    return f"{underlying:<6}{expiration:%y%m%d}{right}{round(strike * 1000):08d}"


class IBKRApi:
    """The simulated placeholder broker (see the module docstring)."""

    def __init__(self, config: object = None, *, seed: int = 0,
                 today: date | None = None, clock: Clock | None = None) -> None:
        self.config = config
        # "what day is it" (New York) and timestamps; ``today=`` (older keyword) pins 10:00 NY
        self.clock: Clock = clock_for(today, clock)
        settings = BrokerSettings.from_config(config)
        self.settings = settings
        self.host: str = settings.host
        self.port: int = settings.port
        self.client_id: int = settings.client_id
        self.account_id: str = settings.account_id
        self.read_only: bool = settings.read_only
        self.chain_expirations: int = settings.chain_expirations
        self.chain_strikes: int = settings.chain_strikes
        self.max_contracts: int = settings.max_contracts
        self.connected = False
        self.orders: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.next_order_id = 1
        # Test hooks, the simulated gateway's state: is it running, is the market open.
        self.available = True
        self.market_open = True
        self._seed = seed
        self._tick = 0
        self._cash = STARTING_CASH
        self._realized = 0.0
        self._refs: dict[str, str] = {}
        self._spreads: dict[str, OptionSpread] = {}
        self._exec_seq = 0

    # -- connection ------------------------------------------------------------------------

    def connect(self) -> bool:
        """Connect to the simulated gateway; False (and an ERROR logged) when it is down."""
        with self.lock:
            if not self.available:
                log_error(f"Failed to connect to IBKR at {self.host}:{self.port}: "
                          "connection refused (simulated gateway not running)")
                self.connected = False
                return False
            self.connected = True
            if not self.account_id:
                digits = 1_000_000 + zlib.crc32(f"{self._seed}".encode()) % 9_000_000
                self.account_id = f"DU{digits}"
        log_info(f"Connected to simulated IBKR (placeholder) as client {self.client_id}, "
                 f"account {self.account_id}")
        return True

    def disconnect(self) -> None:
        """Disconnect; orders and positions stay (they are the gateway's state)."""
        with self.lock:
            was = self.connected
            self.connected = False
        if was:
            log_info("Disconnected from simulated IBKR (placeholder)")

    def close(self) -> None:
        """Same as :meth:`disconnect` (the real adapter also stops its loop thread)."""
        self.disconnect()

    def handle_callbacks(self) -> None:
        """Advance the simulated market one step and fill resting orders it crosses."""
        try:
            with self.lock:
                if not self.connected:
                    return
                self._tick += 1
                for order_id, order in self.orders.items():
                    if order["status"] not in FINAL_STATUSES:
                        self._try_fill(order_id, order)
                self._mark_positions()
        except Exception as e:  # never raises, by contract
            log_error(f"Error handling callbacks: {e}")

    # -- market ----------------------------------------------------------------------------

    def _spot(self, symbol: str) -> float:
        base, _ = UNIVERSE[symbol]
        wave = math.sin(2 * math.pi * (self._tick + self._seed) / PATH_PERIOD)
        return round(base * (1 + PATH_AMPLITUDE * wave), 2)

    def _quote_option(self, symbol: str, expiration: date, right: str,
                      strike: float) -> Option:
        spot = self._spot(symbol)
        vol = UNIVERSE[symbol][1] * (1 + 0.5 * math.log(strike / spot) ** 2)
        years = market_calendar.years_to_expiry(expiration, self.clock)
        g = black_scholes(spot, strike, years, vol, RISK_FREE_RATE, right)
        price, delta, gamma, theta, vega, rho = g.price, g.delta, g.gamma, g.theta, g.vega, g.rho
        half = max(0.01, round(price * 0.01, 2))
        local = occ_symbol(symbol, expiration, right, strike)
        activity = zlib.crc32(local.encode())
        return Option(
            symbol=local, underlying=symbol, option_type="call" if right == "C" else "put",
            strike=strike, expiration=expiration,
            bid=max(0.0, round(price - half, 2)), ask=round(price + half, 2),
            last=round(price, 2), volume=activity % 5000, open_interest=activity % 50000,
            implied_volatility=round(vol, 4), delta=delta, gamma=gamma, theta=theta,
            vega=vega, rho=rho,
        )

    def _expirations(self) -> list[date]:
        return market_calendar.listed_weeklies(self.clock, self.chain_expirations)

    def _strikes(self, symbol: str) -> list[float]:
        base = UNIVERSE[symbol][0]
        step = 5.0 if base >= 100 else 2.5 if base >= 25 else 1.0
        atm = round(self._spot(symbol) / step) * step
        lo = atm - step * ((self.chain_strikes - 1) // 2)
        return [lo + step * i for i in range(self.chain_strikes)]

    def get_market_data(self, symbol: str) -> dict[str, Any]:
        """The current quote of ``symbol``; ``{symbol, error}`` (logged) on trouble.

        A bad symbol (not a str, empty, invalid characters) is bad input: ``InvalidOrder``."""
        validation.symbol(symbol)
        with self.lock:
            if not self.connected:
                log_error(f"Error getting market data for {symbol}: not connected to IBKR")
                return {"symbol": symbol, "error": "Not connected to IBKR"}
            if symbol not in UNIVERSE:
                log_error(f"Error getting market data for {symbol}: unknown symbol")
                return {"symbol": symbol, "error": f"Invalid symbol: {symbol!r}"}
            last = self._spot(symbol)
            base = UNIVERSE[symbol][0]
            return {
                "symbol": symbol, "timestamp": self.clock.now().isoformat(), "last": last,
                "bid": round(last - 0.01, 2), "ask": round(last + 0.01, 2),
                "volume": 1_000_000 + 10_000 * self._tick,
                "high": round(base * (1 + PATH_AMPLITUDE), 2),
                "low": round(base * (1 - PATH_AMPLITUDE), 2), "close": base,
                "data_type": "live",  # an addition: the placeholder's quotes are "live"
            }

    def get_option_chain(self, symbol: str) -> list[Option]:
        """Calls and puts, near-the-money strikes of the nearest expirations; ``[]`` on trouble
        (a bad symbol is ``InvalidOrder``, as in the real adapter)."""
        validation.symbol(symbol)
        with self.lock:
            if not self.connected:
                log_error(f"Error getting option chain for {symbol}: not connected to IBKR")
                return []
            if symbol not in UNIVERSE:
                log_error(f"Error getting option chain for {symbol}: unknown symbol")
                return []
            chain = [self._quote_option(symbol, exp, right, strike)
                     for exp in self._expirations() for right in ("C", "P")
                     for strike in self._strikes(symbol)]
        log_info(f"Retrieved {len(chain)} options for {symbol}")
        return chain

    # -- orders ----------------------------------------------------------------------------

    def get_next_order_id(self) -> int:
        with self.lock:
            order_id = self.next_order_id
            self.next_order_id += 1
            return order_id

    def place_order(self, symbol: str, direction: str, contracts: int,
                    option_spread: OptionSpread, price_type: str = "LIMIT",
                    limit_price: float | None = None, *, order_ref: str | None = None) -> str:
        """Place a spread order; the order id (str). See the module docstring for errors."""
        validation.order_args(symbol, direction, contracts, option_spread, price_type,
                              limit_price, order_ref, self.max_contracts)
        option_spread = validation.as_spread(option_spread, symbol)  # a host's own object too
        if self.read_only:  # the real adapter's order: arguments, read-only, connection
            raise ReadOnlyViolation("read-only (ibkr.read_only is true): order refused")
        if not self.connected:
            raise NotConnected("Not connected to IBKR")
        with self.lock:
            if order_ref is not None and order_ref in self._refs:
                existing = self._refs[order_ref]
                log_warning(f"Order ref {order_ref!r} already placed as #{existing}; not resent")
                return existing
            try:
                self._refuse_if_needed(symbol, option_spread)
            except RuntimeError as e:
                log_error(f"Error placing order: {e}")
                raise RuntimeError(f"Order placement failed: {e}") from None
            order_id = str(self.get_next_order_id())
            actions = ("BUY", "SELL") if direction == "LONG" else ("SELL", "BUY")
            legs = [{"strike": leg.strike, "right": leg.right,
                     "expiry": f"{leg.expiration:%Y%m%d}", "action": action, "ratio": 1,
                     "con_id": _con_id(leg)}
                    for leg, action in zip((option_spread.long_leg, option_spread.short_leg),
                                           actions, strict=True)]
            self.orders[order_id] = {
                "id": order_id, "symbol": symbol, "direction": direction,
                "contracts": contracts, "spread_type": option_spread.spread_type,
                "price_type": price_type,
                "limit_price": None if price_type == "MARKET" else float(limit_price or 0.0),
                "status": "Submitted", "filled": 0.0, "remaining": float(contracts),
                "filled_price": None, "submit_time": wall_now(self.clock), "fill_time": None,
                "order_ref": order_ref or f"{option_spread.spread_type}_{order_id}",
                "perm_id": 900_000 + int(order_id), "legs": legs,
                "executions": [], "commissions": [],
            }
            self._spreads[order_id] = option_spread
            if order_ref is not None:
                self._refs[order_ref] = order_id
            log_info(f"Placed order #{order_id}: {symbol} {direction} {contracts} contracts of "
                     f"{option_spread.spread_type} at {price_type}"
                     + (f" {limit_price:.2f}" if price_type == "LIMIT" and limit_price else ""))
            self._try_fill(order_id, self.orders[order_id])
            return order_id

    def what_if_order(self, symbol: str, direction: str, contracts: int,
                      option_spread: OptionSpread, price_type: str = "LIMIT",
                      limit_price: float | None = None) -> dict[str, Any]:
        """The adapter's ``what_if_order`` (src/brokers/what_if.py), estimated with this
        broker's own margin model (20% of gross position value) and commissions."""
        validation.order_args(symbol, direction, contracts, option_spread, price_type,
                              limit_price, None, self.max_contracts)
        spread = validation.as_spread(option_spread, symbol)
        with self.lock:
            if not self.connected:
                return {"symbol": symbol, "error": "Not connected to IBKR"}
            try:
                self._refuse_if_needed(symbol, spread)
            except RuntimeError as e:
                return {"symbol": symbol, "error": f"what-if refused: {e}"}
            summary = self.get_account_summary()
            legs = [self._quote_option(symbol, leg.expiration, leg.right, leg.strike).mid
                    for leg in (spread.long_leg, spread.short_leg)]
            init = 0.2 * sum(abs(px) for px in legs) * MULTIPLIER * contracts
            fee = 2 * max(MIN_COMMISSION, COMMISSION_PER_CONTRACT * contracts)
            before = {"init": summary["initial_margin_req"],
                      "maint": summary["maintenance_margin_req"],
                      "equity_with_loan": summary["equity_with_loan"]}
            change = {"init": init, "maint": 0.75 * init, "equity_with_loan": -fee}
        out: dict[str, Any] = {"symbol": symbol}
        for key, name in (("init", "init_margin"), ("maint", "maint_margin"),
                          ("equity_with_loan", "equity_with_loan")):
            out[f"{name}_before"] = round(before[key], 2)
            out[f"{name}_change"] = round(change[key], 2)
            out[f"{name}_after"] = round(before[key] + change[key], 2)
        out.update(commission=round(fee, 2), min_commission=round(fee, 2),
                   max_commission=round(fee, 2), commission_currency="USD", warning="")
        return out

    def _refuse_if_needed(self, symbol: str, spread: OptionSpread) -> None:
        if not self.market_open:
            raise RuntimeError("market is closed (error 201: order rejected)")
        if symbol not in UNIVERSE:
            raise RuntimeError(f"no security definition for {symbol!r} (error 200)")
        if spread.expiration is None \
                or spread.expiration < market_calendar.first_live_expiry(self.clock):
            raise RuntimeError(f"option expiration {spread.expiration} is not in the future")

    def _leg_prices(self, order_id: str) -> tuple[float, float]:
        spread = self._spreads[order_id]
        legs = [self._quote_option(spread.symbol, leg.expiration, leg.right, leg.strike)
                for leg in (spread.long_leg, spread.short_leg)]
        return round(legs[0].mid, 2), round(legs[1].mid, 2)

    def _try_fill(self, order_id: str, order: dict[str, Any]) -> None:
        long_px, short_px = self._leg_prices(order_id)
        debit = round(long_px - short_px, 2)
        if order["price_type"] == "LIMIT":
            limit = order["limit_price"]
            crossed = debit <= limit if order["direction"] == "LONG" else debit >= limit
            if not crossed:
                return
        self._fill(order_id, order, long_px, short_px)

    def _fill(self, order_id: str, order: dict[str, Any], long_px: float,
              short_px: float) -> None:
        spread = self._spreads[order_id]
        qty = int(order["remaining"])
        sign = 1 if order["direction"] == "LONG" else -1  # SHORT sells the spread: legs flip
        when = wall_now(self.clock)
        executions, commissions = order["executions"], order["commissions"]
        for leg, leg_sign, price in ((spread.long_leg, sign, long_px),
                                     (spread.short_leg, -sign, short_px)):
            self._exec_seq += 1
            exec_id = f"0000sim.{self._exec_seq:08d}.01"
            commission = max(MIN_COMMISSION, COMMISSION_PER_CONTRACT * qty)
            realized = self._book(leg, leg_sign * qty, price, order_id)
            self._cash -= leg_sign * qty * price * MULTIPLIER + commission
            executions.append({"execution_id": exec_id, "time": when, "shares": float(qty),
                               "price": price, "side": "BOT" if leg_sign > 0 else "SLD",
                               "con_id": _con_id(leg), "symbol": _local(leg)})
            commissions.append({"execution_id": exec_id, "commission": commission,
                                "currency": "USD", "realized_pnl": realized})
        order.update(status="Filled", filled=float(order["contracts"]), remaining=0.0,
                     filled_price=round(long_px - short_px, 2), fill_time=when,
                     fills_settled=float(order["contracts"]), commission_pending=0,
                     commission=round(sum(c["commission"] for c in commissions), 6))
        log_info(f"Order #{order_id} filled: {qty} x {spread.spread_type} at "
                 f"{order['filled_price']:.2f}")

    def _book(self, leg: Option, quantity: int, price: float, order_id: str) -> float:
        """Apply a leg fill to the positions; the realized P&L of the part it closes.

        Like IB (and the real adapter), ``avg_price`` is the average cost per contract
        (price × multiplier); ``market_price`` is per share.
        """
        key = _local(leg)
        cost = price * MULTIPLIER
        row = self.positions.get(key)
        if row is None:
            row = self.positions[key] = {
                "symbol": key, "quantity": 0, "avg_price": 0.0, "market_price": price,
                "market_value": 0.0, "unrealized_pnl": 0.0, "realized_pnl": 0.0,
                "account": self.account_id, "trades": [], "underlying": leg.underlying,
                "sec_type": "OPT", "right": leg.right, "strike": leg.strike,
                "expiration": leg.expiration,
            }
        old = row["quantity"]
        realized = 0.0
        if old == 0 or (old > 0) == (quantity > 0):  # opening or adding
            row["avg_price"] = round((row["avg_price"] * abs(old) + cost * abs(quantity))
                                     / abs(old + quantity), 4)
        else:  # reducing, closing or flipping
            closed = min(abs(old), abs(quantity))
            realized = (cost - row["avg_price"]) * closed * (1 if old > 0 else -1)
            if abs(quantity) > abs(old):
                row["avg_price"] = cost
        row["quantity"] = old + quantity
        row["realized_pnl"] += realized
        row["trades"].append(order_id)
        self._realized += realized
        if row["quantity"] == 0:
            del self.positions[key]
        return round(realized, 2)

    def _mark_positions(self) -> None:
        for row in self.positions.values():
            quote = self._quote_option(row["underlying"], row["expiration"], row["right"],
                                       row["strike"])
            price = round(quote.mid, 2)
            row["market_price"] = price
            row["market_value"] = round(row["quantity"] * price * MULTIPLIER, 2)
            row["unrealized_pnl"] = round(
                row["market_value"] - row["avg_price"] * row["quantity"], 2)

    def get_order_status(self, order_id: str) -> dict[str, Any]:
        """A copy of the order's record; ``{}`` for an unknown id."""
        with self.lock:
            order = self.orders.get(str(order_id))
            if order is None:
                return {}
            copy = dict(order)
            for key in ("executions", "commissions", "legs"):
                copy[key] = [dict(x) for x in order[key]]
            return copy

    def cancel_order(self, order_id: str) -> bool:
        """True when cancelled; False for unknown, finished, or not connected.

        Like the real adapter: a bad id is an ``InvalidOrder``, read-only a ``ReadOnlyViolation``
        (both ``ValueError``)."""
        validation.order_id(order_id)
        if self.read_only:
            raise ReadOnlyViolation("read-only (ibkr.read_only is true): cancel refused")
        with self.lock:
            if not self.connected:
                log_warning(f"Not connected to IBKR when attempting to cancel order {order_id}")
                return False
            order = self.orders.get(str(order_id))
            if order is None:
                log_warning(f"Order {order_id} not found when attempting to cancel")
                return False
            if order["status"] in FINAL_STATUSES:
                log_warning(f"Cannot cancel order {order_id} with status {order['status']}")
                return False
            order["status"] = "Cancelled"
        log_info(f"Order {order_id} cancelled")
        return True

    # -- account ---------------------------------------------------------------------------

    def get_account_summary(self) -> dict[str, Any]:
        """Every contract key (floats); ``{error, timestamp}`` when not connected."""
        with self.lock:
            if not self.connected:
                return {"error": "Not connected to IBKR", "timestamp": self.clock.now().isoformat()}
            self._mark_positions()
            value = sum((row["market_value"] for row in self.positions.values()), 0.0)
            gross = sum((abs(row["market_value"]) for row in self.positions.values()), 0.0)
            equity = self._cash + value
            initial, maint = 0.2 * gross, 0.15 * gross
            return {
                "timestamp": self.clock.now().isoformat(), "account_id": self.account_id,
                "cash_balance": round(self._cash, 2), "net_liquidation": round(equity, 2),
                "equity_with_loan": round(equity, 2), "initial_margin_req": round(initial, 2),
                "maintenance_margin_req": round(maint, 2),
                "available_funds": round(equity - initial, 2),
                "excess_liquidity": round(equity - maint, 2),
                "buying_power": round(4 * (equity - initial), 2),
                "day_trades_remaining": -1.0, "gross_position_value": round(gross, 2),
                "total_cash_value": round(self._cash, 2),
            }

    def get_positions(self) -> dict[str, dict[str, Any]]:
        """Copies of the position rows by symbol; ``{}`` when not connected."""
        with self.lock:
            if not self.connected:
                return {}
            self._mark_positions()
            return {k: {**row, "trades": list(row["trades"])} for k, row in self.positions.items()}


def _local(leg: Option) -> str:
    return occ_symbol(leg.underlying, leg.expiration, leg.right, leg.strike)


def _con_id(leg: Option) -> int:
    """A stable fake contract id for a leg."""
    return 700_000_000 + zlib.crc32(_local(leg).encode()) % 100_000_000
