"""Process-level wiring shared by the CLI commands: clocks, topics, ClickHouse, the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry, start_http_server

from sinks.batch import BatchSink, SinkMetrics
from sinks.clickhouse import connect, migrate
from streams.kafka.config import aiokafka_security
from streams.kafka.tansu_compat import TANSU_CLIENT_TIMEOUTS, install_tansu_compat
from streams.kafka.topics import create_topics
from streams.settings import Settings
from streams.settings_adapters import clickhouse_config
from streams.worker.assembly import build_worker_app
from streams.worker.report_endpoint import report_services


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def broker_overrides(settings: Settings) -> Mapping[str, Any]:
    """Client settings for the broker flavour; tansu needs its workarounds installed."""
    if settings.kafka_flavor == "tansu":
        install_tansu_compat()
        return TANSU_CLIENT_TIMEOUTS.faust_settings()
    return {}


def ensure_topics(settings: Settings) -> None:
    n = settings.topic_partitions
    # The repartition topic must have the events topic's count: it is co-partitioned with it.
    topics = {
        settings.events_topic: n,
        settings.repartition_topic_name: n,
        settings.dlq_topic: n,
        settings.abandoned_topic: n,
    }
    asyncio.run(
        create_topics(settings.kafka_bootstrap, topics, client_options=aiokafka_security(settings))
    )


def run_migrations(settings: Settings) -> list[str]:
    config = clickhouse_config(settings)
    client = connect(config)
    try:
        return migrate(client, config, now=datetime.now(UTC))
    finally:
        client.close()


def run_worker(settings: Settings) -> None:
    """Run one worker until SIGINT/SIGTERM. Blocks; exits the process like any Faust worker."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    overrides = broker_overrides(settings)
    ensure_topics(settings)
    registry = CollectorRegistry()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    config = clickhouse_config(settings)
    client = connect(config)
    migrate(client, config, now=datetime.now(UTC))
    sink = BatchSink(client, database=config.database, metrics=SinkMetrics.create(registry))
    app = build_worker_app(
        settings, registry=registry, sink=sink, clock=wall_clock_ms, faust_overrides=overrides
    )
    worker = faust.Worker(app, *report_services(settings, sink), loglevel=settings.log_level)
    worker.execute_from_commandline()
