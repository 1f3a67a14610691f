"""Assemble the real worker: app, funnel processor, Faust table, sink, abandoned-cart topic."""

from __future__ import annotations

import sys
from collections.abc import Mapping
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
from streams.worker.funnel_metrics import FunnelMetrics, SiteLabels
from streams.worker.ingest_metrics import Metrics
from streams.worker.processor import FunnelProcessor
from streams.worker.publisher import Publisher

SESSIONS_TABLE = "funnel-sessions"


def end_offset(app: faust.App, tp: TP) -> int:
    """The fetcher's high watermark (Fetch responses carry it, on every broker); unknown is
    treated as "more to read", so an idle tick never runs ahead of data not yet fetched."""
    highwater: int | None = app.consumer.highwater(tp)
    return sys.maxsize if highwater is None else highwater


def site_labels(settings: Settings) -> SiteLabels:
    allowed = frozenset(s.strip() for s in settings.sites.split(",") if s.strip())
    return SiteLabels(
        settings.site_label_limit,
        min_sessions=settings.site_label_min_sessions,
        allowed=allowed or None,
    )


def build_worker_app(
    settings: Settings,
    *,
    registry: CollectorRegistry,
    sink: BatchSink,
    clock: Clock,
    fatal: Fatal,
    faust_overrides: Mapping[str, Any] | None = None,
) -> faust.App:
    funnel_metrics = FunnelMetrics.create(
        registry,
        sites=site_labels(settings),
        lateness_ms=settings.lateness_s * 1000,
    )

    def build_processor(app: faust.App, publisher: Publisher) -> FunnelProcessor:
        table = app.Table(SESSIONS_TABLE, key_type=bytes, value_type=bytes)
        processor = FunnelProcessor(
            table=table,
            rules=funnel_rules(settings),
            limits=session_limits(settings),
            sink=sink,
            metrics=funnel_metrics,
            clock=clock,
            publisher=publisher,
            abandoned_topic=settings.abandoned_topic,
            owns=lambda partition: (
                TP(settings.events_topic, partition) in app.consumer.assignment()
            ),
            end_offset=lambda partition: end_offset(app, TP(settings.events_topic, partition)),
            settled=lambda: not (app.rebalancing or app.in_recovery),
        )

        async def idle_tick() -> None:
            try:
                await processor.tick()
            except Exception as error:
                fatal(error, "idle tick")

        app.timer(interval=1.0, name="funnel-idle-tick")(idle_tick)

        async def on_revoked(sender: Any, *args: Any, signal: Any, **_: Any) -> None:
            revoked: set[TP] = args[0]  # mode's Signal passes the payload positionally
            await processor.revoke(
                {tp.partition for tp in revoked if tp.topic == settings.events_topic}
            )

        # mode's stubs declare a receiver union mypy cannot match an async def against.
        app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
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
    return app
