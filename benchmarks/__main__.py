"""``python -m benchmarks [--latency-ms 0,10] [--only chain,quote,events,connect,latency,week,
service] [--quick] [--plots DIR] [--seconds N]``

Runs the selected benchmarks against the simulated gateway (pacing enforced), prints one
table per benchmark and a PASS/FAIL summary, writes benchmarks/results/latest.json and
benchmarks/results/latest.md (the markdown pasted into docs/performance.md), draws the plots
(week memory, order-latency distributions) into ``--plots`` (default docs/img), and exits 1
when a target fails or a benchmark crashes. ``--quick`` is a smoke run: fewer repetitions and
a scaled-down week (its size targets scale with it).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_chain,
    bench_connect,
    bench_events,
    bench_order_latency,
    bench_quote,
    bench_service,
    bench_week,
    plots,
)
from benchmarks.common import quiet_logging
from benchmarks.report import (
    Section,
    Target,
    exit_code,
    markdown_report,
    results_document,
    summary,
    write_json,
)
from src.brokers import compat

BENCHES = ("chain", "quote", "events", "connect", "latency", "week", "service")
RESULTS = Path(__file__).resolve().parent / "results"
PLOTS = Path(__file__).resolve().parent.parent / "docs" / "img"


def _latencies(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--latency-ms: not a list of numbers: {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"--latency-ms: need numbers >= 0, got {text!r}")
    return values


def _only(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in BENCHES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"--only: unknown benchmark(s) {bad or text!r}; choose from {','.join(BENCHES)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency-ms", type=_latencies, default=[0.0, 10.0],
                   help="one-way gateway latencies, comma-separated (default 0,10)")
    p.add_argument("--only", type=_only, default=list(BENCHES),
                   help=f"subset of {','.join(BENCHES)} (default: all)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    p.add_argument("--seconds", type=float, default=None,
                   help="service benchmark: seconds per phase (default 30, --quick 5)")
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json",
                   help="JSON results path (markdown goes next to it, .md)")
    p.add_argument("--plots", type=Path, default=PLOTS,
                   help="directory for the PNG plots (default docs/img)")
    return p.parse_args(argv)


def plan(args: argparse.Namespace) -> dict[str, Callable[[], tuple[list[Section], list[Target]]]]:
    q = args.quick
    lat = args.latency_ms
    jobs: dict[str, Callable[[], tuple[list[Section], list[Target]]]] = {
        "chain": lambda: bench_chain.run(lat, reps=3 if q else 5, seeds_reps=1 if q else 3,
                                         large_reps=0 if q else 1),
        "quote": lambda: bench_quote.run(lat, calls=20 if q else 50,
                                         seeds_calls=10 if q else 50),
        "events": lambda: bench_events.run(orders=200 if q else 1000,
                                           repetitions=3 if q else 7, fills=6,
                                           worst_repetitions=1 if q else 3),
        "connect": lambda: bench_connect.run(lat, samples=30 if q else 100),
        "latency": lambda: bench_order_latency.run(lat, rounds=1 if q else 3,
                                                   orders=8 if q else 25),
        "week": lambda: (bench_week.run(orders=100, chains=25, ticks=50_000) if q
                         else bench_week.run()),
        "service": lambda: bench_service.run(
            seconds=args.seconds if args.seconds is not None else (5.0 if q else 30.0)),
    }
    return {name: jobs[name] for name in BENCHES if name in args.only}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_logging()
    command = "python -m benchmarks" + (" " + " ".join(shlex.quote(a) for a in argv)
                                        if argv is not None else
                                        (" " + " ".join(shlex.quote(a) for a in sys.argv[1:])
                                         if sys.argv[1:] else ""))
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "python": platform.python_version(),
        "client_library": f"{compat.LIBRARY} {compat.VERSION}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "latencies_ms": ",".join(f"{v:g}" for v in args.latency_ms),
        "quick": args.quick,
    }
    print(f"{command}\n" + "  ".join(f"{k}={v}" for k, v in meta.items()), flush=True)
    sections: list[Section] = []
    targets: list[Target] = []
    errors: list[str] = []
    t_all = time.perf_counter()
    for name, job in plan(args).items():
        t0 = time.perf_counter()
        print(f"\n... running {name}", flush=True)
        try:
            secs, tgts = job()
        except Exception as e:  # a crashed benchmark is a failure, reported, not a traceback
            traceback.print_exc()
            errors.append(f"{name}: {type(e).__name__}: {e}")
            continue
        sections += secs
        targets += tgts
        for s in secs:
            print(s.text(), flush=True)
        print(f"({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    meta["duration_s"] = round(time.perf_counter() - t_all, 1)
    root = Path(__file__).resolve().parent.parent
    drawn = [d.replace(str(root) + "/", "") for d in plots.draw(sections, args.plots)]
    if drawn:
        meta["plots"] = ", ".join(drawn)
        print("plots: " + meta["plots"])
    print("\n== summary ==")
    print(summary(targets, errors))
    document = results_document(meta, sections, targets, errors)
    document["command"] = command
    write_json(args.out, document)
    md = args.out.with_suffix(".md")
    md.write_text(markdown_report(command, meta, sections, targets, errors), encoding="utf-8")
    print(f"\nresults: {args.out} and {md}")
    return exit_code(targets, errors)


if __name__ == "__main__":
    sys.exit(main())
