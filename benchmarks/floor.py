"""The pacing floor: the least time an operation can take against IB, as pure functions.

Definition (used by every benchmark and documented in docs/performance.md)::

    floor = pacing_seconds(messages) + round_trips × 2 × one_way_latency

(``2 × one_way_latency`` is the link's round trip; on a link that delays only one direction —
the simulated gateway delays only what it sends — a round trip costs ``1 × latency`` and the
benchmarks, which measure that, pass ``legs=1``.)

* ``messages`` — the messages the operation actually sends, counted on the gateway for that
  client (so a wasteful adapter gets a *higher*, more lenient floor; the benchmark also prints
  the minimal message count so that waste is visible).
* ``pacing_seconds`` — ib_insync's throttle (``Client.MaxRequests`` = 45 per
  ``Client.RequestsInterval`` = 1 s) is a *sliding window*: the first 45 messages leave at
  once (the burst allowance); message k (0-based) cannot leave before ``⌊k / 45⌋ × 1 s``.
  So the messages beyond the burst, divided by the allowed rate, rounded up to whole
  windows: ``⌈max(0, N − 45) / 45⌉ × 1 s``. (The un-rounded ``(N − 45) / 45`` is not a
  bound: 46 messages cannot all be out in 1/45 s under a 1-second sliding window — the 46th
  waits a full second for the 1st to leave the window. The gateway's own limit, 50 per
  sliding second, imposes the same step shape.)
* ``round_trips`` — the sequential, dependent request/response exchanges on the critical
  path; each costs two one-way latencies. Independent requests issued together count once.

The sum is the brief's definition. It over-states the strict minimum by up to
``(round_trips − 1) × RTT`` when round trips could overlap the throttle's wait; that slack is
tiny next to the 1 s windows and is stated next to every figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

#: ib_insync 0.9.86 ``Client.MaxRequests`` / ``Client.RequestsInterval``.
IB_MAX_REQUESTS = 45
IB_REQUESTS_INTERVAL = 1.0

#: Critical-path phases of an option chain, in dependency order.
CHAIN_PHASES = ("qualify_stock", "secdef_and_quote", "option_details", "option_quotes")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def pacing_seconds(messages: int, max_requests: int = IB_MAX_REQUESTS,
                   interval: float = IB_REQUESTS_INTERVAL) -> float:
    """Least time from the first to the last of ``messages`` sends under the sliding window."""
    _check_count("messages", messages)
    _check_count("max_requests", max_requests)
    if max_requests == 0:
        raise ValueError("max_requests must be a positive int, got 0")
    _check_positive("interval", interval)
    beyond = max(0, messages - max_requests)
    return math.ceil(beyond / max_requests) * interval


def continuous_pacing_seconds(messages: int, max_requests: int = IB_MAX_REQUESTS,
                              interval: float = IB_REQUESTS_INTERVAL) -> float:
    """The un-rounded ``(N − burst) / rate`` — shown for reference only, not a bound."""
    _check_count("messages", messages)
    _check_positive("max_requests", max_requests)
    _check_positive("interval", interval)
    return max(0, messages - max_requests) * interval / max_requests


def latency_seconds(round_trips: int, one_way_latency_ms: float, legs: int = 2) -> float:
    """``round_trips × legs × one-way latency`` in seconds.

    ``legs`` is how many one-way delays a request/response exchange pays: 2 on a symmetric
    link (the brief's ``2 × latency``), 1 when only one direction is delayed (the simulated
    gateway delays only its outgoing messages).
    """
    _check_count("round_trips", round_trips)
    if legs not in (1, 2):
        raise ValueError(f"legs must be 1 or 2, got {legs!r}")
    if isinstance(one_way_latency_ms, bool) or not isinstance(one_way_latency_ms, (int, float)) \
            or one_way_latency_ms < 0 or not math.isfinite(one_way_latency_ms):
        raise ValueError(f"one_way_latency_ms must be >= 0, got {one_way_latency_ms!r}")
    return round_trips * legs * one_way_latency_ms / 1000.0


@dataclass(frozen=True)
class Floor:
    messages: int
    round_trips: int
    latency_ms: float
    legs: int
    pacing_s: float
    latency_s: float

    @property
    def seconds(self) -> float:
        return self.pacing_s + self.latency_s


def floor(messages: int, round_trips: int, one_way_latency_ms: float, legs: int = 2,
          max_requests: int = IB_MAX_REQUESTS, interval: float = IB_REQUESTS_INTERVAL) -> Floor:
    """The floor of an operation that sends ``messages`` over ``round_trips`` dependent steps."""
    return Floor(messages=messages, round_trips=round_trips, latency_ms=float(one_way_latency_ms),
                 legs=legs, pacing_s=pacing_seconds(messages, max_requests, interval),
                 latency_s=latency_seconds(round_trips, one_way_latency_ms, legs))


def chain_round_trips(phases: Iterable[str]) -> int:
    """Dependent round trips of an option-chain fetch that went through ``phases``.

    Cold path: qualify the stock → (option parameters ‖ stock quote) → contract details of
    the chosen expirations (in parallel) → option quotes (in parallel) = 4. A phase the
    adapter skipped (a conId cached from an earlier call, contracts quoted without separate
    qualification) is not on the path.
    """
    seen = set(phases)
    unknown = seen - set(CHAIN_PHASES)
    if unknown:
        raise ValueError(f"phases: unknown phase(s) {sorted(unknown)}")
    return len(seen)


def chain_min_messages(expirations: int, strikes: int, *, cached_stock: bool = False,
                       cached_details: bool = False) -> int:
    """Fewest messages an option chain of ``expirations × strikes × 2`` snapshots needs.

    1 stock qualification (unless cached) + 1 option-parameters request (unless cached) +
    1 stock quote + 1 contract-details request per expiration (unless cached) + 1 snapshot
    per option (a snapshot needs no cancel).
    """
    _check_count("expirations", expirations)
    _check_count("strikes", strikes)
    stock = 0 if cached_stock else 2
    details = 0 if cached_details else expirations
    return stock + 1 + details + expirations * strikes * 2


def quote_round_trips(qualified: bool) -> int:
    """A quote is one round trip (request → ticks); two when the conId must be qualified first."""
    return 1 if qualified else 2


def quote_target_seconds(one_way_latency_ms: float, legs: int = 2, round_trips: int = 2,
                         slack_ms: float = 5.0) -> float:
    """The quote target of the brief: 2 round trips + 5 ms."""
    return latency_seconds(round_trips, one_way_latency_ms, legs) + slack_ms / 1000.0
