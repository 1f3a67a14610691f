"""The spend agent: `funnel.ad_spend` JSON rows into `ad_spend`, bad ones to the dead letters.

Apart from the events hot path: its own agent, its own publisher, and its rows written at once
(`BatchSink.write_now`) before the batch is acked, never through the events' buffered flush.
A message without `updated_at` is versioned by its Kafka timestamp, so a replay rewrites the
same version and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter

from schemas.decode import Rejection
from schemas.spend import decode_spend_message
from sinks.batch import BatchSink
from sinks.spend import spend_row
from streams.clock import Clock
from streams.settings import Settings
from streams.worker.app import raw_message
from streams.worker.dead_letters import SourcePosition, dead_letter
from streams.worker.fatal import Fatal
from streams.worker.ingest import RawMessage
from streams.worker.publisher import Publisher
from streams.worker.sink_rows import dead_letter_row

SPEND_BATCH_MAX = 1_000


@dataclass(frozen=True, slots=True)
class SpendMetrics:
    messages: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SpendMetrics:
        return cls(
            messages=Counter(
                "funnel_spend_messages_total",
                "Spend messages consumed, by outcome (written, invalid) and reason code.",
                ["outcome", "reason"],
                registry=registry,
            )
        )


class SpendIngestion:
    def __init__(
        self,
        *,
        sink: BatchSink,
        publisher: Publisher,
        dlq_topic: str,
        metrics: SpendMetrics,
        clock: Clock,
    ) -> None:
        self._sink = sink
        self._publisher = publisher
        self._dlq_topic = dlq_topic
        self._metrics = metrics
        self._clock = clock

    async def handle(self, batch: Sequence[RawMessage]) -> None:
        """Durable before return: rows and dead-letter rows written, dead letters delivered."""
        rows: list[Sequence[Any]] = []
        rejected: list[Sequence[Any]] = []
        now_ms = self._clock()
        for message in batch:
            result = decode_spend_message(message.value, ingested_at_ms=message.timestamp_ms)
            if isinstance(result, Rejection):
                source = SourcePosition(message.topic, message.partition, message.offset)
                letter = dead_letter(message.value, result, source, rejected_at_ms=now_ms)
                await self._publisher.send(
                    self._dlq_topic, key=message.key, value=letter.payload, headers=letter.headers
                )
                rejected.append(dead_letter_row(message, letter, result))
                self._metrics.messages.labels("invalid", result.code).inc()
            else:
                rows.append(spend_row(result))
        await self._sink.write_now("ad_spend", rows)
        await self._sink.write_now("dead_letters", rejected)
        await self._publisher.delivered()
        if rows:
            self._metrics.messages.labels("written", "").inc(len(rows))


def add_spend_agent(
    app: faust.App,
    settings: Settings,
    *,
    sink: BatchSink,
    registry: CollectorRegistry,
    clock: Clock,
    fatal: Fatal,
) -> None:
    topic = app.topic(
        settings.spend_topic, key_serializer="raw", value_serializer="raw", internal=False
    )
    spend = SpendIngestion(
        sink=sink,
        publisher=Publisher(app),
        dlq_topic=settings.dlq_topic,
        metrics=SpendMetrics.create(registry),
        clock=clock,
    )

    async def ingest_spend(stream: faust.StreamT[bytes]) -> None:
        # take_events exists on Stream but faust's StreamT interface does not declare it.
        batches = stream.take_events(  # type: ignore[attr-defined]
            SPEND_BATCH_MAX, within=settings.batch_within_s
        )
        try:
            async for batch in batches:
                await spend.handle([raw_message(event) for event in batch])
        except Exception as error:
            fatal(error, "ad-spend agent")  # exits without acking, like the events agent

    app.agent(topic, name="funnel-ad-spend")(ingest_spend)
