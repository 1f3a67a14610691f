"""Live conversion numbers for Prometheus gauges: rolling step ratios, worst step, time to convert.

- ``RollingConversion``: per site, stage entries over the last 15 min and 1 h of event time
  (to the granularity of its buckets, default 1 min) and the ratio of each step
  (entries into stage k+1 / entries into stage k) with the sample size (entries into stage k)
  beside it. Entries in a rolling window are not a cohort: a ratio can exceed 1 when the
  earlier stage was reached before the window.
- ``worst_step``: the step with the largest relative drop, ignoring steps whose earlier stage has
  fewer than ``min_sessions`` entries (too few to mean anything).
- Time to convert (first page view -> purchase) buckets, in seconds as Prometheus wants them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.funnel.facts import Stage, StageReached
from streams.funnel.rules import HOUR_MS, MINUTE_MS

# 30 s .. 1 day: most sessions that convert do so within an hour, a long tail within the day.
TIME_TO_CONVERT_BUCKETS_S: tuple[float, ...] = tuple(
    float(s) for s in (30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
)


@dataclass(frozen=True, slots=True)
class StepConversion:
    from_stage: Stage
    to_stage: Stage
    ratio: float | None  # None when nobody entered from_stage
    sample_size: int  # entries into from_stage


@dataclass(frozen=True, slots=True)
class SiteConversion:
    site_id: str
    span_ms: int
    stage_entries: tuple[int, int, int, int]  # PAGE_VIEW .. PURCHASE
    steps: tuple[StepConversion, ...]


def step_conversions(stage_entries: Sequence[int]) -> tuple[StepConversion, ...]:
    """Ratios of consecutive stages; ``stage_entries[i]`` counts entries into Stage(i + 1)."""
    steps = []
    for stage in list(Stage)[:-1]:
        before, after = stage_entries[stage - 1], stage_entries[stage]
        ratio = after / before if before else None
        steps.append(StepConversion(stage, Stage(stage + 1), ratio, before))
    return tuple(steps)


def worst_step(stage_entries: Sequence[int], min_sessions: int) -> StepConversion | None:
    """The step with the lowest ratio (largest drop) among those with enough sessions."""
    eligible = [
        s
        for s in step_conversions(stage_entries)
        if s.ratio is not None and s.sample_size >= min_sessions
    ]
    # min() keeps the first of equal ratios: the earliest step in the funnel. (Eligible steps
    # have a ratio; `or 0.0` only satisfies the type checker.)
    return min(eligible, key=lambda s: s.ratio or 0.0, default=None)


class RollingConversion:
    def __init__(
        self,
        spans_ms: Sequence[int] = (15 * MINUTE_MS, HOUR_MS),
        bucket_ms: int = MINUTE_MS,
    ) -> None:
        if bucket_ms < 1 or not spans_ms or min(spans_ms) < bucket_ms:
            raise ValueError("need bucket_ms >= 1 and at least one span >= bucket_ms")
        self.spans_ms = tuple(spans_ms)
        self.bucket_ms = bucket_ms
        # site -> bucket start -> entries per stage
        self._sites: dict[str, dict[int, list[int]]] = {}

    def add(self, fact: StageReached, *, site: str | None = None) -> None:
        """Count a stage entry under `site` (default: the fact's own site id)."""
        t = fact.reached_at_ms
        buckets = self._sites.setdefault(fact.site_id if site is None else site, {})
        buckets.setdefault(t - t % self.bucket_ms, [0, 0, 0, 0])[fact.stage - 1] += 1

    def snapshot(self, now_ms: int) -> list[SiteConversion]:
        """Entries and ratios per site and span over the buckets in [now - span, now).

        Buckets older than the longest span are forgotten, so memory stays bounded; a site with
        nothing left is dropped from the snapshot (the caller removes its gauges).
        """
        oldest = now_ms - max(self.spans_ms)
        out = []
        for site_id in sorted(self._sites):
            buckets = self._sites[site_id]
            for start in [s for s in buckets if s < oldest]:
                del buckets[start]
            if not buckets:
                del self._sites[site_id]
                continue
            for span in self.spans_ms:
                counts = [0, 0, 0, 0]
                for start, entries in buckets.items():
                    if now_ms - span <= start < now_ms:
                        counts = [a + b for a, b in zip(counts, entries, strict=True)]
                c1, c2, c3, c4 = counts
                out.append(
                    SiteConversion(site_id, span, (c1, c2, c3, c4), step_conversions(counts))
                )
        return out
