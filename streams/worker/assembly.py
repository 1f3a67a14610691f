"""Assemble the real worker: app, funnel processor, Faust table, sink, abandoned-cart topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry

from sinks.batch import BatchSink
from streams.settings import Settings
from streams.settings_adapters import funnel_rules
from streams.worker.app import create_app
from streams.worker.faust_batches import read_position
from streams.worker.funnel_metrics import FunnelMetrics
from streams.worker.ingest import Clock
from streams.worker.ingest_metrics import Metrics
from streams.worker.processor import FunnelProcessor
from streams.worker.publisher import Publisher

SESSIONS_TABLE = "funnel-sessions"


def caught_up(app: faust.App, tp: TP) -> bool:
    """Nothing left to read: the fetcher's high watermark (Fetch responses carry it, on every
    broker) is at the next offset to read. An unknown one counts as "more to read", so an idle
    tick never runs ahead of data not yet fetched."""
    highwater: int | None = app.consumer.highwater(tp)
    position = read_position(app.consumer, tp)
    return highwater is not None and position is not None and highwater <= position


def build_worker_app(
    settings: Settings,
    *,
    registry: CollectorRegistry,
    sink: BatchSink,
    clock: Clock,
    faust_overrides: Mapping[str, Any] | None = None,
) -> faust.App:
    funnel_metrics = FunnelMetrics.create(
        registry,
        site_label_limit=settings.site_label_limit,
        lateness_ms=settings.lateness_s * 1000,
    )

    def build_processor(app: faust.App, publisher: Publisher) -> FunnelProcessor:
        table = app.Table(SESSIONS_TABLE, key_type=bytes, value_type=bytes)
        processor = FunnelProcessor(
            table=table,
            rules=funnel_rules(settings),
            sink=sink,
            metrics=funnel_metrics,
            clock=clock,
            publisher=publisher,
            abandoned_topic=settings.abandoned_topic,
            owns=lambda partition: (
                TP(settings.events_topic, partition) in app.consumer.assignment()
            ),
            assigned=lambda: sorted(
                tp.partition
                for tp in app.consumer.assignment()
                if tp.topic == settings.events_topic
            ),
            caught_up=lambda partition: caught_up(app, TP(settings.events_topic, partition)),
            settled=lambda: not (app.rebalancing or app.in_recovery),
        )
        app.timer(interval=1.0, name="funnel-idle-tick")(processor.tick)

        async def on_revoked(sender: Any, *args: Any, signal: Any, **_: Any) -> None:
            revoked: set[TP] = args[0]  # mode's Signal passes the payload positionally
            await processor.revoke(
                {tp.partition for tp in revoked if tp.topic == settings.events_topic}
            )

        async def on_assigned(sender: Any, *args: Any, signal: Any, **_: Any) -> None:
            assigned: set[TP] = args[0]
            await processor.assigned(
                {tp.partition for tp in assigned if tp.topic == settings.events_topic}
            )

        # mode's stubs declare a receiver union mypy cannot match an async def against.
        app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
        app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
        return processor

    return create_app(
        settings,
        metrics=Metrics.create(registry),
        clock=clock,
        build_processor=build_processor,
        faust_overrides=faust_overrides,
    )
