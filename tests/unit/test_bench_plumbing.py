"""The new benchmarks' plumbing (not timed): argument parsing, the week's verdicts on
synthetic days, the partial-fill event bursts, the plots."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from benchmarks import bench_events, bench_week, plots
from benchmarks.__main__ import parse_args, plan
from benchmarks.bench_order_latency import _stats
from benchmarks.common import wide_universe
from benchmarks.sim_process import parse_args as sim_args
from src.brokers.compat import IB, Decoder


def test_main_knows_the_new_benchmarks() -> None:
    args = parse_args(["--only", "latency,week", "--quick"])
    assert list(plan(args)) == ["latency", "week"]
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])


def test_sim_process_arguments() -> None:
    a = sim_args(["--today", "2026-12-07", "--next-order-id", "7:1234"])
    assert a.today == date(2026, 12, 7) and a.next_order_id == ["7:1234"]


def test_wide_universe_adds_option_less_stocks_with_unique_ids() -> None:
    uni = wide_universe(50)
    stocks = uni["stocks"]
    assert len(stocks) == 50
    assert len({s["con_id"] for s in stocks}) == 50
    assert stocks[0]["symbol"] == "AAPL" and "options" not in stocks[-1]


def _days(orders: list[int], rss: list[float]) -> list[bench_week.Day]:
    out = []
    for k, (n, mb) in enumerate(zip(orders, rss, strict=True)):
        d = bench_week.Day(date(2026, 12, 7) + timedelta(days=k), orders=400, chains=100,
                           ticks=200_000, rss_mb=mb)
        d.tables = {"adapter.orders": n, "ib.trades": 400}
        d.expirations = {"2026-12-11"} if k < 4 else {"2026-12-18"}
        out.append(d)
    return out


def test_week_flags_a_table_that_keeps_growing() -> None:
    bounded = _days([400, 800, 800, 800, 800], [58, 67, 70, 71, 71])
    assert bench_week.growing_tables(bounded) == []
    leaking = _days([400, 800, 1200, 1600, 2000], [58, 67, 70, 71, 71])
    assert bench_week.growing_tables(leaking) == ["adapter.orders 1200->2000"]
    capped = _days([400, 800, 800, 800, 800], [58, 67, 70, 71, 71])
    for k, n in enumerate((0, 6, 11, 17, 60)):
        capped[k].tables["connection.delays"] = n
    assert bench_week.growing_tables(capped) == []  # below its cap of 100: bounded
    capped[-1].tables["connection.delays"] = 101
    assert bench_week.growing_tables(capped) == ["connection.delays 11->101"]


def test_week_report_verdicts() -> None:
    _, targets = bench_week._report(_days([400, 800, 800, 800, 800], [58, 67, 70, 71, 90]),
                                    orders=2000, chains=500, ticks=1_000_000, streams=20,
                                    step=0.02, retention_days=1, how_days="test")
    verdicts = {t.name: t.passed for t in targets}
    assert verdicts["week: orders placed"] and verdicts["week: ticks decoded"]
    assert verdicts["week: chain expirations rolled"]
    assert verdicts["week: tables growing without bound"]
    assert not verdicts["week: RSS growth after day 1 (MB)"]  # 90 - 58 > 20


def test_partial_fill_bursts_decode_to_filled_trades() -> None:
    fills = 3
    msgs = bench_events.order_messages(1, 2, fills)
    assert len(msgs) == 2 * bench_events.messages_per_order(fills)
    ib = IB()
    ib.wrapper.clientId = bench_events.CLIENT_ID
    decoder = Decoder(ib.wrapper, bench_events.SERVER_VERSION)
    for fields in msgs:
        decoder.interpret(fields)
    side = bench_events.RawSide("raw", fills)
    assert side._check(ib, 1, 2)
    assert not bench_events.RawSide("raw", fills + 1)._check(ib, 1, 2)


def test_latency_stats_take_medians_of_round_percentiles() -> None:
    st = _stats([[0.010] * 99 + [0.100], [0.020] * 100])
    assert st["samples"] == 200
    assert st["median_p50_ms"] == pytest.approx(15.0)
    assert st["p99_ms"][1] == pytest.approx(20.0)


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    sections, _ = bench_week._report(_days([400, 800, 800, 800, 800], [58, 67, 70, 71, 71]),
                                     orders=2000, chains=500, ticks=1, streams=20, step=0.02,
                                     retention_days=1, how_days="test")
    drawn = plots.draw(sections, tmp_path)
    assert drawn == [str(tmp_path / "week_memory.png")]
    assert (tmp_path / "week_memory.png").stat().st_size > 1000
    data = {"10": {"idle": _stats([[0.01, 0.012]]), "loaded": _stats([[0.011, 0.03]]),
                   "slot_ms": 25.0}}
    assert plots.latency_plot(data, tmp_path / "lat.png") == tmp_path / "lat.png"
