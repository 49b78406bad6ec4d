"""Running the gateway: ``GatewayRuntime`` (everything on one loop) and ``SimulatedGateway``
(the runtime in its own thread, with the fault-injection API tests use)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from src.simulator.entitlements import Entitlements
from src.simulator.market import Market, load_universe
from src.simulator.marketdata import MarketData
from src.simulator.restarts import ConnectionAttempt, RestartFaults
from src.simulator.server import Engine, GatewayServer
from src.utils.clock import Clock, clock_for

log = logging.getLogger("src.simulator.harness")

T = TypeVar("T")
EngineFactory = Callable[[Market, list[str]], Engine]
CALL_TIMEOUT = 5.0


def default_engine(market: Market, accounts: list[str]) -> Engine:
    from src.simulator.orders import OrderEngine

    engine: Engine = OrderEngine(market, accounts)
    return engine


class GatewayRuntime:
    """Market + order engine + market data + server, all owned by the running loop."""

    def __init__(self, *, port: int = 0, seed: int = 0, latency_ms: float = 0.0,
                 accounts: Sequence[str] = ("DU1234567",), pacing: bool = True,
                 universe: str | Path | Mapping[str, Any] | None = None,
                 step_seconds: float | None = None, max_lines: int = 100, max_rate: int = 50,
                 engine_factory: EngineFactory | None = None, farm_notices: bool = True,
                 today: date | None = None, clock: Clock | None = None) -> None:
        uni = dict(universe) if isinstance(universe, Mapping) else load_universe(universe)
        if step_seconds is not None:
            if step_seconds <= 0:
                raise ValueError("step_seconds must be > 0")
            uni["step_seconds"] = step_seconds
        self.market = Market(uni, seed=seed, clock=clock_for(today, clock))
        self.accounts = list(accounts)
        self.engine = (engine_factory or default_engine)(self.market, self.accounts)
        self.marketdata = MarketData(self.market, max_lines=max_lines)
        self.marketdata.entitlements = Entitlements(uni["stocks"])  # `market_data:` per stock
        self.loop = asyncio.get_running_loop()
        self.server = GatewayServer(
            self.engine, self.accounts, components=[self.marketdata], port=port,
            latency_ms=latency_ms, pacing=pacing, max_rate=max_rate, farm_notices=farm_notices,
            loop=self.loop, clock=self.market.clock)
        self.restarts = RestartFaults(self.server)
        self._step_handle: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        await self.server.start()
        self._schedule_step()

    def _schedule_step(self) -> None:
        self._step_handle = self.loop.call_later(self.market.step_seconds, self._step)

    def _step(self) -> None:
        try:
            if not self.server.silent:
                self.market.step()
                self.server.on_step()
        except Exception:
            log.exception("market step failed")
        self._schedule_step()

    def stop(self) -> None:
        if self._step_handle is not None:
            self._step_handle.cancel()
            self._step_handle = None
        self.restarts.cancel()
        self.server.kill()

    async def restart(self) -> None:
        self.server.kill()
        await self.restarts.release()  # listening again (a token reset's relay closed first)

    def stats(self) -> dict[str, Any]:
        return {
            "messages_received": self.server.received_per_client(),
            "pacing_violations": self.server.pacing_violations,
            "max_market_data_lines": self.marketdata.max_lines_seen,
            "market_data_lines": len(self.marketdata.lines),
            "snapshots": self.marketdata.snapshots_served,
            "sessions": len(self.server.sessions()),
            "listening": self.server.listening,
        }


class SimulatedGateway:
    """The simulated IB Gateway in its own thread::

        with SimulatedGateway(port=0, seed=1, accounts=["DU1234567"]) as gw:
            ib.connect(gw.host, gw.port, clientId=1)
    """

    host = "127.0.0.1"

    def __init__(self, port: int = 0, *, seed: int = 0, latency_ms: float = 0.0,
                 accounts: Sequence[str] = ("DU1234567",), pacing: bool = True,
                 universe: str | Path | Mapping[str, Any] | None = None,
                 step_seconds: float | None = None, max_lines: int = 100, max_rate: int = 50,
                 engine_factory: EngineFactory | None = None, farm_notices: bool = True,
                 today: date | None = None, clock: Clock | None = None) -> None:
        self.clock: Clock = clock_for(today, clock)
        self._kwargs: dict[str, Any] = dict(
            port=port, seed=seed, latency_ms=latency_ms, accounts=list(accounts),
            pacing=pacing, universe=universe, step_seconds=step_seconds, max_lines=max_lines,
            max_rate=max_rate, engine_factory=engine_factory, farm_notices=farm_notices,
            clock=self.clock)
        if latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runtime: GatewayRuntime | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SimulatedGateway:
        if self._thread is not None:
            raise RuntimeError("gateway already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="ibkr-sim", daemon=True)
        self._thread.start()

        async def boot() -> GatewayRuntime:
            rt = GatewayRuntime(**self._kwargs)
            await rt.start()
            return rt

        try:
            self._runtime = asyncio.run_coroutine_threadsafe(boot(), loop).result(CALL_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runtime is not None and loop.is_running():
            try:
                self.call(self._runtime.stop)
            except Exception:
                log.exception("stopping the gateway failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CALL_TIMEOUT)
        self._loop = self._thread = self._runtime = None

    def __enter__(self) -> SimulatedGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------------
    @property
    def runtime(self) -> GatewayRuntime:
        if self._runtime is None:
            raise RuntimeError("gateway not started")
        return self._runtime

    @property
    def port(self) -> int:
        return self.runtime.server.port

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    @property
    def market(self) -> Market:
        return self.runtime.market

    @property
    def requests(self) -> list[tuple[int, int, list[str]]]:
        """Recorded incoming messages (client_id, msg_id, fields after msg id): a copy."""
        return self.runtime.server.requests()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the gateway's loop thread and return its result (5 s max)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("gateway not started")
        if threading.current_thread() is self._thread:
            return fn(*args)
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(*args))
            except BaseException as e:
                fut.set_exception(e)

        loop.call_soon_threadsafe(run)
        return fut.result(CALL_TIMEOUT)

    # -- fault injection -------------------------------------------------------------------
    def kill(self) -> None:
        """Crash: close the listener and all sockets; engine and market state survive."""
        self.call(self.runtime.server.kill)

    def restart(self) -> None:
        """(Re)open the listener on the same port, state kept (kills first if running)."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self.runtime.restart(), self._loop).result(CALL_TIMEOUT)

    def drop_clients(self) -> None:
        self.call(self.runtime.server.drop_clients)

    def daily_restart(self, pause: float = 1.0, mode: str = "refuse") -> None:
        """IB Gateway's daily auto-restart: every client closed with no error code, down for
        ``pause`` seconds (connections ``"refuse"``d, or accepted and ``"close"``d as behind
        ib-gateway-docker's socat), then back with fresh sessions; orders and executions kept."""
        self._await(self.runtime.restarts.daily_restart(pause, mode))

    def token_reset(self, mode: str = "close") -> None:
        """The weekly token reset: down (as in ``daily_restart``) until :meth:`release`."""
        self._await(self.runtime.restarts.token_reset(mode))

    def release(self) -> None:
        """End a token reset (or a daily restart's pause) now: listening again."""
        self._await(self.runtime.restarts.release())

    @property
    def restart_state(self) -> str:
        """``"up"``, ``"restarting"`` (daily restart) or ``"logged_out"`` (token reset)."""
        return self.call(lambda: self.runtime.restarts.state)

    def connection_attempts(self) -> list[ConnectionAttempt]:
        """Every TCP connection accepted (served or dropped while down), with loop times."""
        return self.call(lambda: list(self.runtime.restarts.attempts))

    def _await(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT)

    def set_latency(self, ms: float) -> None:
        self.call(self.runtime.server.set_latency, ms)

    def broadcast_error(self, code: int, msg: str | None = None) -> None:
        self.call(self.runtime.server.broadcast_error, code, msg)

    def go_silent(self, seconds: float) -> None:
        self.call(self.runtime.server.go_silent, seconds)

    def refuse_wildcard_details(self, symbol: str, mode: str | None = "empty") -> None:
        """Wildcard option contract details for ``symbol`` answer nothing ("empty"), error 321
        ("error") or only the 3 lowest strikes ("truncate"); ``None`` heals."""
        self.call(self.runtime.server.refuse_wildcard_details, symbol, mode)

    def set_fill_rules(self, *, partial: bool | None = None, max_slice: int | None = None,
                       exec_before_open_order: bool | None = None,
                       corrections: bool | None = None,
                       late_commissions: bool | None = None) -> None:
        """Switch the engine's fill behaviour (``src.simulator.fills.FillRules``; ``None``
        leaves a switch as it is): ``partial`` fills in seeded slices of 1..``max_slice`` lots
        (0: up to what remains), one per market step; ``exec_before_open_order`` sends a fill
        made at placement before the order's first openOrder/orderStatus; ``corrections``
        corrects each order's first part (execId ``.01`` → ``.02``) on the next step;
        ``late_commissions`` sends commission reports one market step after their fills."""
        if max_slice is not None and max_slice < 0:
            raise ValueError(f"max_slice must be >= 0, got {max_slice!r}")

        def apply() -> None:
            engine: Any = self.runtime.engine  # the OrderEngine
            rules = engine.fill_rules
            for name, value in (("partial", partial), ("max_slice", max_slice),
                                ("exec_before_open_order", exec_before_open_order),
                                ("corrections", corrections),
                                ("late_commissions", late_commissions)):
                if value is not None:
                    setattr(rules, name, value)

        self.call(apply)

    def step(self, count: int = 1) -> None:
        """Run ``count`` market steps now (prices move, resting orders fill a part each) —
        for tests that start the gateway with a long ``step_seconds`` and drive it."""
        def run() -> None:
            for _ in range(count):
                self.runtime.market.step()
                self.runtime.server.on_step()

        self.call(run)

    # -- cancel races, order notices, price increments (src/simulator/cancel_races.py,
    #    increments.py; docs/simulator.md "Real IB's messy parts") ------------------------
    def hold_order_reports(self, on: bool = True) -> None:
        """``True``: what the gateway sends about orders stays "on the wire" until the client
        cancels that order (the cancel's answer comes after the held executions, before the
        held status); ``False`` delivers everything held and stops holding."""
        from src.simulator import cancel_races

        def switch() -> None:
            if on:
                self.engine.races.all_orders = True
            else:
                cancel_races.release(self.engine)

        self.call(switch)

    def race_cancels(self, on: bool = True, every: int = 1) -> None:
        """``True``: a cancel of a live order arrives while its fill is in flight: the fill
        wins and the gateway answers 10148 after the executions, before the Filled status —
        for every ``every``-th cancel of a live order (1: all of them)."""
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every: a positive whole number of cancels, not {every!r}")

        def switch() -> None:
            self.engine.races.fill_on_cancel = bool(on)
            self.engine.races.race_every = every

        self.call(switch)

    def send_order_notice(self, client_id: int, order_id: int, code: int) -> None:
        """Send informational ``code`` (399, 404, 2109, 10349) on a live order, IB's text."""
        from src.simulator import cancel_races

        self.call(cancel_races.send_notice, self.engine, client_id, order_id, code)

    def order_notices_on_place(self, codes: Sequence[int] = ()) -> None:
        """Send these informational codes on every order accepted from now on (``()``: none)."""
        from src.simulator import cancel_races

        for code in codes:
            cancel_races.notice_text(code)  # unknown codes are refused here
        self.call(setattr, self.engine.races, "place_notices", tuple(codes))

    def enforce_price_increments(self, on: bool = True) -> None:
        """Error 110 for a limit price off its contract's minimum increment (default on)."""
        self.call(setattr, self.engine, "enforce_increments", bool(on))

    def force_price_error(self, count: int = 1) -> None:
        """The next ``count`` new orders get error 110 whatever their price (not accepted)."""
        if count < 0:
            raise ValueError("count must be >= 0")
        self.call(setattr, self.engine, "force_110", int(count))

    def set_price(self, symbol: str, price: float) -> None:
        self.call(self.runtime.market.set_price, symbol, price)

    def set_entitlement(self, symbol: str, level: str, code: int | None = None,
                        options: str | None = None) -> None:
        """Market-data permission of ``symbol`` and its options: "live" (default), "delayed"
        (delayed only) or "none"; ``code`` picks IB's refusal of a live request, ``options`` a
        level of its own for the options (see :mod:`src.simulator.entitlements`). Applies to
        new requests."""
        self.call(self.runtime.marketdata.set_entitlement, symbol, level, code, options)

    def set_competing_session(self, on: bool = True) -> None:
        """A competing live session: every market-data request gets 10197, open lines one
        10197 and silence; ``False`` ends it (new requests are served again)."""
        self.call(self.runtime.marketdata.set_competing_session, on)

    def stats(self) -> dict[str, Any]:
        return self.call(self.runtime.stats)
