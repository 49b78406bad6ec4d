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
    ax2.set_title("table sizes (retention: finished orders kept 1 day)")
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
        idle, loaded = d["idle"]["all_ms"], d["loaded"]["all_ms"]
        top = max(idle + loaded + [1.0])
        bins = [top * i / 40 for i in range(41)]
        ax.hist(idle, bins=bins, alpha=0.6, label=f"idle (p99 {d['idle']['median_p99_ms']:.1f})")
        ax.hist(loaded, bins=bins, alpha=0.6,
                label=f"480 chain + 50 streams (p99 {d['loaded']['median_p99_ms']:.1f})")
        ax.axvline(d["idle"]["median_p99_ms"] + d["slot_ms"], color="#c44e52",
                   linestyle="--", label="idle p99 + 1 pacing slot (goal)")
        ax.set_xlabel("place_order -> acknowledged (ms)")
        ax.set_ylabel("orders")
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
