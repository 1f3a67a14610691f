"""Event-time progress across partitions, for events that arrive in the wrong partition.

A session's state lives in the partition its id hashes to. An event read from another partition
(no key, or keyed by user or device) is forwarded there through the repartition topic, and
arrives behind whatever that partition read directly meanwhile: judged against that partition's
watermark, a backlog would make it late. So lateness is judged where the storefront put it:

- Each source partition keeps a *source watermark* over every valid event it delivers, in
  offset order (``judge``); a forwarded event carries that verdict with it.
- After its forwards are on the broker, a source announces its source watermark (a progress
  marker) to every other partition of the repartition topic, behind those forwards.
- A partition finalises sessions only up to the lowest progress announced by every other source
  (``hold_ms``), so no forwarded event that was on time at its source can find its session
  already finalised past it. Markers only ever move forwards; a replayed older one is ignored.
- A caught-up, idle source advances with the wall clock like any partition, so a source with no
  traffic does not hold the others back for ever.

The state (source watermark, markers seen, and the next offset per topic the stored state
covers) is stored with the partition's sessions under ``PROGRESS_KEY``, after them, so a
restarted worker resumes from it. A crash after the state is stored but before the offsets are
committed replays reads the state already covers: ``replayed`` tells them apart, since judged
again against the newer state they would come back late (their session may be gone by then),
and re-forwarded they would arrive behind markers that already cover them.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from streams.funnel.partition import UNHELD
from streams.funnel.rules import FunnelRules
from streams.funnel.watermark import Watermark

_FORMAT = 2


class SourceProgress:
    """One partition's progress as a source, and the progress other sources announced to it."""

    def __init__(self, rules: FunnelRules, partition: int, partitions: int) -> None:
        self.partition = partition
        self._others = [p for p in range(partitions) if p != partition]
        self.source = Watermark(rules)
        self._marks: dict[int, int] = {}
        self._applied: dict[str, int] = {}  # topic -> next offset the stored state covers
        self._saved: tuple[int | None, dict[int, int], dict[str, int]] = (None, {}, {})
        self._announced: int | None = None  # in memory only: a restart announces again

    def judge(self, occurred_at_ms: int, kafka_ts_ms: int) -> bool:
        """True if the event is late in its source's own order (see ``Watermark.judge``)."""
        self.source.saw_events()
        return self.source.judge(occurred_at_ms, kafka_ts_ms)

    def see(self, source: int, watermark_ms: int) -> None:
        """A progress marker from another source; a replayed older one changes nothing."""
        if source in self._others and watermark_ms > self._marks.get(source, watermark_ms - 1):
            self._marks[source] = watermark_ms

    def hold_ms(self) -> int | None:
        """The lowest progress of the other sources; None until each has announced some."""
        if len(self._marks) < len(self._others):
            return None
        return min(self._marks.values(), default=UNHELD)

    def to_announce(self) -> tuple[int, Iterable[int]] | None:
        """(source watermark, partitions to tell) when it moved since the last announcement."""
        value = self.source.value
        if value is None or value == self._announced:
            return None
        return value, self._others

    def announced(self, watermark_ms: int) -> None:
        self._announced = watermark_ms

    def replayed(self, topic: str, offset: int) -> bool:
        """Whether the stored state already covers this read (see module doc)."""
        return offset < self._applied.get(topic, 0)

    def applied(self, topic: str, next_offset: int) -> None:
        """The state about to be stored covers the reads of ``topic`` before ``next_offset``."""
        self._applied[topic] = max(next_offset, self._applied.get(topic, 0))

    def lag_ms(self) -> int | None:
        """How far the hold keeps this partition's sources behind its own source watermark."""
        hold = self.hold_ms()
        if hold is None or self.source.value is None or not self._others:
            return None
        return max(0, self.source.value - hold)

    def dump(self) -> bytes | None:
        """The state to store, or None when unchanged since the last dump or load."""
        state = (self.source.value, dict(self._marks), dict(self._applied))
        if state == self._saved:
            return None
        self._saved = state
        marks = sorted(self._marks.items())
        return orjson.dumps([_FORMAT, self.source.value, marks, sorted(self._applied.items())])

    def load(self, raw: bytes) -> None:
        state = orjson.loads(raw)
        if state[0] != _FORMAT:
            raise ValueError(f"unknown progress format version {state[0]!r}")
        _, source, marks, applied = state
        self.source.value = source
        self._marks = {int(p): int(w) for p, w in marks if int(p) in self._others}
        self._applied = {str(t): int(o) for t, o in applied}
        self._saved = (self.source.value, dict(self._marks), dict(self._applied))
