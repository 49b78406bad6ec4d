"""Helpers for the resilience features (test code only).

Everything that waits here polls a condition against a deadline and fails with a message when
the deadline passes: nothing in these tests waits forever.

The gateway's state (orders, fills, positions) lives on the gateway's loop thread; every read
of it goes through ``gw.call`` so the test sees a consistent snapshot.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

from src.app.config import Config
from src.models.option import Option, OptionSpread

T = TypeVar("T")

ACCOUNT = "DU1234567"
RESULTS_DIR = Path(__file__).parent / "results"

# TWS API incoming message ids (client → gateway), from ib_insync/client.py.
REQ_MKT_DATA = 1
CANCEL_MKT_DATA = 2
PLACE_ORDER = 3
CANCEL_ORDER = 4
REQ_CONTRACT_DATA = 9
REQ_MARKET_DATA_TYPE = 59
START_API = 71


# ----------------------------------------------------------------------------- environment


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = int(raw)
    if value < 0:
        raise ValueError(f"environment {name} must be >= 0, got {raw!r}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"environment {name} must be a finite number >= 0, got {raw!r}")
    return value


def resolve_count(text: str, kind: type = int) -> Any:
    """``"10"`` → 10; ``"$RESILIENCE_RESTARTS (default 3)"`` → the variable or its default."""
    text = text.strip()
    if text.startswith("$"):
        name, _, rest = text[1:].partition(" ")
        default_text = rest.strip().removeprefix("(default").removesuffix(")").strip()
        if kind is int:
            return env_int(name, int(default_text))
        return env_float(name, float(default_text))
    return kind(text)


# ----------------------------------------------------------------------------- waiting


def wait_for(condition: Callable[[], T], timeout: float, message: str,
             interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except AssertionError as e:  # a condition may assert to explain itself
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f" (last: {last_exc})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}{detail}")
        time.sleep(interval)


def run_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a daemon thread; fail (instead of hanging the suite) if it overruns."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=target, name=f"bounded:{what}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"{what} did not return within {timeout:.1f}s (deadlock?)")
    if "error" in box:
        raise box["error"]
    return box.get("value")  # type: ignore[return-value]


@dataclass
class Timed:
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


def timed_call(fn: Callable[[], Any], timeout: float, what: str) -> Timed:
    """Call ``fn`` (bounded by ``timeout``), recording its result or exception and duration."""
    out = Timed()

    def body() -> None:
        start = time.monotonic()
        try:
            out.value = fn()
        except Exception as e:  # noqa: BLE001 - the scenario inspects it
            out.error = e
        finally:
            out.seconds = time.monotonic() - start

    run_with_timeout(body, timeout, what)
    return out


# ----------------------------------------------------------------------------- config


FAST: dict[str, Any] = {
    "IBKR_RECONNECT_BASE": 0.05,
    "IBKR_RECONNECT_CAP": 0.5,
    "IBKR_REQUEST_TIMEOUT": 2.0,
    "IBKR_TIMEOUT": 5.0,
    "IBKR_AUTO_RECONNECT": True,
    "IBKR_MARKET_DATA_TYPE": 1,
    "MAX_OPEN_ORDERS": 10_000,
    "MAX_CONTRACTS_PER_ORDER": 10,
}


def make_config(gw: Any, client_id: int, **overrides: Any) -> Config:
    settings = dict(FAST)
    settings.update(overrides)
    return Config().replace(IBKR_HOST="127.0.0.1", IBKR_PORT=gw.port, IBKR_CLIENT_ID=client_id,
                            **settings)


def parse_settings(text: str) -> dict[str, Any]:
    """``"IBKR_READ_ONLY=True, IBKR_REQUEST_TIMEOUT=8"`` → a dict of typed values."""
    out: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, _, raw = part.partition("=")
        out[key.strip()] = literal(raw.strip())
    return out


def literal(raw: str) -> Any:
    """A Gherkin cell as a Python value: literals, ``nan``/``inf``, small expressions
    (``"x" * 65``, ``10**9``). Test input written by us, evaluated without builtins."""
    names = {"nan": math.nan, "inf": math.inf, "None": None, "True": True, "False": False}
    return eval(raw, {"__builtins__": {}}, names)  # noqa: S307 - our own feature tables


# ----------------------------------------------------------------------------- spreads


def make_spread(gw: Any, symbol: str = "AAPL", kind: str = "BULL_CALL",
                expiry_index: int = 0, offset: int = 0) -> OptionSpread:
    """A near-the-money vertical that exists in the simulated market."""

    def read() -> tuple[list[str], list[float], float]:
        chain = gw.market.chain(symbol)
        return list(chain.expirations), list(chain.strikes), gw.market.underlying_price(symbol)

    expirations, strikes, spot = gw.call(read)
    expiry = expirations[expiry_index]
    exp_date = datetime.strptime(expiry, "%Y%m%d").date()
    atm = min(range(len(strikes)), key=lambda i: abs(strikes[i] - spot))
    i = max(1, min(len(strikes) - 2, atm + offset))
    lo, hi = strikes[i], strikes[i + 1]
    right = "call" if kind == "BULL_CALL" else "put"

    def leg(strike: float) -> Option:
        return Option(symbol=occ(symbol, expiry, right, strike), underlying=symbol,
                      option_type=right, strike=strike, expiration=exp_date)

    long_leg, short_leg = (leg(lo), leg(hi)) if kind == "BULL_CALL" else (leg(hi), leg(lo))
    return OptionSpread(symbol=symbol, spread_type=kind, long_leg=long_leg, short_leg=short_leg)


def occ(symbol: str, expiry: str, right: str, strike: float) -> str:
    r = "C" if right == "call" else "P"
    return f"{symbol:<6}{expiry[2:]}{r}{int(round(strike * 1000)):08d}"


# Prices for a 1-wide… 5-wide debit spread: RESTING never crosses (BUY at a cent), CROSSING
# always does (BUY at more than any spread of these widths is worth).
RESTING_BUY = 0.01
CROSSING_BUY = 50.0


# ----------------------------------------------------------------------------- gateway views


@dataclass(frozen=True)
class EngineOrder:
    perm_id: int
    order_id: int
    client_id: int
    order_ref: str
    status: str
    filled: float
    remaining: float
    quantity: float


def engine_orders(gw: Any, client_id: int | None = None) -> list[EngineOrder]:
    """A consistent snapshot of the gateway's orders (optionally one client's)."""

    def read() -> list[EngineOrder]:
        out = []
        for perm_id, o in list(gw.engine.orders.items()):
            req = o.request
            out.append(EngineOrder(
                perm_id=int(perm_id), order_id=int(req.order_id), client_id=int(o.client_id),
                order_ref=str(req.order_ref or ""), status=str(o.status), filled=float(o.filled),
                remaining=float(o.remaining), quantity=float(req.total_quantity)))
        return out

    orders = gw.call(read)
    if client_id is not None:
        orders = [o for o in orders if o.client_id == client_id]
    return orders


def engine_fills(gw: Any, perm_id: int | None = None) -> list[Any]:
    fills = gw.call(lambda: list(gw.engine.fills))
    return [f for f in fills if perm_id is None or f.perm_id == perm_id]


def force_fill(gw: Any, perm_id: int) -> None:
    """Make the gateway's resting BUY LMT order ``perm_id`` cross, on the loop thread.

    The gateway's engine fills resting LMT orders whose price is crossed on each price step;
    raising the limit to a marketable price and running the matcher fills it now — with no
    client connected, that is a fill made during an outage.
    """

    def cross() -> None:
        order = gw.engine.orders[perm_id]
        order.request.lmt_price = CROSSING_BUY if order.request.action == "BUY" else 0.01
        gw.engine.on_prices()

    gw.call(cross)


def gateway_cancel(gw: Any, perm_id: int) -> None:
    """Cancel order ``perm_id`` from the gateway's side (as TWS or IB would), on the loop."""
    gw.call(lambda: gw.engine._cancel(gw.engine.orders[perm_id]))


