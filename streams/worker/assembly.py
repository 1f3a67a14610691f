"""Assemble the real worker: app, funnel processor, Faust table, sink, abandoned-cart topic."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry

from sinks.batch import BatchSink
from streams.clock import Clock
from streams.settings import Settings
from streams.settings_adapters import funnel_rules, session_limits
from streams.worker.ad_spend import add_spend_agent
from streams.worker.app import create_app
from streams.worker.fatal import Fatal
from streams.worker.faust_batches import BatchConsumer
from streams.worker.funnel_metrics import FunnelMetrics, SiteLabels
from streams.worker.ingest_metrics import Metrics
from streams.worker.processor import FunnelProcessor, Topics
from streams.worker.publisher import Publisher
from streams.worker.repartition import Repartitioner, RepartitionMetrics

SESSIONS_TABLE = "funnel-sessions"


log = logging.getLogger(__name__)


def end_offset(app: faust.App, tp: TP) -> int:
    """The fetcher's high watermark (Fetch responses carry it, on every broker); unknown is
    treated as "more to read", so an idle tick never runs ahead of data not yet fetched."""
    highwater: int | None = app.consumer.highwater(tp)
    return sys.maxsize if highwater is None else highwater


def _batch_consumer(app: faust.App) -> BatchConsumer:
    consumer = app.consumer
    if not isinstance(consumer, BatchConsumer):
        raise TypeError(f"the worker needs its batch consumer installed, not {type(consumer)}")
    return consumer


def site_labels(settings: Settings) -> SiteLabels:
    allowed = frozenset(s.strip() for s in settings.sites.split(",") if s.strip())
    return SiteLabels(
        settings.site_label_limit,
        min_sessions=settings.site_label_min_sessions,
        allowed=allowed or None,
    )


def funnel_metrics_of(settings: Settings, registry: CollectorRegistry) -> FunnelMetrics:
    lateness_ms = settings.lateness_s * 1000
    return FunnelMetrics.create(registry, sites=site_labels(settings), lateness_ms=lateness_ms)


def guarded(
    step: Callable[[], Awaitable[None]],
    fatal: Fatal,
    where: str,
    *,
    stopping: Callable[[], bool],
) -> Callable[[], Awaitable[None]]:
    """`step`, with any error it raises handed to `fatal` (the worker exits, see fatal.py).

    `step` must ack nothing (the idle tick): once the worker is stopping, its producer closes
    under a running step, and that failure is a clean stop, not a crash. Whatever the step had
    written is replayed like after any crash; the handled batches' offsets stay right.
    """

    async def run() -> None:
        try:
            await step()
        except Exception as error:
            if stopping():
                log.warning("%s cut short by the worker stopping: %s", where, error)
                return
            fatal(error, where)

    return run


def build_worker_app(
    settings: Settings,
    *,
    registry: CollectorRegistry,
    sink: BatchSink,
    clock: Clock,
    fatal: Fatal,
    faust_overrides: Mapping[str, Any] | None = None,
) -> faust.App:
    funnel_metrics = funnel_metrics_of(settings, registry)
    repartition_metrics = RepartitionMetrics.create(registry)
    topics = Topics(
        settings.events_topic, settings.repartition_topic_name, settings.topic_partitions
    )

    def build_processor(app: faust.App, publisher: Publisher) -> FunnelProcessor:
        table = app.Table(SESSIONS_TABLE, key_type=bytes, value_type=bytes)

        async def fetch_positions(
            pairs: Iterable[tuple[str, int]],
        ) -> dict[tuple[str, int], int | None]:
            tps = [TP(topic, partition) for topic, partition in pairs]
            positions = await _batch_consumer(app).handled_positions(tps)
            return {(tp.topic, tp.partition): position for tp, position in positions.items()}

        processor = FunnelProcessor(
            table=table,
            rules=funnel_rules(settings),
            limits=session_limits(settings),
            sink=sink,
            metrics=funnel_metrics,
            clock=clock,
            publisher=publisher,
            abandoned_topic=settings.abandoned_topic,
            repartitioner=Repartitioner(
                publisher=publisher,
                topic=topics.repartition,
                partitions=topics.partitions,
                metrics=repartition_metrics,
            ),
            topics=topics,
            owns=lambda partition: (
                TP(settings.events_topic, partition) in app.consumer.assignment()
            ),
            assigned=lambda: [
                tp.partition
                for tp in app.consumer.assignment()
                if tp.topic == settings.events_topic
            ],
            end_offset=lambda topic, partition: end_offset(app, TP(topic, partition)),
            fetch_positions=fetch_positions,
            settled=lambda: not (app.rebalancing or app.in_recovery),
        )

        app.timer(interval=settings.tick_interval_s, name="funnel-idle-tick")(
            guarded(processor.tick, fatal, "idle tick", stopping=lambda: app.should_stop)
        )

        _follow_rebalances(app, processor, settings.events_topic)
        return processor

    app = create_app(
        settings,
        metrics=Metrics.create(registry),
        clock=clock,
        build_processor=build_processor,
        fatal=fatal,
        faust_overrides=faust_overrides,
    )
    add_spend_agent(app, settings, sink=sink, registry=registry, clock=clock, fatal=fatal)
    # ClickHouse opens while the worker joins its group; a worker that cannot write stops now,
    # not at its first batch (a quiet topic may have none for long).
    app.task(guarded(sink.opened, fatal, "ClickHouse start-up", stopping=lambda: app.should_stop))
    return app


def _follow_rebalances(app: faust.App, processor: FunnelProcessor, topic: str) -> None:
    async def on_revoked(sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        revoked: set[TP] = args[0]  # mode's Signal passes the payload positionally
        await processor.revoke({tp.partition for tp in revoked if tp.topic == topic})

    async def on_assigned(sender: Any, *args: Any, signal: Any, **_: Any) -> None:
        assigned: set[TP] = args[0]
        await processor.keep_partitions({tp.partition for tp in assigned if tp.topic == topic})

    # mode's stubs declare a receiver union mypy cannot match an async def against.
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
