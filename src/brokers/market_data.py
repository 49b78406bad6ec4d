"""Market data on the loop thread: streaming quotes per symbol (bounded LRU) and option chains.

* ``quote(symbol)``: qualify once (cached), keep one streaming ``reqMktData`` line per symbol;
  the first call waits on the ticker's ``updateEvent`` until bid/ask/last are present (bounded by
  the request timeout: returns what it has at the deadline); later calls read the live ticker.
  A gateway error for the line (e.g. 200, 354) ends the wait at once and drops the line; a
  market-data refusal (354 / 10089 / 10090 / 10168 / 10197: :mod:`~src.brokers.md_permissions`)
  becomes an error naming the code and ``ibkr.market_data_type``, and drops even a primed line.
* ``option_chain(symbol)``: secdef params → nearest expirations → one wildcard
  ``reqContractDetails`` per expiration (concurrent; when an answer is empty, an error or
  lacks wanted strikes, the missing contracts are built from the secdef parameters and
  qualified in one batched request: :mod:`~src.brokers.chain_fallback`) → the strikes nearest
  the money → quotes:
  streaming lines kept between calls when the chain fits the retention budget
  (:mod:`~src.brokers.chain_lines`), else snapshots through ``reqTickers`` with at most
  ``MAX_SNAPSHOT_LINES`` market-data lines in flight (IB's cap is 100 lines; our streams count
  against it); ib_insync's own throttle (``client.MaxRequests``) paces the messages. Option
  parameters and an expiration's contracts (conIds) are cached for the day: they do not change
  within a session; quotes are never cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from src.brokers import chain_fallback, md_permissions, translate
from src.brokers.chain_lines import ChainLines
from src.brokers.compat import Option as IBOption
from src.brokers.compat import Stock, qualified, require_con_id
from src.brokers.errors import (
    BrokerError,
    CompetingLiveSession,
    ContractNotFound,
    MarketDataNotPermitted,
    error_from_ib,
    is_warning,
)
from src.brokers.ib_loop import ib_request
from src.brokers.pacing import BulkPacer
from src.models.option import Option
from src.utils.clock import trading_date, wall_now
from src.utils.logger import log_debug, log_error, log_info, log_warning
from src.utils.market_calendar import first_live_expiry

if TYPE_CHECKING:
    from src.brokers.ib_client import IBKRClient

MAX_SNAPSHOT_LINES: Final = 90
MIN_SNAPSHOT_LINES: Final = 10


@dataclass
class Stream:
    """One streaming market-data line."""

    symbol: str
    contract: Any
    ticker: Any
    primed: bool = False
    waiter: asyncio.Future[None] | None = None
    error: BrokerError | None = field(default=None)


class MarketDataService:
    """Streams and option chains through ``client.ib`` (every method runs on the loop thread)."""

    def __init__(self, client: IBKRClient, max_streams: int = 50, *,
                 chain_stream_lines: int = 50, chain_stream_idle: float = 300.0) -> None:
        self.client = client
        self.settings = client.settings
        self.max_streams = max(1, max_streams)
        self.streams: OrderedDict[str, Stream] = OrderedDict()
        self.stocks: dict[str, Any] = {}  # symbol -> qualified Stock (conIds never change)
        # per day: option parameters by symbol, an expiration's contracts (listings, conIds)
        self.secdefs: dict[tuple[str, date], list[Any]] = {}
        self.expiry_contracts: dict[tuple[str, str, str, date], list[Any]] = {}
        self.unlisted: set[tuple[str, str, float, str, date]] = set()  # failed to qualify
        self.chain_lines = ChainLines(self, chain_stream_lines, chain_stream_idle)
        self.pacer = BulkPacer(lambda: self.settings.max_rate)  # leaves room for orders
        self.refusals = md_permissions.Refusals()  # snapshot / option lines IB refused

    # --- contracts ------------------------------------------------------------------------------

    async def qualify_stock(self, symbol: str) -> Any:
        cached = self.stocks.get(symbol)
        if cached is not None:
            return cached
        result = qualified(await asyncio.wait_for(
            ib_request(self.client.ib, "qualifyContracts", Stock(symbol, "SMART", "USD")),
            self.settings.request_timeout))
        if not result:
            raise ContractNotFound(f"No security definition found for {symbol}", 200)
        contract = result[0]
        self.stocks[symbol] = contract
        return contract

    # --- streams ----------------------------------------------------------------------------

    def line_count(self) -> int:
        """Streaming lines held (stock streams + retained option lines)."""
        return len(self.streams) + self.chain_lines.count()

    def publish(self) -> None:
        """Streaming lines open now (stocks + retained option lines) → the metrics gauge."""
        self.client.publish_lines()

    def _subscribe(self, symbol: str, contract: Any) -> Stream:
        while len(self.streams) >= self.max_streams:
            old_symbol, _ = next(iter(self.streams.items()))
            self.unsubscribe(old_symbol)
        while (len(self.streams) + self.chain_lines.count() >= MAX_SNAPSHOT_LINES
               and self.chain_lines.drop_lru()):
            pass  # a stock stream outranks retained option lines
        require_con_id(contract)
        md_permissions.forget_quote(self.client.ib.ticker(contract))  # a dropped line's ticker
        ticker = self.client.ib.reqMktData(contract, "", False, False)
        stream = Stream(symbol, contract, ticker)
        self.streams[symbol] = stream
        self.publish()
        log_debug(f"Market data stream opened for {symbol} ({len(self.streams)} lines)")
        return stream

    def unsubscribe(self, symbol: str) -> None:
        """Cancel and forget the stream of ``symbol`` (no-op when there is none)."""
        stream = self.streams.pop(symbol, None)
        self.publish()
        if stream is None:
            return
        if stream.waiter is not None and not stream.waiter.done():
            stream.waiter.cancel()
        try:
            if self.client.ib.isConnected() is True:
                self.client.ib.cancelMktData(stream.contract)
        except Exception as exc:  # noqa: BLE001 - the line is gone either way
            log_debug(f"cancelMktData for {symbol} failed: {exc}")

    def resubscribe_all(self) -> None:
        """Re-request every stream (after a reconnect or IB's 1101 "data lost"); retained
        option lines are released (the next chain call re-requests what it needs)."""
        self.chain_lines.drop_all()
        for symbol, stream in list(self.streams.items()):
            try:
                ib = self.client.ib  # after a reconnect the library has no line to cancel
                if stream.ticker in ib.wrapper.ticker2ReqId.get("mktData", {}):
                    with contextlib.suppress(Exception):  # (it would log an ERROR)
                        ib.cancelMktData(stream.contract)
                stream.ticker = self.client.ib.reqMktData(stream.contract, "", False, False)
                stream.primed = False
                stream.error = None
            except Exception as exc:  # noqa: BLE001
                log_warning(f"Resubscribing market data for {symbol} failed: {exc}")
        if self.streams:
            log_info(f"Resubscribed {len(self.streams)} market data streams")

    def on_error(self, req_id: int, code: int, message: str) -> bool:
        """A gateway error: if it belongs to one of our streams, end its wait. True if handled.
        A market-data refusal is remembered for the snapshot / option line it refused and
        drops a stock stream at once (a refused line stays silent forever)."""
        if is_warning(code):
            return False
        ticker = self._ticker_for_req(req_id)
        refused = None if ticker is None else md_permissions.refusal(
            code, message, md_permissions.label(ticker), self.settings.market_data_type)
        con_id = getattr(getattr(ticker, "contract", None), "conId", None)
        if refused is not None and isinstance(con_id, int):
            self.refusals.add(con_id, refused)
        if self.chain_lines.on_error(req_id):
            return True
        stream = self._stream_for_req(req_id)
        if stream is None:
            return refused is not None
        stream.error = refused or error_from_ib(code, message)
        if stream.waiter is not None and not stream.waiter.done():
            stream.waiter.set_exception(stream.error)
        elif refused is not None:  # a primed stream: gone now, the next quote asks again
            log_error(f"Market data stream for {stream.symbol} dropped: {refused}")
            self.unsubscribe(stream.symbol)
        return True

    def _ticker_for_req(self, req_id: int) -> Any:
        table = getattr(getattr(self.client.ib, "wrapper", None), "reqId2Ticker", None)
        return table.get(req_id) if isinstance(table, dict) else None

    def _stream_for_req(self, req_id: int) -> Stream | None:
        ticker = self._ticker_for_req(req_id)
        if ticker is None:
            return None
        for stream in self.streams.values():
            if stream.ticker is ticker:
                return stream
        return None

    async def _prime(self, stream: Stream) -> None:
        """Wait (bounded) until the stream's ticker has bid/ask/last, or an error ends it."""
        if stream.primed or translate.has_quote(stream.ticker):
            stream.primed = True
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        stream.waiter = waiter
        ticker = stream.ticker

        def on_update(t: Any) -> None:
            if translate.has_quote(t) and not waiter.done():
                waiter.set_result(None)

        event = getattr(ticker, "updateEvent", None)
        if event is not None:
            event += on_update
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.settings.request_timeout)
        except TimeoutError:
            log_debug(f"No full quote for {stream.symbol} within the timeout; partial data")
        except BrokerError:
            pass  # stream.error holds it: quote() drops the line and raises
        finally:
            stream.waiter = None
            stream.primed = True
            if event is not None:
                event -= on_update

    async def quote(self, symbol: str) -> dict[str, Any]:
        """The contract's market-data dict for ``symbol`` (raises ``BrokerError``)."""
        stream = self.streams.get(symbol)
        if stream is None:
            contract = await self.qualify_stock(symbol)
            stream = self.streams.get(symbol) or self._subscribe(symbol, contract)
        else:
            self.streams.move_to_end(symbol)
        await self._prime(stream)
        if stream.error is not None:
            error = stream.error
            self.unsubscribe(symbol)
            raise error
        return translate.market_data(symbol, stream.ticker, wall_now(self.client.clock))

    # --- option chains ----------------------------------------------------------------------

    async def option_chain(self, symbol: str) -> list[Option]:
        settings = self.settings
        ib = self.client.ib
        stock = await self.qualify_stock(symbol)
        key = (symbol, trading_date(self.client.clock))  # option parameters: cached per NY day
        chains = self.secdefs.get(key)
        if chains is None:
            found = await asyncio.wait_for(
                ib_request(ib, "reqSecDefOptParams", symbol, "", "STK", stock.conId),
                settings.request_timeout)
            chains = list(found or [])
            if chains:
                self.secdefs = {k: v for k, v in self.secdefs.items() if k[1] == key[1]}
                self.secdefs[key] = chains
        smart = [c for c in chains if c.exchange == "SMART"] or chains
        if not smart:
            raise ContractNotFound(f"No option chain found for {symbol}", 200)
        preferred = [c for c in smart if c.tradingClass == symbol] or smart
        trading_class = preferred[0].tradingClass
        expirations = translate.nearest_expirations(
            [e for c in preferred for e in c.expirations], first_live_expiry(self.client.clock),
            settings.chain_expirations)
        if not expirations:
            raise ContractNotFound(f"No future expirations for {symbol}", 200)
        all_strikes = sorted({float(s) for c in preferred for s in c.strikes})
        price = await self._underlying_price(symbol, all_strikes)
        details = await asyncio.gather(
            *(self._expiry_contracts(symbol, exp, trading_class) for exp in expirations),
            return_exceptions=True)
        listings: dict[str, list[Any]] = {}
        for exp, result in zip(expirations, details, strict=True):
            if isinstance(result, BaseException):
                log_warning(f"Option contracts for {symbol} {exp} unavailable: {result}")
                result = []
            listings[exp] = chain_fallback.usable(result)
        await self._fill_from_secdef(symbol, listings, all_strikes, price, preferred[0])
        wanted = [c for exp in expirations for c in self._pick(listings[exp], price)]
        self.refusals.clear([c.conId for c in wanted])
        budget = MAX_SNAPSHOT_LINES - MIN_SNAPSHOT_LINES
        if self.chain_lines.make_room(symbol, len(wanted), budget):
            tickers = await self.chain_lines.tickers(symbol, wanted)
        else:
            self.chain_lines.drop(symbol)
            tickers = await self._snapshots(wanted)
        options: list[Option] = []
        for contract, ticker in zip(wanted, tickers, strict=True):
            if ticker is None:
                continue
            try:
                options.append(translate.option_from_ticker(ticker, contract, symbol))
            except (ValueError, TypeError, AttributeError) as exc:
                log_warning(f"Skipping option {getattr(contract, 'localSymbol', contract)}: {exc}")
        refused = self.refusals.take([c.conId for c in wanted])
        if refused and not options:
            raise refused[0]
        if refused:
            log_warning(f"Option chain {symbol}: {len(refused)} options refused: {refused[0]}")
        options.sort(key=lambda o: (o.expiration, o.option_type, o.strike))
        log_info(f"Retrieved {len(options)} options for {symbol}")
        return options

    async def _underlying_price(self, symbol: str, strikes: list[float]) -> float:
        try:
            await self.quote(symbol)
            stream = self.streams.get(symbol)
            price = translate.underlying_price(stream.ticker) if stream else None
        except (MarketDataNotPermitted, CompetingLiveSession):
            raise  # no data for the symbol: the chain fails at once, naming why
        except BrokerError as exc:
            log_warning(f"No underlying quote for {symbol}: {exc}")
            price = None
        if price is None:
            if not strikes:
                raise ContractNotFound(f"No strikes listed for {symbol}", 200)
            price = float(statistics.median(strikes))
            log_warning(f"No price for {symbol}: centring strikes on {price}")
        return price

    async def _expiry_contracts(self, symbol: str, expiry: str, trading_class: str) -> list[Any]:
        """All option contracts of one expiration: ONE wildcard contract-details request, cached
        for the day (listed contracts and their conIds do not change within a session)."""
        key = (symbol, expiry, trading_class, trading_date(self.client.clock))
        cached = self.expiry_contracts.get(key)
        if cached is not None:
            return cached
        contracts = await self._request_expiry_contracts(symbol, expiry, trading_class)
        if contracts:
            self.expiry_contracts = {k: v for k, v in self.expiry_contracts.items()
                                     if k[3] == key[3]}
            self.expiry_contracts[key] = contracts
        return contracts

    async def _fill_from_secdef(self, symbol: str, listings: dict[str, list[Any]],
                                strikes: list[float], price: float, chain: Any) -> None:
        """Add the wanted (strike, right) pairs a wildcard answer lacks, built from the secdef
        parameters and qualified in one batched request (:mod:`~src.brokers.chain_fallback`)."""
        today = trading_date(self.client.clock)  # the failed-to-qualify set lasts one NY day
        wanted = translate.nearest_strikes(strikes, price, self.settings.chain_strikes)
        trading_class = chain_fallback.text_field(getattr(chain, "tradingClass", ""))
        multiplier = chain_fallback.text_field(getattr(chain, "multiplier", ""))
        self.unlisted = {k for k in self.unlisted if k[-1] == today}
        built: list[Any] = []
        for exp, contracts in listings.items():
            pairs = [p for p in chain_fallback.missing_pairs(contracts, wanted)
                     if (symbol, exp, *p, today) not in self.unlisted]
            built += chain_fallback.build(symbol, exp, pairs, trading_class, multiplier)
        if not built:
            return
        log_info(f"Option chain {symbol}: qualifying {len(built)} contracts from secdef params")
        try:
            qualified = await chain_fallback.qualify(self.client.ib, self.pacer, built,
                                                     self.settings.request_timeout)
        except Exception as exc:  # noqa: BLE001 - the chain keeps what the wildcard gave
            log_warning(f"Qualifying option contracts for {symbol} failed: {exc}")
            return
        kept = {id(c) for c in qualified}
        for c in built:
            exp = c.lastTradeDateOrContractMonth
            if id(c) in kept:
                listings[exp].append(c)
            else:
                self.unlisted.add((symbol, exp, float(c.strike), c.right, today))
        for exp, contracts in listings.items():
            if contracts:  # the key _expiry_contracts reads
                key = (symbol, exp, getattr(chain, "tradingClass", ""), today)
                self.expiry_contracts[key] = contracts

    async def _request_expiry_contracts(self, symbol: str, expiry: str,
                                        trading_class: str) -> list[Any]:
        query = IBOption(symbol, expiry, exchange="SMART", currency="USD")
        if trading_class:
            query.tradingClass = trading_class
        await self.pacer.slot()
        details = await asyncio.wait_for(
            ib_request(self.client.ib, "reqContractDetails", query), self.settings.request_timeout)
        return [d.contract for d in details or [] if d.contract is not None]

    def _pick(self, contracts: list[Any], price: float) -> list[Any]:
        """Calls and puts of the ``chain_strikes`` strikes nearest ``price`` (both rights)."""
        by_right: dict[str, set[float]] = {"C": set(), "P": set()}
        for c in contracts:
            if c.right in by_right:
                by_right[c.right].add(float(c.strike))
        both = by_right["C"] & by_right["P"]
        pool = both or (by_right["C"] | by_right["P"])
        chosen = set(translate.nearest_strikes(pool, price, self.settings.chain_strikes))
        seen: set[tuple[str, float]] = set()
        picked = []
        for c in sorted(contracts, key=lambda c: (c.right, float(c.strike))):
            key = (c.right, float(c.strike))
            if float(c.strike) in chosen and c.right in by_right and key not in seen:
                seen.add(key)
                picked.append(c)
        return picked

    async def _snapshots(self, contracts: list[Any]) -> list[Any]:
        """Snapshot tickers, concurrently, at most ``MAX_SNAPSHOT_LINES`` - streams in flight."""
        settings, ib = self.settings, self.client.ib
        held = len(self.streams) + self.chain_lines.count()
        lines = max(MIN_SNAPSHOT_LINES, MAX_SNAPSHOT_LINES - held)
        gate = asyncio.Semaphore(lines)

        async def one(contract: Any) -> Any:
            async with gate:
                await self.pacer.slot()
                try:
                    tickers = await asyncio.wait_for(
                        ib_request(ib, "reqTickers", contract), settings.request_timeout)
                except TimeoutError:
                    partial = ib.ticker(contract)
                    log_debug(f"Snapshot timeout for {getattr(contract, 'localSymbol', '')}")
                    return partial
                if self.refusals.has(contract.conId):
                    return None  # refused: an empty ticker, not a quote of zeros
                return tickers[0] if tickers else None

        results = await asyncio.gather(*(one(c) for c in contracts), return_exceptions=True)
        out: list[Any] = []
        for contract, r in zip(contracts, results, strict=True):
            if isinstance(r, BaseException):
                log_warning(f"Snapshot for {getattr(contract, 'localSymbol', '')} failed: {r}")
                out.append(None)
            else:
                out.append(r)
        return out
