"""Validate a batch of raw messages: rejections to the dead-letter topic, the rest onwards."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Event
from streams.clock import Clock
from streams.funnel.partition import Outcome
from streams.worker.dead_letters import DeadLetter, SourcePosition, dead_letter
from streams.worker.ingest_metrics import Metrics
from streams.worker.publisher import Publisher, SpreadRecord
from streams.worker.repartition import Marker, forwarded_late, read_marker


# Tuples, not frozen dataclasses: built once per message, where a frozen dataclass's __init__
# costs four times as much.
class RawMessage(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


class Accepted(NamedTuple):
    event: Event
    message: RawMessage


@dataclass(frozen=True, slots=True)
class PartitionBatch:
    """A partition's share of one batch: what it read from the events topic (in offset order),
    what other partitions forwarded to it with their lateness verdicts, the progress markers
    they announced, and the last offset read per topic."""

    accepted: Sequence[Accepted]
    last_offsets: Mapping[str, int]
    forwarded: Sequence[tuple[Accepted, bool]] = ()
    markers: Sequence[Marker] = ()


@dataclass(frozen=True, slots=True)
class Processed:
    """One outcome per accepted event, then per forwarded event, per partition, in order; and
    the batch's durable step, done once its effects are durable (raises if they cannot be)."""

    outcomes: Mapping[int, Sequence[Outcome]]
    durable: asyncio.Future[None]


class Processor(Protocol):
    """Downstream of validation. Rejected messages are handed over first (record_dead_letter)."""

    async def process(self, batch: Mapping[int, PartitionBatch]) -> Processed:
        """Process the batch; its offsets may be acked once `durable` is done, which covers the
        records the caller sent for the batch before this call (dead letters) too."""

    def record_dead_letter(
        self, message: RawMessage, letter: DeadLetter, rejection: Rejection
    ) -> None: ...


class Ingestion:
    def __init__(
        self,
        *,
        limits: DecodeLimits,
        metrics: Metrics,
        processor: Processor,
        publisher: Publisher,
        repartition_topic: str,
        dlq_topic: str,
        clock: Clock,
    ) -> None:
        self._limits = limits
        self._metrics = metrics
        self._processor = processor
        self._publisher = publisher
        self._repartition_topic = repartition_topic
        self._dlq_topic = dlq_topic
        self._clock = clock

    async def handle(self, batch: Sequence[RawMessage]) -> asyncio.Future[None]:
        """Validate and process `batch`; its offsets may be acked once the returned step is done
        (dead letters, rows, state and records all durable)."""
        now_ms = self._clock()
        parts: dict[int, _Part] = {}
        # Counted per batch: a labelled inc() per event is measurable on the hot path.
        tally: Counter[tuple[str, Outcome]] = Counter()
        rejected: list[tuple[RawMessage, Rejection]] = []
        for message in batch:
            part = parts.get(message.partition)
            if part is None:
                part = parts[message.partition] = _Part()
            part.last_offsets[message.topic] = message.offset
            internal = message.topic == self._repartition_topic
            marker = read_marker(message.headers) if internal else None
            if marker is not None:
                part.markers.append(marker)
                continue
            result = decode_event(message.value, now_ms=now_ms, limits=self._limits)
            if isinstance(result, Rejection):
                rejected.append((message, result))
            elif internal:
                part.forwarded.append((Accepted(result, message), forwarded_late(message.headers)))
            else:
                part.accepted.append(Accepted(result, message))
        if rejected:
            await self._reject(rejected, now_ms)
            tally["unknown", Outcome.INVALID] += len(rejected)
        # Every partition of the batch, even one with only rejections: its position tells the
        # processor whether it has caught up.
        processed = await self._processor.process(
            {
                p: PartitionBatch(part.accepted, part.last_offsets, part.forwarded, part.markers)
                for p, part in parts.items()
            }
        )
        for partition, results in processed.outcomes.items():
            part = parts[partition]
            items = [*part.accepted, *(item for item, _ in part.forwarded)]
            for item, outcome in zip(items, results, strict=True):
                tally[item.event.event_type.value, outcome] += 1
        self._metrics.batch_size.observe(len(batch))
        if batch:
            oldest_ms = min(message.timestamp_ms for message in batch)
            self._metrics.processing_delay.observe(max(0, self._clock() - oldest_ms) / 1000)
        return asyncio.ensure_future(self._consumed(processed.durable, tally))

    async def _consumed(
        self, durable: asyncio.Future[None], tally: Counter[tuple[str, Outcome]]
    ) -> None:
        """Events count as consumed once their batch is durable, as they did before the durable
        step overlapped the next batch: "all consumed" still means "all acked"."""
        await durable
        for (event_type, outcome), count in tally.items():
            self._metrics.events_consumed.labels(event_type, outcome).inc(count)

    async def _reject(self, rejected: Sequence[tuple[RawMessage, Rejection]], now_ms: int) -> None:
        """Dead letters, sent as record batches: one send per letter cost ~250 µs."""
        letters: list[SpreadRecord] = []
        for message, rejection in rejected:
            source = SourcePosition(message.topic, message.partition, message.offset)
            letter = dead_letter(message.value, rejection, source, rejected_at_ms=now_ms)
            letters.append((message.partition, message.key, letter.payload, letter.headers))
            self._processor.record_dead_letter(message, letter, rejection)
            self._metrics.events_invalid.labels(rejection.code).inc()
        await self._publisher.send_spread(self._dlq_topic, letters)
        self._metrics.dead_lettered.inc(len(rejected))


@dataclass
class _Part:
    accepted: list[Accepted] = field(default_factory=list)
    last_offsets: dict[str, int] = field(default_factory=dict)
    forwarded: list[tuple[Accepted, bool]] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
