"""The Trader: configuration, broker, risk, execution, and the signal thread that drives them.

The shape is the seeds' (phase 5): ``Trader(config_file)`` loads config.yaml, builds the broker
through :func:`~src.brokers.get_broker_api` (``USE_IB_INSYNC`` picks the real adapter or the
placeholder), connects, and wires a :class:`RiskManager` and a :class:`TradeExecutor` to it.
``start()`` runs ``_process_signals_thread``: take a signal (short timeout) → ``process_signal``
→ ``broker.handle_callbacks()`` → refresh positions → ``process_queued_trades()`` → wait
``LOOP_INTERVAL``. ``stop()`` ends the thread within a bounded time and disconnects.

Signal sources (the seeds' scanner is out of scope) call :meth:`Trader.submit_signal` from any
thread; that is the seam where a scanner plugs in. The Trader depends on the ``BrokerApi``
protocol only, so any broker (placeholder, adapter, a test double) can be injected.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from src.app.config import Config, setting
from src.app.executor import TradeExecutor, TradeRecord
from src.app.risk import RiskManager
from src.app.signals import Signal
from src.brokers.base import BrokerApi
from src.utils.clock import Clock
from src.utils.logger import log_debug, log_error, log_info, log_warning

Outcome = tuple[str, Any]  # (status, result): REJECTED/reason, PLACED|QUEUED|FAILED/TradeRecord


class Trader:
    """Runs the trading loop against one broker (see the module docstring)."""

    def __init__(self, config_file: str = "config.yaml", *, config: Config | None = None,
                 broker: BrokerApi | None = None, connect: bool = True,
                 clock: Clock | None = None) -> None:
        self.config = config if config is not None else Config.from_yaml(config_file)
        log_info(f"Initialized trader with {self.config.TRADING_MODE} mode")
        use_ib_insync = self.config.USE_IB_INSYNC
        if broker is None:
            from src.brokers import get_broker_api

            broker = get_broker_api(self.config, use_ib_insync=use_ib_insync, clock=clock)
        self.broker_api: BrokerApi = broker
        if connect and not self.broker_api.connected:
            connected = self.broker_api.connect()
            if not connected:
                log_error("Failed to connect to IBKR, some functionality may be limited")
        # Scanner seam: a signal source (scanner, strategy, operator) calls submit_signal().
        self.scanner: Any = None
        self.risk_manager = RiskManager(self.config, self.broker_api)
        self.trade_executor = TradeExecutor(self.config, self.broker_api, self.risk_manager,
                                            clock=clock)
        self.loop_interval: float = setting(self.config, "LOOP_INTERVAL", 0.1)
        self.symbols: tuple[str, ...] = setting(self.config, "SYMBOLS", ("AAPL",))
        if not self.symbols:
            raise ValueError("trader.symbols must list at least one symbol")
        self.signal_queue: queue.Queue[Signal] = queue.Queue()
        self.processing = False
        self.processing_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._outcomes: dict[str, Outcome] = {}
        self._outcome_ready = threading.Condition()

    @property
    def broker(self) -> BrokerApi:
        return self.broker_api

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the signal thread (idempotent)."""
        if self.processing_thread is not None and self.processing_thread.is_alive():
            return
        self._stop.clear()
        self.processing = True
        self.processing_thread = threading.Thread(
            target=self._process_signals_thread, name="trader-signals", daemon=True)
        self.processing_thread.start()
        log_info("Trader started")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread (joined within ``timeout`` s) and disconnect; True if it ended."""
        self.processing = False
        self._stop.set()
        ended = True
        thread = self.processing_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            ended = not thread.is_alive()
            if not ended:
                log_error(f"Signal thread did not stop within {timeout:.1f}s")
        self.processing_thread = None
        try:
            self.broker_api.disconnect()
        except Exception as e:  # disconnect never raises by contract; be safe anyway
            log_error(f"Error disconnecting broker: {e}")
        log_info("Trader stopped")
        return ended

    def __enter__(self) -> Trader:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- signals ---------------------------------------------------------------------------

    def submit_signal(self, symbol: str | Signal, direction: str = "LONG", contracts: int = 1,
                      price_type: str = "LIMIT", limit_price: float | None = None) -> Signal:
        """Queue a signal for the signal thread (any thread); ValueError if it is malformed."""
        signal = symbol if isinstance(symbol, Signal) else Signal(
            symbol=symbol, direction=direction, contracts=contracts, price_type=price_type,
            limit_price=limit_price)
        self.signal_queue.put(signal)
        log_debug(f"Signal {signal.id} queued: {signal.symbol} {signal.direction} "
                  f"x{signal.contracts} {signal.price_type}")
        return signal

    def process_signal(self, signal: Signal) -> Outcome:
        """Risk-check ``signal`` and execute it: ``(status, result)``. A signal for a symbol
        not in ``trader.symbols`` (the symbols this Trader watches) is rejected."""
        if signal.symbol not in self.symbols:
            ok, reason = False, (f"symbol {signal.symbol!r} is not in trader.symbols "
                                 f"{list(self.symbols)}")
        else:
            ok, reason = self.risk_manager.check(signal)
        if not ok:
            log_warning(f"Signal {signal.id} rejected by risk: {reason}")
            outcome: Outcome = ("REJECTED", reason)
        else:
            record: TradeRecord = self.trade_executor.execute(signal)
            outcome = (record.status, record)
        with self._outcome_ready:
            self._outcomes[signal.id] = outcome
            self._outcome_ready.notify_all()
        return outcome

    def wait_for_outcome(self, signal: Signal | str, timeout: float = 10.0) -> Outcome | None:
        """The outcome of a submitted signal once processed, or None after ``timeout`` s."""
        signal_id = signal.id if isinstance(signal, Signal) else signal
        with self._outcome_ready:
            self._outcome_ready.wait_for(lambda: signal_id in self._outcomes, timeout)
            return self._outcomes.get(signal_id)

    def _process_signals_thread(self) -> None:
        """Background thread: signals, broker callbacks, positions, queued trades."""
        poll = min(self.loop_interval, 0.5)
        while self.processing and not self._stop.is_set():
            try:
                try:
                    signal = self.signal_queue.get(timeout=poll)
                except queue.Empty:
                    pass
                else:
                    try:
                        status, result = self.process_signal(signal)
                        log_debug(f"Signal processing result: {status} - {result}")
                    finally:
                        self.signal_queue.task_done()
                if self._stop.is_set():
                    break
                self.broker_api.handle_callbacks()
                self.risk_manager.update_positions_from_broker()
                self.trade_executor.process_queued_trades()
            except Exception as e:
                log_error(f"Error in signal processing thread: {e}")
            self._stop.wait(self.loop_interval)
