"""The repartition topic: events read in the wrong partition go to their session's partition.

A session's partition is murmur2(session_id) modulo the partition count, as Kafka's default
partitioner places a message keyed by the session. An event read anywhere else (no key, keyed
by user or device, or a producer with another partitioner) is forwarded, keyed by its session,
to that partition of the internal repartition topic, co-partitioned with the events topic so
the same worker reads both. The forward carries its source's lateness verdict (``LATE_HEADER``);
progress markers (``MARKER_HEADER``) follow the forwards, see ``streams.funnel.progress``.
A replay after a crash forwards again; the session's event_id dedup makes the copy harmless.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from schemas.event import Event
from streams.funnel.progress import SourceProgress
from streams.kafka.key_hash import key_hash
from streams.worker.publisher import Publisher

MARKER_HEADER = "funnel.progress"  # b"<source partition>:<source watermark ms>"
LATE_HEADER = "funnel.late"  # b"1": late in its source partition's order
SOURCE_HEADER = "funnel.source"  # b"<topic>/<partition>/<offset>", for a human tracing it

Marker = tuple[int, int]
Headers = Sequence[tuple[str, bytes]]


class Message(Protocol):
    """What a forward needs of the message it was read from (``ingest.RawMessage``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp_ms(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...


def partition_for(session_id: str, partitions: int) -> int:
    """Where a producer keying by session puts the session's events."""
    return key_hash(session_id.encode()) % partitions


def read_marker(headers: Headers) -> Marker | None:
    for name, value in headers:
        if name == MARKER_HEADER:
            source, _, watermark = value.decode().partition(":")
            return int(source), int(watermark)
    return None


def forwarded_late(headers: Headers) -> bool:
    return (LATE_HEADER, b"1") in headers


@dataclass(frozen=True, slots=True)
class RepartitionMetrics:
    repartitioned: Counter
    lag: Gauge
    hold: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> RepartitionMetrics:
        return cls(
            repartitioned=Counter(
                "funnel_repartitioned_total",
                "Valid events read in a partition other than their session's, forwarded to it "
                "through the repartition topic; key is none (unkeyed) or other.",
                ["key"],
                registry=registry,
            ),
            lag=Gauge(
                "funnel_repartition_lag_messages",
                "Messages (forwards and progress markers) in the repartition topic not yet read, "
                "per partition.",
                ["partition"],
                registry=registry,
            ),
            hold=Gauge(
                "funnel_repartition_hold_seconds",
                "How far the slowest other source holds back finalisation, behind this "
                "partition's own source watermark.",
                ["partition"],
                registry=registry,
            ),
        )

    def forget_partition(self, partition: int) -> None:
        for gauge in (self.lag, self.hold):
            with contextlib.suppress(KeyError):  # never set for this partition
                gauge.remove(str(partition))


class Repartitioner:
    def __init__(
        self, *, publisher: Publisher, topic: str, partitions: int, metrics: RepartitionMetrics
    ) -> None:
        self._publisher = publisher
        self._topic = topic
        self._partitions = partitions
        self._metrics = metrics

    async def split(
        self, progress: SourceProgress, events: Sequence[tuple[Event, Message]]
    ) -> list[bool]:
        """Judge a source partition's events in offset order and forward those of other
        partitions; returns per event whether it stays (is processed here)."""
        stays: list[bool] = []
        counts = {"none": 0, "other": 0}
        for event, message in events:
            late = progress.judge(event.occurred_at_ms, message.timestamp_ms)
            target = partition_for(event.session_id, self._partitions)
            stays.append(target == progress.partition)
            if target == progress.partition:
                continue
            origin = f"{message.topic}/{message.partition}/{message.offset}".encode()
            headers = [(SOURCE_HEADER, origin)] + ([(LATE_HEADER, b"1")] if late else [])
            await self._publisher.send(
                self._topic,
                key=event.session_id.encode(),
                value=message.value,
                partition=target,
                headers=headers,
            )
            counts["none" if message.key is None else "other"] += 1
        for label, count in counts.items():
            if count:
                self._metrics.repartitioned.labels(label).inc(count)
        return stays

    async def announce(self, progress: SourceProgress) -> None:
        """Tell the other partitions how far this source has got (after its forwards)."""
        due = progress.to_announce()
        if due is None:
            return
        watermark, partitions = due
        marker = f"{progress.partition}:{watermark}".encode()
        for partition in partitions:
            await self._publisher.send(
                self._topic,
                key=None,
                value=b"",
                partition=partition,
                headers=[(MARKER_HEADER, marker)],
            )
        progress.announced(watermark)

    def forget_partition(self, partition: int) -> None:
        self._metrics.forget_partition(partition)

    def observe(self, progress: SourceProgress, unread: int | None) -> None:
        label = str(progress.partition)
        if unread is not None:
            self._metrics.lag.labels(label).set(unread)
        lag_ms = progress.lag_ms()
        if lag_ms is not None:
            self._metrics.hold.labels(label).set(lag_ms / 1000)
