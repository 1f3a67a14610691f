"""`create_app`: the Faust application factory. No module-level app; the CLI builds the real one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NoReturn

import faust

from streams.clock import Clock
from streams.kafka.config import faust_credentials
from streams.settings import Settings
from streams.settings_adapters import decode_limits
from streams.worker.fatal import Fatal
from streams.worker.faust_batches import PromptTableManager, Record, install_batch_consumer
from streams.worker.ingest import Ingestion, Processor, RawMessage
from streams.worker.ingest_metrics import Metrics
from streams.worker.publisher import Publisher

ProcessorFactory = Callable[[faust.App, Publisher], Processor]
"""Builds the processor against the app, so it can declare its tables before the app starts."""


def create_app(
    settings: Settings,
    *,
    metrics: Metrics,
    clock: Clock,
    build_processor: ProcessorFactory,
    fatal: Fatal,
    faust_overrides: Mapping[str, Any] | None = None,
) -> faust.App:
    """Build the worker app. `faust_overrides` carries broker-specific client timeouts; `fatal`
    is called with any error that escapes a batch (retriable sink errors never do: the sink
    retries them, which is the back-pressure)."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        processing_guarantee="at_least_once",
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        web_enabled=False,
        autodiscover=False,
        # One fetch is one processing batch (one sink insert, one state commit per session).
        broker_max_poll_records=settings.batch_max,
        TableManager=PromptTableManager,
        producer_max_batch_size=256 * 1024,
        # Per partition and fetch. aiokafka fetches again only once a fetch is consumed, so with
        # Faust's 1 MiB (~2,500 events) nearly every batch waited a broker round trip; with 16
        # MiB most are served from what one fetch brought (capped at 50 MB per fetch).
        consumer_max_fetch_size=16 * 1024**2,
        **(faust_overrides or {}),
    )
    publisher = Publisher(app)
    processor = build_processor(app, publisher)

    ingestion = Ingestion(
        limits=decode_limits(settings),
        metrics=metrics,
        processor=processor,
        publisher=publisher,
        repartition_topic=settings.repartition_topic_name,
        dlq_topic=settings.dlq_topic,
        clock=clock,
    )

    metrics.up.set(1)

    def stop(error: Exception) -> NoReturn:
        # Not acked: the batch's offsets stay uncommitted; the process exits at once
        # (exit 70, one clear log line) rather than through Faust's crash and shutdown.
        metrics.up.set(0)
        fatal(error, "ingest agent")

    async def durable(step: Awaitable[None]) -> None:
        try:
            await step
        except Exception as error:
            stop(error)

    async def ingest(records: Sequence[Record]) -> asyncio.Future[None]:
        try:
            with metrics.batch_seconds.time():
                step = await ingestion.handle(_raws(records))
        except Exception as error:
            stop(error)
        return asyncio.ensure_future(durable(step))

    # Both topics in one subscription: Faust assigns their same-numbered partitions (and the
    # table's changelog partition) to the same worker, since they are co-partitioned.
    install_batch_consumer(app, (settings.events_topic, settings.repartition_topic_name), ingest)
    return app


def _raws(records: Sequence[Record]) -> list[RawMessage]:
    # tuple.__new__ skips the NamedTuple's Python-level __new__: this runs for every message.
    make = tuple.__new__
    return [
        make(RawMessage, (
            r.topic, r.partition, r.offset, r.timestamp, r.key,
            # A tombstone (no value) is bad input like any other: it fails as "not JSON".
            r.value or b"",
            _headers(r.headers) if r.headers else (),
        ))
        for r in records
    ]  # fmt: skip


def raw_message(event: faust.EventT[bytes]) -> RawMessage:
    """For agents that stay on Faust's own stream path."""
    message = event.message
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000),
        key=message.key,
        # A tombstone (no value) is bad input like any other: it fails as "not JSON".
        value=message.value or b"",
        headers=_headers(message.headers),
    )


def _headers(headers: Any) -> tuple[tuple[str, bytes], ...]:
    if not headers:
        return ()
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(name), bytes(value)) for name, value in pairs)
