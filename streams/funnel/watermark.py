"""Event-time progress of one stream of events: its watermark, lateness, and idle advance.

The watermark is the max, over the events judged on time, of min(occurred_at, kafka_timestamp +
max_skew); an event before watermark - lateness (the bound) is late. A stream that saw no events
between two ``tick`` calls at least ``idle_after_ms`` apart is idle, and the wall clock moves
its watermark to max(watermark, now - lateness). One rule, used for a partition's own events
(``PartitionFunnel``) and for everything a source partition delivers (``SourceProgress``).
"""

from __future__ import annotations

from streams.funnel.rules import FunnelRules


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

    def advance(self, occurred_at_ms: int, kafka_ts_ms: int) -> None:
        """An on-time event moves the watermark; the skew cap stops a future-dated one."""
        mark = min(occurred_at_ms, kafka_ts_ms + self._rules.max_skew_ms)
        if self.value is None or mark > self.value:
            self.value = mark

    def judge(self, occurred_at_ms: int, kafka_ts_ms: int) -> bool:
        """True if late; otherwise the event advances the watermark."""
        if self.is_late(occurred_at_ms):
            return True
        self.advance(occurred_at_ms, kafka_ts_ms)
        return False

    def tick(self, now_ms: int) -> None:
        if self._idle_since is None:
            self._idle_since = now_ms
        elif now_ms - self._idle_since >= self._rules.idle_after_ms:
            target = now_ms - self._rules.lateness_ms
            if self.value is None or target > self.value:
                self.value = target
