"""Stand-ins for the worker's I/O in unit tests, writing to one shared journal so a test can
assert the order of effects (rows, flush, sends). The table is a real, unstarted Faust table."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from schemas.event import Event
from sinks.batch import Pending
from sinks.tables import ordered_columns
from streams.funnel.partition import Outcome
from streams.funnel.rules import FunnelRules, SessionLimits
from streams.worker.funnel_metrics import FunnelMetrics, SiteLabels
from streams.worker.ingest import Accepted, PartitionBatch, RawMessage
from streams.worker.processor import FunnelProcessor, Topics
from streams.worker.publisher import Deliveries, SpreadRecord
from streams.worker.repartition import Repartitioner, RepartitionMetrics

Journal = list[tuple[Any, ...]]
EVENTS = "events"
REPARTITION = "repartition"
ABANDONED = "abandoned"
PARTITIONS = 2


class RecordingSink:
    """`BatchSink.add/add_columns/flush`; `fail_flush` makes the next flush raise, as an outage
    would."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.rows: dict[str, list[Sequence[Any]]] = {}
        self.fail_flush = False

    def add(self, table: str, row: Sequence[Any]) -> None:
        self.journal.append(("add", table))
        self.rows.setdefault(table, []).append(row)

    def add_columns(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Recorded as the rows the columns hold, one `add` each."""
        for row in zip(*ordered_columns(table, columns), strict=True):
            self.add(table, row)

    def take(self) -> Pending:
        self.journal.append(("take",))
        return Pending({})

    async def flush(self, pending: Pending | None = None) -> None:
        if self.fail_flush:
            raise RuntimeError("ClickHouse is down")
        self.journal.append(("flush",))


class RecordingPublisher:
    """`Publisher.send/delivered`: records each record instead of producing it."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.headers: list[list[tuple[str, bytes]]] = []  # per record in `sent`

    async def send(self, topic: str, **record: Any) -> None:
        self.journal.append(("send", topic))
        self.sent.append((topic, record["key"], record["value"], record.get("partition")))
        self.headers.append(record.get("headers") or [])

    async def send_batch(
        self, topic: str, partition: int, records: Iterable[tuple[bytes, bytes | None]]
    ) -> None:
        for key, value in records:
            await self.send(topic, key=key, value=value, partition=partition)

    async def send_spread(self, topic: str, records: Sequence[SpreadRecord]) -> None:
        for _hint, key, value, headers in records:  # the partition is the producer's choice
            await self.send(topic, key=key, value=value, headers=list(headers))

    def detach(self) -> Deliveries:
        self.journal.append(("detach",))
        return Deliveries()

    async def delivered(self, *others: Deliveries) -> None:
        self.journal.append(("delivered",))


def sessions_table(app_id: str = "unit") -> faust.types.TableT[Any, Any]:
    app = faust.App(app_id, store="memory://", autodiscover=False, web_enabled=False)
    return app.Table("funnel-sessions", key_type=bytes, value_type=bytes)


def batch_of(events: Sequence[Accepted], last_offset: int) -> PartitionBatch:
    """A partition's share of a batch read from the events topic only."""
    return PartitionBatch(events, {EVENTS: last_offset})


def accepted(event: Event, partition: int, offset: int) -> Accepted:
    key = event.session_id.encode()
    message = RawMessage(EVENTS, partition, offset, event.occurred_at_ms, key, b"{}")
    return Accepted(event, message)


class Rig:
    """A `FunnelProcessor` over a real Faust table, with switchable ownership and clock."""

    def __init__(self, rules: FunnelRules, now_ms: int, partitions: int = PARTITIONS) -> None:
        self.journal: Journal = []
        self.sink = RecordingSink(self.journal)
        self.publisher = RecordingPublisher(self.journal)
        self.table = sessions_table()
        self.now_ms = now_ms
        self.owned = set(range(partitions))
        self.end_offsets: dict[int, int] = {}
        self.settled = True
        self.processor = FunnelProcessor(
            table=self.table,
            rules=rules,
            limits=SessionLimits(),
            sink=self.sink,  # type: ignore[arg-type]
            metrics=FunnelMetrics.create(
                CollectorRegistry(), sites=SiteLabels(10), lateness_ms=rules.lateness_ms
            ),
            clock=lambda: self.now_ms,
            publisher=self.publisher,  # type: ignore[arg-type]
            abandoned_topic=ABANDONED,
            repartitioner=Repartitioner(
                publisher=self.publisher,  # type: ignore[arg-type]
                topic=REPARTITION,
                partitions=partitions,
                metrics=RepartitionMetrics.create(CollectorRegistry()),
            ),
            topics=Topics(EVENTS, REPARTITION, partitions),
            owns=lambda partition: partition in self.owned,
            assigned=lambda: sorted(self.owned),
            end_offset=self.end_offset,
            fetch_positions=self.fetch_positions,
            settled=lambda: self.settled,
        )

    def process(self, batch: Mapping[int, PartitionBatch]) -> Mapping[int, Sequence[Outcome]]:
        """The batch processed and made durable, as the consumer waits for before acking."""

        async def whole() -> Mapping[int, Sequence[Outcome]]:
            processed = await self.processor.process(batch)
            await processed.durable
            return processed.outcomes

        return asyncio.run(whole())

    def end_offset(self, topic: str, partition: int) -> int:
        return self.end_offsets.get(partition, 0) if topic == EVENTS else 0

    async def fetch_positions(
        self, pairs: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], int | None]:
        return {pair: 0 for pair in pairs}  # nothing read yet: at the start of each partition

    @property
    def changelog(self) -> str:
        name: str = self.table.changelog_topic.get_topic_name()
        return name
