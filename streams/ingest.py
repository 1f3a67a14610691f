"""Validate a batch of raw messages: rejections to the dead-letter topic, the rest onwards."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Event
from streams.deadletter import DeadLetter, SourcePosition, dead_letter
from streams.metrics import Metrics

Clock = Callable[[], int]
"""Wall clock in epoch milliseconds; injected so tests control time."""


@dataclass(frozen=True, slots=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Accepted:
    event: Event
    message: RawMessage


class Processor(Protocol):
    """Downstream of validation. Returns one outcome label per accepted event, in order.

    Rejected messages are handed over first, through `record_dead_letter`."""

    async def process(
        self, partition: int, accepted: Sequence[Accepted], last_offset: int
    ) -> Sequence[str]:
        """Make the batch's effects durable; its offsets (up to last_offset) are acked after."""

    def record_dead_letter(
        self, message: RawMessage, letter: DeadLetter, rejection: Rejection
    ) -> None: ...


class DeadLetterSink(Protocol):
    def __call__(self, message: RawMessage, letter: DeadLetter, rejection: Rejection) -> None: ...


class Ingestion:
    def __init__(
        self,
        *,
        limits: DecodeLimits,
        metrics: Metrics,
        processor: Processor,
        dead_letter: DeadLetterSink,
        clock: Clock,
    ) -> None:
        self._limits = limits
        self._metrics = metrics
        self._processor = processor
        self._dead_letter = dead_letter
        self._clock = clock

    async def handle(self, batch: Sequence[RawMessage]) -> None:
        now_ms = self._clock()
        by_partition: dict[int, list[Accepted]] = {}
        last_offsets: dict[int, int] = {}
        for message in batch:
            last_offsets[message.partition] = message.offset
            result = decode_event(message.value, now_ms=now_ms, limits=self._limits)
            if isinstance(result, Rejection):
                self._reject(message, result, now_ms)
            else:
                by_partition.setdefault(message.partition, []).append(Accepted(result, message))
        # Counted per batch: a labelled inc() per event is measurable on the hot path.
        tally: Counter[tuple[str, str]] = Counter()
        # Every partition of the batch, even one with only rejections: its dead-letter rows
        # are flushed there, and its position tells the processor whether it has caught up.
        for partition, last_offset in last_offsets.items():
            accepted = by_partition.get(partition, [])
            outcomes = await self._processor.process(partition, accepted, last_offset)
            for item, outcome in zip(accepted, outcomes, strict=True):
                tally[item.event.event_type.value, outcome] += 1
        for (event_type, outcome), count in tally.items():
            self._metrics.events_consumed.labels(event_type, outcome).inc(count)
        self._metrics.batch_size.observe(len(batch))
        if batch:
            oldest_ms = min(message.timestamp_ms for message in batch)
            self._metrics.processing_delay.observe(max(0, self._clock() - oldest_ms) / 1000)

    def _reject(self, message: RawMessage, rejection: Rejection, now_ms: int) -> None:
        source = SourcePosition(message.topic, message.partition, message.offset)
        letter = dead_letter(message.value, rejection, source, rejected_at_ms=now_ms)
        self._dead_letter(message, letter, rejection)
        self._metrics.events_invalid.labels(rejection.code).inc()
        self._metrics.events_consumed.labels("unknown", "invalid").inc()
        self._metrics.dead_lettered.inc()