def request_log(gw: Any) -> list[Any]:
    """A copy of the gateway's request log (taken on the loop thread)."""
    return list(gw.call(lambda: list(gw.requests)))


def req_msg_id(r: Any) -> int:
    """``gw.requests`` rows are ``(client_id, msg_id, fields after the msg id)``."""
    return int(r[1])


def req_client_id(r: Any) -> int:
    return int(r[0])


def req_fields(r: Any) -> list[str]:
    return list(r[2])


def requests_matching(log: Iterable[Any], msg_id: int, client_id: int | None = None) -> list[Any]:
    return [r for r in log if req_msg_id(r) == msg_id
            and (client_id is None or req_client_id(r) == client_id)]


# ----------------------------------------------------------------------------- adapter views


def adapter_orders(api: Any) -> dict[str, dict[str, Any]]:
    """A deep-enough copy of ``api.orders`` taken under the adapter's lock."""
    with api.lock:
        return {k: {kk: vv for kk, vv in v.items() if kk != "trade"} for k, v in api.orders.items()}


def order_ref_of(entry: dict[str, Any]) -> str:
    return str(entry.get("order_ref") or entry.get("orderRef") or "")


LIVE_STATUSES = frozenset({"PendingSubmit", "PreSubmitted", "Submitted", "PendingCancel"})


