"""Event-time progress of one stream of events: its watermark, lateness, and idle advance.

The watermark is the max occurred_at over the events judged on time that are not future-dated;
an event before watermark - lateness (the bound) is late. Future-dated (``is_future``): its
occurred_at is more than max_skew ahead of what the worker observed, the earlier of its Kafka
timestamp (set by the producer's own clock) and the worker's wall clock at consumption. Such an
event moves no watermark, so one storefront whose clock runs hours fast makes nothing late, not
even a backlog replayed hours behind the worker's clock. A stream that saw no events
between two ``tick`` calls at least ``idle_after_ms`` apart is idle, and the wall clock moves
its watermark to max(watermark, now - lateness). One rule, used for a partition's own events
(``PartitionFunnel``) and for everything a source partition delivers (``SourceProgress``).
"""

from __future__ import annotations

from streams.funnel.rules import FunnelRules


def is_future(occurred_at_ms: int, observed_ms: int, rules: FunnelRules) -> bool:
    """Whether an event's clock runs further ahead of what the worker observed than allowed."""
    return occurred_at_ms > observed_ms + rules.max_skew_ms


class Watermark:
    def __init__(self, rules: FunnelRules, value: int | None = None) -> None:
        self._rules = rules
        self.value = value
        self._idle_since: int | None = None

    def bound(self) -> int | None:
        return None if self.value is None else self.value - self._rules.lateness_ms

    def is_late(self, occurred_at_ms: int) -> bool:
        bound = self.bound()
        return bound is not None and occurred_at_ms < bound

    def saw_events(self) -> None:
        self._idle_since = None

    def advance(self, occurred_at_ms: int, observed_ms: int) -> None:
        """An on-time event moves the watermark, unless it is future-dated."""
        if is_future(occurred_at_ms, observed_ms, self._rules):
            return
        if self.value is None or occurred_at_ms > self.value:
            self.value = occurred_at_ms

    def judge(self, occurred_at_ms: int, observed_ms: int) -> bool:
        """True if late; otherwise the event advances the watermark."""
        if self.is_late(occurred_at_ms):
            return True
        self.advance(occurred_at_ms, observed_ms)
        return False

    def tick(self, now_ms: int) -> None:
        if self._idle_since is None:
            self._idle_since = now_ms
        elif now_ms - self._idle_since >= self._rules.idle_after_ms:
            target = now_ms - self._rules.lateness_ms
            if self.value is None or target > self.value:
                self.value = target
