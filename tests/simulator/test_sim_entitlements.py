"""Market-data entitlements of the simulated gateway: IB's answer per entitlement and requested
market data type, and what goes on the wire (refusals, silence, delayed tick types)."""

from __future__ import annotations

import struct
from datetime import date, time

import pytest

from src.simulator.entitlements import TEXT_354_DELAYED, TEXTS, Entitlements
from src.simulator.market import Market
from src.simulator.marketdata import MarketData
from src.utils.clock import FixedClock

STK = ("MSFT", "STK")


@pytest.mark.parametrize(("level", "requested", "code", "served"), [
    ("live", 1, None, 1), ("live", 2, None, 1), ("live", 3, None, 1), ("live", 4, None, 1),
    ("delayed", 1, 10089, None), ("delayed", 2, 10089, None),
    ("delayed", 3, 10167, 3), ("delayed", 4, 10167, 3),
    ("none", 1, 354, None), ("none", 3, 10168, None), ("none", 4, 10168, None),
])
def test_answer_by_entitlement_and_requested_type(level: str, requested: int, code: int | None,
                                                  served: int | None) -> None:
    ent = Entitlements()
    ent.set("MSFT", level)
    answer = ent.answer([STK], requested)
    assert (answer.error[0] if answer.error else None, answer.served) == (code, served)
    if answer.error is not None:
        assert answer.error[1] == TEXTS[answer.error[0]]


def test_refusal_code_is_selectable_and_354_says_delayed_is_available() -> None:
    ent = Entitlements()
    ent.set("MSFT", "delayed", 354)
    assert ent.answer([STK], 1).error == (354, TEXT_354_DELAYED)
    ent.set("MSFT", "delayed", 10090)
    assert ent.answer([STK], 1).error == (10090, TEXTS[10090])
    ent.set("MSFT", "none", 10168)
    assert ent.answer([STK], 1).error == (10168, TEXTS[10168])


@pytest.mark.parametrize(("level", "code", "options"), [
    ("partial", None, None), ("delayed", 10168, None), ("none", 10089, None),
    ("live", 354, None), ("live", None, "some"),
])
def test_bad_entitlements_are_refused_and_change_nothing(level: str, code: int | None,
                                                         options: str | None) -> None:
    ent = Entitlements()
    ent.set("MSFT", "delayed")
    with pytest.raises(ValueError, match="market_data"):
        ent.set("MSFT", level, code, options)
    assert ent.answer([STK], 1).error == (10089, TEXTS[10089])


def test_options_inherit_the_underlying_unless_given_their_own_and_combos_take_the_worst() -> None:
    ent = Entitlements([{"symbol": "AAPL", "market_data": "delayed"}])
    assert ent.answer([("AAPL", "OPT")], 3).served == 3
    ent.set("AAPL", "live", options="none")
    assert ent.answer([("AAPL", "STK")], 1).served == 1
    assert ent.answer([("AAPL", "OPT")], 1).error == (354, TEXTS[354])
    assert ent.answer([("AAPL", "STK"), ("AAPL", "OPT")], 3).error == (10168, TEXTS[10168])
    assert ent.answer([("SPY", "OPT"), ("SPY", "OPT")], 1).served == 1


def test_a_competing_live_session_refuses_everything_with_10197() -> None:
    ent = Entitlements()
    ent.competing_session = True
    assert ent.answer([STK], 3).error == (10197, TEXTS[10197])
    assert ent.answer([STK], 3).served is None


# ----------------------------------------------------------------------------- on the wire


class Capture:
    """A session stand-in: what MarketData sends, decoded into messages."""

    def __init__(self, market_data_type: int = 1) -> None:
        self.session_id = 1
        self.client_id = 7
        self.server_version = 176
        self.closed = False
        self.market_data_type = market_data_type
        self.messages: list[list[str]] = []

    def send_raw(self, data: bytes) -> None:
        while data:
            (n,) = struct.unpack(">I", data[:4])
            fields = data[4:4 + n].decode().split("\0")[:-1]
            self.messages.append(fields)
            data = data[4 + n:]

    def send(self, *fields: object) -> None:
        self.messages.append([str(f) for f in fields])

    def ticks(self) -> set[int]:
        """Tick types of tickPrice (1), tickSize (2) and tickOptionComputation (21)."""
        return {int(m[3] if m[0] in ("1", "2") else m[2]) for m in self.messages
                if m[0] in ("1", "2", "21")}

    def errors(self) -> list[int]:
        return [int(m[3]) for m in self.messages if m[0] == "4"]


@pytest.fixture
def md() -> MarketData:
    market = Market(seed=1, clock=FixedClock.new_york(date(2026, 12, 2), time(10, 0)))
    return MarketData(market)


def req(md: MarketData, s: Capture, req_id: int, con_id: int, snapshot: bool = False) -> None:
    c = md.market.contracts[con_id]
    args = ["11", str(req_id), str(con_id), c.symbol, c.sec_type, "", "0", "", "", "SMART", "",
            "USD", "", "", "0", "", "1" if snapshot else "0", "0", ""]
    md.req_mkt_data(s, args)  # type: ignore[arg-type]


def test_delayed_permission_under_type_3_sends_10167_type_3_and_delayed_ticks(
        md: MarketData) -> None:
    md.set_entitlement("AAPL", "delayed")
    s = Capture(market_data_type=3)
    req(md, s, 5, 265598)
    assert s.errors() == [10167]
    assert ["58", "1", "5", "3"] in s.messages
    assert s.ticks() == {66, 67, 68, 72, 73, 75, 74}
    option = md.market.chains["AAPL"].con_ids[0]
    s.messages.clear()
    req(md, s, 6, option)
    assert {80, 81, 82, 83} <= s.ticks() and not s.ticks() & {1, 2, 4, 10, 11, 12, 13}


def test_a_refused_stream_stays_registered_and_silent_a_refused_snapshot_ends(
        md: MarketData) -> None:
    md.set_entitlement("MSFT", "none")
    s = Capture(market_data_type=1)
    req(md, s, 5, 272093)
    assert s.errors() == [354] and s.ticks() == set()
    assert (1, 5) in md.lines
    md.market.step()
    md.on_step()
    assert s.ticks() == set()
    req(md, s, 6, 272093, snapshot=True)
    assert s.errors() == [354, 354] and s.messages[-1] == ["57", "1", "6"]


def test_a_competing_session_stops_open_lines_once_and_refuses_new_ones(md: MarketData) -> None:
    s = Capture()
    req(md, s, 5, 265598)
    assert s.ticks() and not s.errors()
    md.set_competing_session(True)
    md.set_competing_session(True)
    assert s.errors() == [10197]
    s.messages.clear()
    md.market.step()
    md.on_step()
    req(md, s, 6, 265598)
    assert s.errors() == [10197] and s.ticks() == set()
    md.set_competing_session(False)
    req(md, s, 7, 265598)
    assert s.ticks() == {1, 2, 4, 6, 7, 9, 8}


def test_unknown_symbol_entitlement_is_refused(md: MarketData) -> None:
    with pytest.raises(ValueError, match="symbol"):
        md.set_entitlement("NOPE", "none")