def compare_orders(api: Any, gw: Any, client_id: int) -> dict[str, Any]:
    """Orders lost / duplicated between the adapter and the gateway, for one client id.

    lost: an order the gateway holds for this client that the adapter does not track.
    duplicated: two gateway orders carrying the same order_ref (a retry that became a second
    order), or two adapter entries for one gateway order.
    phantoms: orders the adapter reports live that the gateway does not hold.
    """
    ours = adapter_orders(api)
    theirs = engine_orders(gw, client_id)
    lost = [o for o in theirs if str(o.order_id) not in ours]
    refs: dict[str, list[int]] = {}
    for o in theirs:
        if o.order_ref:
            refs.setdefault(o.order_ref, []).append(o.perm_id)
    dup_refs = {ref: perms for ref, perms in refs.items() if len(perms) > 1}
    by_perm: dict[int, list[str]] = {}
    for oid, entry in ours.items():
        perm = entry.get("perm_id") or entry.get("permId")
        if perm:
            by_perm.setdefault(int(perm), []).append(oid)
    dup_entries = {p: ids for p, ids in by_perm.items() if len(ids) > 1}
    at_gateway = {str(o.order_id) for o in theirs}
    phantoms = {oid: e.get("status") for oid, e in ours.items()
                if oid not in at_gateway and e.get("status") in LIVE_STATUSES}
    return {"lost": lost, "duplicated_refs": dup_refs, "duplicated_entries": dup_entries,
            "phantoms": phantoms, "adapter": ours, "gateway": theirs}


def assert_orders_agree(api: Any, gw: Any, client_id: int, timeout: float = 5.0) -> dict[str, Any]:
    """Wait until the adapter's orders agree with the gateway's: none lost, none duplicated,
    the same status and filled quantity for every order. Returns the final comparison."""
    final: dict[str, Any] = {}

    def consistent() -> bool:
        c = compare_orders(api, gw, client_id)
        assert not c["lost"], f"lost: {c['lost']}"
        assert not c["duplicated_refs"], f"duplicated at the gateway: {c['duplicated_refs']}"
        assert not c["duplicated_entries"], f"duplicated entries: {c['duplicated_entries']}"
        assert not c["phantoms"], f"reported live, unknown to the gateway: {c['phantoms']}"
        for o in c["gateway"]:
            entry = c["adapter"][str(o.order_id)]
            assert entry.get("status") == o.status, (
                f"order {o.order_id}: adapter {entry.get('status')} vs gateway {o.status}")
            assert float(entry.get("filled") or 0) == o.filled, (
                f"order {o.order_id}: adapter filled {entry.get('filled')} vs gateway {o.filled}")
        final.update(c)
        return True

    wait_for(consistent, timeout, "the adapter's orders to agree with the gateway's")
    return final


def engine_positions(gw: Any, account: str = ACCOUNT) -> dict[str, float]:
    """The gateway's non-zero positions for ``account``, keyed like the adapter's."""

    def read() -> dict[str, float]:
        out: dict[str, float] = {}
        for (acct, _con_id), p in gw.engine.positions.items():
            if acct != account or not p.quantity:
                continue
            c = p.contract
            key = c.symbol if c.sec_type == "STK" else (c.local_symbol.strip() or c.symbol)
            out[key] = float(p.quantity)
        return out

    return dict(gw.call(read))


def assert_positions_agree(api: Any, gw: Any, timeout: float = 5.0) -> dict[str, float]:
    def agree() -> dict[str, float] | bool:
        theirs = engine_positions(gw)
        ours = {k: float(v.get("quantity") or 0) for k, v in api.get_positions().items()}
        ours = {k: v for k, v in ours.items() if v}
        assert ours == theirs, f"adapter {ours} vs gateway {theirs}"
        return theirs or True

    result = wait_for(agree, timeout, "the adapter's positions to agree with the gateway's")
    return result if isinstance(result, dict) else {}


