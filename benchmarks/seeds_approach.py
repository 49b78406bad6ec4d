"""A faithful re-implementation of the seeds' serial market-data / option-chain approach.

Source: shared/seeds/000_d999f60a3fc8a091.txt, ``get_market_data`` and ``get_option_chain``
(Phase 3, "Implement Market Data Methods"). The control flow is copied as written:

* market data: qualify the stock, ``reqMktData`` (streaming), poll in 0.1 s ``ib.sleep``
  steps (up to 3 s) until last/bid/ask appear, read the ticker, ``cancelMktData``;
* option chain: qualify the stock, ``reqContractDetails``, ``reqSecDefOptParams``, take
  ``chains[0]``, call ``get_market_data`` for the underlying, then for each of the first 4
  expirations × (C, P) × the 6 strikes nearest the money (within ±30 %): qualify the option,
  ``reqMktData``, poll 0.1 s steps (up to 1 s), build the ``Option``, ``cancelMktData`` —
  one contract at a time.

Deviations, each required to make it run against the real ib_insync 0.9.86 at all (see
docs/contract.md, "bugs in the seeds' code"):

1. ``ticker.modelGreeks.rho`` does not exist on ib_insync's ``OptionComputation``; the seeds'
   code raises AttributeError there, skips every option and returns an empty chain. rho is
   taken as 0.0 instead (the Option model's default), which keeps the seeds' timing intact.
2. ``max_expirations`` / ``max_strikes`` are parameters (defaults 4 / 6 as in the seeds).
3. The seeds' ``self.connected`` check is kept as ``ib.isConnected()``.

It drives a plain synchronous ``IB`` on the calling thread, exactly like the seeds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from src.brokers.compat import IB, Contract, Stock, util
from src.brokers.compat import Option as IBOption
from src.models.option import Option
from src.utils.logger import log_error, log_info, log_warning


class SeedsApproach:
    """The seeds' ``IBKRIBInsyncApi.get_market_data`` / ``get_option_chain``, unchanged in kind."""

    def __init__(self, ib: IB, max_expirations: int = 4, max_strikes: int = 6) -> None:
        self.ib = ib
        self.max_expirations = max_expirations
        self.max_strikes = max_strikes

    @property
    def connected(self) -> bool:
        return bool(self.ib.isConnected())

    def get_market_data(self, symbol: str) -> dict[str, Any]:
        if not self.connected:
            log_warning("Not connected to IBKR when requesting market data")
            return {"symbol": symbol, "error": "Not connected"}
        try:
            contract: Contract = Stock(symbol, "SMART", "USD")
            try:
                qualified_contracts = self.ib.qualifyContracts(contract)
                if not qualified_contracts:
                    log_error(f"Could not qualify contract for {symbol}")
                    return {"symbol": symbol, "error": "Invalid symbol"}
                contract = qualified_contracts[0]
            except Exception as e:
                log_error(f"Error qualifying contract for {symbol}: {e}")
                return {"symbol": symbol, "error": f"Invalid symbol: {e}"}

            ticker = self.ib.reqMktData(contract)
            timeout = 3
            for _ in range(timeout * 10):  # check every 0.1 seconds
                self.ib.sleep(0.1)
                if not (util.isNan(ticker.last) and util.isNan(ticker.bid)
                        and util.isNan(ticker.ask)):
                    break

            data = {
                "symbol": symbol,
                "timestamp": datetime.now().isoformat(),
                "last": ticker.last if not util.isNan(ticker.last) else None,
                "bid": ticker.bid if not util.isNan(ticker.bid) else None,
                "ask": ticker.ask if not util.isNan(ticker.ask) else None,
                "volume": ticker.volume if not util.isNan(ticker.volume) else None,
                "high": ticker.high if not util.isNan(ticker.high) else None,
                "low": ticker.low if not util.isNan(ticker.low) else None,
                "close": ticker.close if not util.isNan(ticker.close) else None,
            }
            self.ib.cancelMktData(contract)
            return data
        except Exception as e:
            log_error(f"Error getting market data for {symbol}: {e}")
            return {"symbol": symbol, "error": str(e)}

    def get_option_chain(self, symbol: str) -> list[Option]:  # noqa: C901 - the seeds' shape
        if not self.connected:
            log_error("Not connected to IBKR")
            return []
        try:
            contract: Contract = Stock(symbol, "SMART", "USD")
            try:
                qualified_contracts = self.ib.qualifyContracts(contract)
                if not qualified_contracts:
                    log_error(f"Could not qualify contract for {symbol}")
                    return []
                contract = qualified_contracts[0]
            except Exception as e:
                log_error(f"Error qualifying contract for {symbol}: {e}")
                return []

            details = self.ib.reqContractDetails(contract)
            if not details:
                log_error(f"No contract details found for {symbol}")
                return []

            chains = self.ib.reqSecDefOptParams(
                underlyingSymbol=symbol, futFopExchange="",
                underlyingSecType="STK", underlyingConId=contract.conId)
            if not chains:
                log_error(f"No option chains found for {symbol}")
                return []
            chain = chains[0]

            market_data = self.get_market_data(symbol)
            current_price = market_data.get("last")
            if current_price is None:
                current_price = market_data.get("bid", 0)
                if current_price is None:
                    current_price = market_data.get("ask", 100.0)
                    if current_price is None:
                        current_price = 100.0

            options: list[Option] = []
            max_expirations = self.max_expirations
            max_strikes_per_expiry_and_type = self.max_strikes

            for expiration in chain.expirations[:max_expirations]:
                for right in ["C", "P"]:
                    price_range = 0.3
                    min_strike = current_price * (1 - price_range)
                    max_strike = current_price * (1 + price_range)
                    relevant_strikes = [s for s in chain.strikes if min_strike <= s <= max_strike]
                    if len(relevant_strikes) > max_strikes_per_expiry_and_type:
                        relevant_strikes.sort(key=lambda x: abs(x - current_price))
                        relevant_strikes = relevant_strikes[:max_strikes_per_expiry_and_type]
                        relevant_strikes.sort()

                    for strike in relevant_strikes:
                        option_contract = IBOption(
                            symbol=symbol, lastTradeDateOrContractMonth=expiration,
                            strike=strike, right=right, exchange=chain.exchange)
                        try:
                            qualified_options = self.ib.qualifyContracts(option_contract)
                            if not qualified_options:
                                continue
                            qualified_option = qualified_options[0]

                            ticker = self.ib.reqMktData(qualified_option, "", False, False)
                            timeout = 1
                            for _ in range(timeout * 10):
                                self.ib.sleep(0.1)
                                if not (util.isNan(ticker.last) and util.isNan(ticker.bid)
                                        and util.isNan(ticker.ask)):
                                    break

                            exp_date = datetime.strptime(expiration, "%Y%m%d").date()
                            implied_vol = (ticker.impliedVolatility
                                           if hasattr(ticker, "impliedVolatility")
                                           and not util.isNan(ticker.impliedVolatility)
                                           else 0.0)
                            delta = gamma = theta = vega = rho = 0.0
                            greeks = ticker.modelGreeks if hasattr(ticker, "modelGreeks") else None
                            if greeks:
                                delta = _num(greeks.delta)
                                gamma = _num(greeks.gamma)
                                theta = _num(greeks.theta)
                                vega = _num(greeks.vega)
                                rho = 0.0  # seeds: greeks.rho — no such field in ib_insync

                            option = Option(
                                symbol=qualified_option.localSymbol,
                                underlying=symbol,
                                option_type="call" if right == "C" else "put",
                                strike=strike,
                                expiration=exp_date,
                                bid=ticker.bid if not util.isNan(ticker.bid) else 0.0,
                                ask=ticker.ask if not util.isNan(ticker.ask) else 0.0,
                                last=ticker.last if not util.isNan(ticker.last) else 0.0,
                                volume=int(ticker.volume) if not util.isNan(ticker.volume) else 0,
                                open_interest=(int(ticker.openInterest)
                                               if hasattr(ticker, "openInterest")
                                               and not util.isNan(ticker.openInterest) else 0),
                                implied_volatility=implied_vol,
                                delta=delta, gamma=gamma, theta=theta, vega=vega, rho=rho,
                            )
                            options.append(option)
                            self.ib.cancelMktData(qualified_option)
                        except Exception as e:
                            log_warning(f"Error processing option {symbol} {expiration} "
                                        f"{right} {strike}: {e}")
                            continue

            log_info(f"Retrieved {len(options)} options for {symbol}")
            return options
        except Exception as e:
            log_error(f"Error getting option chain for {symbol}: {e}")
            return []


def _num(value: float | None) -> float:
    return value if value is not None and not util.isNan(value) else 0.0
