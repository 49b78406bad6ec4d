"""The benchmarks' floor formula and the report's ratio / target / exit-code logic (not timed)."""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.floor import (
    chain_min_messages,
    chain_round_trips,
    continuous_pacing_seconds,
    floor,
    latency_seconds,
    pacing_seconds,
    quote_round_trips,
    quote_target_seconds,
)
from benchmarks.report import (
    Section,
    Target,
    exit_code,
    markdown_report,
    median,
    percentile,
    ratio,
    results_document,
    summary,
)

# ---------------------------------------------------------------- pacing


@pytest.mark.parametrize(
    ("messages", "seconds"),
    [(0, 0.0), (1, 0.0), (45, 0.0), (46, 1.0), (55, 1.0), (90, 1.0), (91, 2.0),
     (495, 10.0), (496, 11.0)],
)
def test_pacing_is_whole_sliding_windows_beyond_the_burst(messages: int, seconds: float) -> None:
    assert pacing_seconds(messages) == seconds


def test_pacing_matches_the_sliding_window_schedule() -> None:
    # message k (0-based) cannot leave before floor(k / 45) windows: the last one decides
    for n in range(1, 400):
        assert pacing_seconds(n) == ((n - 1) // 45) * 1.0


def test_pacing_honours_rate_and_interval() -> None:
    assert pacing_seconds(101, max_requests=50, interval=1.0) == 2.0
    assert pacing_seconds(100, max_requests=50, interval=0.5) == 0.5


def test_continuous_pacing_is_the_unrounded_quotient_and_never_above_the_floor() -> None:
    assert continuous_pacing_seconds(55) == pytest.approx(10 / 45)
    assert continuous_pacing_seconds(30) == 0.0
    for n in range(0, 300, 7):
        assert continuous_pacing_seconds(n) <= pacing_seconds(n)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_pacing_rejects_bad_message_counts(bad: object) -> None:
    with pytest.raises(ValueError, match="messages"):
        pacing_seconds(bad)  # type: ignore[arg-type]


def test_pacing_rejects_zero_rate_and_interval() -> None:
    with pytest.raises(ValueError, match="max_requests"):
        pacing_seconds(10, max_requests=0)
    with pytest.raises(ValueError, match="interval"):
        pacing_seconds(10, interval=0)


# ---------------------------------------------------------------- latency and floor


def test_latency_term_is_round_trips_times_both_legs() -> None:
    assert latency_seconds(4, 10) == pytest.approx(0.080)
    assert latency_seconds(4, 10, legs=1) == pytest.approx(0.040)
    assert latency_seconds(0, 10) == 0.0
    assert latency_seconds(3, 0) == 0.0


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"round_trips": -1, "one_way_latency_ms": 1}, "round_trips"),
    ({"round_trips": 1, "one_way_latency_ms": -1}, "one_way_latency_ms"),
    ({"round_trips": 1, "one_way_latency_ms": math.nan}, "one_way_latency_ms"),
    ({"round_trips": 1, "one_way_latency_ms": 1, "legs": 3}, "legs"),
])
def test_latency_rejects_bad_input(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        latency_seconds(**kwargs)  # type: ignore[arg-type]


def test_floor_adds_pacing_and_latency() -> None:
    f = floor(55, 4, 10)
    assert f.pacing_s == 1.0
    assert f.latency_s == pytest.approx(0.08)
    assert f.seconds == pytest.approx(1.08)
    one_leg = floor(493, 3, 10, legs=1)
    assert one_leg.seconds == pytest.approx(10.0 + 0.03)


def test_chain_round_trips_count_the_phases_gone_through() -> None:
    assert chain_round_trips(["qualify_stock", "secdef_and_quote", "option_details",
                              "option_quotes"]) == 4
    assert chain_round_trips(["secdef_and_quote", "option_quotes", "option_quotes"]) == 2
    assert chain_round_trips([]) == 0
    with pytest.raises(ValueError, match="phase"):
        chain_round_trips(["qualify_stock", "teleport"])


def test_chain_min_messages() -> None:
    # 1 qualify + 1 secdef + 1 stock quote + 4 details + 48 snapshots
    assert chain_min_messages(4, 6) == 55
    assert chain_min_messages(12, 20) == 2 + 1 + 12 + 480
    assert chain_min_messages(4, 6, cached_stock=True, cached_details=True) == 49
    with pytest.raises(ValueError, match="strikes"):
        chain_min_messages(4, -6)


def test_quote_round_trips_and_target() -> None:
    assert quote_round_trips(qualified=True) == 1
    assert quote_round_trips(qualified=False) == 2
    assert quote_target_seconds(10) == pytest.approx(0.045)  # 2 × 2 × 10 ms + 5 ms
    assert quote_target_seconds(10, legs=1) == pytest.approx(0.025)
    assert quote_target_seconds(0) == pytest.approx(0.005)


# ---------------------------------------------------------------- statistics


def test_median_and_percentile() -> None:
    data = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert median(data) == 3.0
    assert percentile(data, 50) == 3.0
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 5.0
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    with pytest.raises(ValueError, match="values"):
        median([])
    with pytest.raises(ValueError, match="q"):
        percentile(data, 101)


def test_ratio_handles_zero_denominators() -> None:
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(0.0, 0.0) == 0.0
    assert math.isinf(ratio(1.0, 0.0))


# ---------------------------------------------------------------- targets


@pytest.mark.parametrize(("value", "op", "threshold", "passed"), [
    (1.19, "<=", 1.2, True), (1.2, "<=", 1.2, True), (1.21, "<=", 1.2, False),
    (5.0, ">=", 5.0, True), (4.99, ">=", 5.0, False),
    (0, "==", 0, True), (1, "==", 0, False),
    (math.nan, "<=", 1.2, False), (math.nan, ">=", 0.0, False), (math.inf, "<=", 1.2, False),
])
def test_target_verdicts(value: float, op: str, threshold: float, passed: bool) -> None:
    t = Target("x", value, op, threshold)
    assert t.passed is passed
    assert t.verdict == ("PASS" if passed else "FAIL")


def test_target_rejects_unknown_operator() -> None:
    with pytest.raises(ValueError, match="op"):
        Target("x", 1.0, "<", 2.0)


def test_exit_code_fails_on_any_failed_target_or_error() -> None:
    ok = Target("a", 1.0, "<=", 1.2)
    bad = Target("b", 1.3, "<=", 1.2)
    assert exit_code([ok]) == 0
    assert exit_code([ok, bad]) == 1
    assert exit_code([ok], ["chain: RuntimeError: boom"]) == 1
    assert exit_code([]) == 0


def test_summary_and_documents_report_the_verdicts() -> None:
    targets = [Target("chain48: adapter / floor", 1.1, "<=", 1.2),
               Target("events: adapter / raw", 0.5, ">=", 0.85)]
    text = summary(targets)
    assert "RESULT: FAIL (1/2 targets passed)" in text
    assert "PASS" in text and "FAIL" in text
    section = Section("chain", ["run", "seconds"], [["adapter", 1.234]], notes=["n"],
                      data={"x": math.inf})
    doc = results_document({"quick": True}, [section], targets, [])
    json.dumps(doc)  # serialisable: inf becomes a string
    assert doc["passed"] is False
    assert [t["verdict"] for t in doc["targets"]] == ["PASS", "FAIL"]
    md = markdown_report("python -m benchmarks", {"quick": True}, [section], targets, [])
    assert "`python -m benchmarks`" in md
    assert "| adapter | 1.234 |" in md
