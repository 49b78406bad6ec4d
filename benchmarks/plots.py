"""PNG plots of a bench run (matplotlib, the ``bench`` extra): memory per day of the week,
order-latency distributions idle vs loaded. Without matplotlib nothing is drawn (said)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import Section

#: Tables drawn next to RSS in the week plot (the ones retention bounds, and ib_insync's).
WEEK_TABLES = ("adapter.orders", "orders_service.trades", "orders_service.refs",
               "orders_service.errors", "ib.trades", "ib.fills", "ib.tickers",
               "orders_service.con_ids", "connection.delays")


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def week_plot(data: dict[str, Any], path: Path) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    days = data["days"]
    labels = [d["day"][5:] for d in days]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.bar(labels, [d["rss_mb"] for d in days], color="#4c72b0")
    base = days[0]["rss_mb"]
    ax1.axhline(base + 20, color="#c44e52", linestyle="--", label="day 1 + 20 MB (goal)")
    ax1.set_ylabel("RSS after the day (MB)")
    ax1.set_title("process memory per trading day")
    ax1.set_ylim(0, max(base + 25, max(d["rss_mb"] for d in days) * 1.1))
    ax1.legend(loc="lower right")
    for name in WEEK_TABLES:
        sizes = [d["tables"].get(name) for d in days]
        if any(sizes):
            ax2.plot(labels, [s or 0 for s in sizes], marker="o", label=name)
    ax2.set_ylabel("entries after the day")
    ax2.set_title("table sizes (finished orders kept "
                  f"{data.get('retention_days', '?')} day(s))")
    ax2.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def latency_plot(data: dict[str, Any], path: Path) -> Path | None:
    plt = _pyplot()
    if plt is None:
        return None
    lats = list(data)
    fig, axes = plt.subplots(1, len(lats), figsize=(5.5 * len(lats), 4), squeeze=False)
    for ax, lat in zip(axes[0], lats, strict=True):
        d = data[lat]
        for key, label in (("idle", "idle"), ("loaded", "480 chain + 50 streams")):
            values = sorted(d[key]["all_ms"])
            if values:
                share = [(i + 1) / len(values) for i in range(len(values))]
                ax.step(values, share, where="post",
                        label=f"{label} (p99 {d[key]['median_p99_ms']:.1f} ms)")
        ax.axvline(d["idle"]["median_p99_ms"] + d["slot_ms"], color="#c44e52",
                   linestyle="--", label="idle p99 + 1 pacing slot (goal)")
        ax.set_xlabel("place_order -> acknowledged (ms)")
        ax.set_ylabel("share of orders acknowledged within x")
        ax.axhline(0.99, color="grey", linewidth=0.5)
        ax.set_title(f"order latency at {lat} ms one-way")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw(sections: Sequence[Section], out_dir: Path) -> list[str]:
    """Draw every plot the run has data for into ``out_dir``; the notes say what was drawn."""
    drawn: list[str] = []
    for s in sections:
        if s.name.startswith("week:"):
            p = week_plot(s.data, out_dir / "week_memory.png")
        elif s.name.startswith("order latency:"):
            p = latency_plot(s.data, out_dir / "order_latency.png")
        else:
            continue
        drawn.append(str(p) if p is not None else f"{s.name}: matplotlib missing, no plot "
                     "(pip install -e '.[bench]')")
    return drawn


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.plots [results.json] [out_dir]``: redraw from a saved run."""
    import json
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    here = Path(__file__).resolve().parent
    results = Path(args[0]) if args else here / "results" / "latest.json"
    out_dir = Path(args[1]) if len(args) > 1 else here.parent / "docs" / "img"
    document = json.loads(results.read_text(encoding="utf-8"))
    sections = [Section(s["name"], s["headers"], s["rows"], s.get("notes", []), s["data"])
                for s in document["sections"]]
    for line in draw(sections, out_dir):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
