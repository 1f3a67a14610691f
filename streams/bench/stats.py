"""Pure arithmetic of the benchmark: medians over repetitions, rates, latency percentiles.

A repetition that timed out has no figure (None). It still counts in the median, as the worst
value, so three runs with one timeout report the slower of the two that finished, and a
majority of timeouts reports no figure at all rather than a flattering one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# The steady-state rate starts once this share of the events is done: start-up (process start,
# consumer-group join, first fetch) is in the end-to-end figure, not in this one.
STEADY_FROM = 0.1


def median(values: Sequence[float | None], *, higher_is_better: bool) -> float | None:
    """Median of the repetitions; None (a timeout) ranks worst, and a None median is None."""
    if not values:
        raise ValueError("median of no values")
    worst = -math.inf if higher_is_better else math.inf
    ranked = sorted(worst if v is None else v for v in values)
    mid = len(ranked) // 2
    middle = ranked[mid - 1 : mid + 1] if len(ranked) % 2 == 0 else ranked[mid : mid + 1]
    if any(math.isinf(v) for v in middle):
        return None
    return sum(middle) / len(middle)


def steady_rate(progress: Sequence[tuple[float, int]], total: int, done_s: float) -> float | None:
    """Events/s from the first sample with at least STEADY_FROM of `total` done, to `done_s`.

    `progress` is (seconds, events done so far) in time order. None when no sample qualifies
    or no time passed (too few samples to tell).
    """
    for at_s, done in progress:
        if done >= STEADY_FROM * total:
            elapsed = done_s - at_s
            return (total - done) / elapsed if elapsed > 0 and total > done else None
    return None


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Produce-to-visible latency of the events that change an aggregate, in seconds.

    A percentile that falls among events never seen visible is None: it is longer than the
    wait, and no number would be honest.
    """

    events: int
    visible: int
    p50_s: float | None
    p99_s: float | None
    max_s: float | None


def fifo_latencies(produced_ms: Sequence[int], polls: Sequence[tuple[int, int]]) -> list[float]:
    """Seconds from production to visibility, matching the k-th produced to the k-th visible.

    `produced_ms` are the production times of the events one counter counts (ascending after
    sorting here); `polls` are (wall ms, counter value) in poll order. The k-th event (in
    production order) is taken to be visible at the first poll whose counter reaches k. This is
    exact when events become visible in production order, and otherwise misattributes only
    between events that overtook each other. Events never counted are left out (the result
    is shorter than `produced_ms`).
    """
    produced = sorted(produced_ms)
    latencies: list[float] = []
    seen = 0
    for at_ms, count in polls:
        reached = min(count, len(produced))
        while seen < reached:
            latencies.append((at_ms - produced[seen]) / 1000)
            seen += 1
    return latencies


def summarise_latencies(latencies: Sequence[float], events: int) -> LatencySummary:
    """Percentiles over `events`, of which `latencies` became visible (the rest: infinite)."""
    if len(latencies) > events:
        raise ValueError("more latencies than events")
    ranked = sorted(latencies)

    def pick(q: float) -> float | None:
        if not events:
            return None
        rank = max(1, math.ceil(q / 100 * events))
        return ranked[rank - 1] if rank <= len(ranked) else None

    return LatencySummary(
        events=events,
        visible=len(ranked),
        p50_s=pick(50),
        p99_s=pick(99),
        max_s=pick(100),
    )