# ----------------------------------------------------------------------------- results


RESULTS: dict[str, Any] = {}
_results_lock = threading.Lock()


def record(section: str, **values: Any) -> None:
    with _results_lock:
        RESULTS.setdefault(section, {}).update(values)


def summarize(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "max": None, "min": None}
    return {"median": round(statistics.median(values), 4), "max": round(max(values), 4),
            "min": round(min(values), 4)}


def write_results() -> Path | None:
    with _results_lock:
        if not RESULTS:
            return None
        data = {"written_at": datetime.now().isoformat(timespec="seconds"),
                "date": date.today().isoformat(), **RESULTS}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "latest.json"
    text = json.dumps(data, indent=2, default=str)
    path.write_text(text, encoding="utf-8")
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    (RESULTS_DIR / f"run-{stamp}.json").write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- adapter helpers


LIVE = ("PendingSubmit", "PreSubmitted", "Submitted")


def status_of(api: Any, oid: str) -> str:
    return str(api.get_order_status(oid).get("status", ""))


def perm_id_of(ctx: SimpleNamespace, oid: str) -> int:
    def find() -> int | None:
        for o in engine_orders(ctx.gw, ctx.client_id):
            if o.order_id == int(oid):
                return o.perm_id
        return None

    return wait_for(find, 5, f"the gateway to hold order {oid}")


def quote_key(data: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(data.get(k) for k in ("bid", "ask", "last"))


def assert_ticks(api: Any, symbol: str, within: float = 6.0) -> None:
    """Market data for ``symbol`` is live: answers without error, and the quote moves."""
    seen: set[tuple[Any, ...]] = set()

    def moved() -> bool:
        data = api.get_market_data(symbol)
        assert "error" not in data, f"market data error: {data}"
        key = quote_key(data)
        if key[0] is not None or key[2] is not None:
            seen.add(key)
        return len(seen) >= 2

    wait_for(moved, within, f"{symbol} quotes to tick", interval=0.2)


def error_code(err: Any) -> int | None:
    for name in ("code", "error_code", "ib_code"):
        value = getattr(err, name, None)
        if isinstance(value, int):
            return value
    return None




def connect_adapter(ctx: SimpleNamespace, adapters: Callable[..., Any], client_id: int,
                    **settings: Any) -> Any:
    api = adapters(ctx.gw, client_id, **settings)
    ok = run_with_timeout(api.connect, 20, "connect()")
    assert ok is True, f"connect() returned {ok!r}; last_error={getattr(api, 'last_error', None)}"
    assert api.connected is True
    return api


def place_resting(ctx: SimpleNamespace, api: Any, ref: str, offset: int = 0) -> str:
    spread = make_spread(ctx.gw, "AAPL", "BULL_CALL", offset=offset)
    oid = run_with_timeout(
        lambda: api.place_order("AAPL", "LONG", 1, spread, "LIMIT", RESTING_BUY, order_ref=ref),
        15, "place_order")
    assert isinstance(oid, str) and oid, f"place_order returned {oid!r}"
    return oid


def mark_requests(ctx: SimpleNamespace) -> None:
    ctx.log_mark = len(request_log(ctx.gw))


def new_requests(ctx: SimpleNamespace) -> list[Any]:
    return request_log(ctx.gw)[ctx.log_mark:]


def error_class(name: str) -> type[BaseException]:
    from src.brokers import errors as broker_errors

    if name in ("ValueError", "RuntimeError"):
        return {"ValueError": ValueError, "RuntimeError": RuntimeError}[name]
    cls = getattr(broker_errors, name)
    assert isinstance(cls, type) and issubclass(cls, BaseException)
    return cls




def round_trip(ctx: Any) -> None:
    """The barrier before a negative assertion (instead of a fixed sleep): a request the gateway
    answers (reqCurrentTime) on the adapter's own connection, so the gateway has processed all
    the adapter sent before it, and the adapter has handled all the gateway sent before the
    answer (one socket, in order). A disconnected adapter sends nothing; then the gateway's loop
    is drained instead."""
    api = ctx.api
    if api is not None and api.connected:
        answer = api._loop.run(lambda: api.ib.reqCurrentTimeAsync(), timeout=10.0)
        assert answer is not None
    ctx.gw.call(lambda: None)
