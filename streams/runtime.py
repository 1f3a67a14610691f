"""Process-level wiring shared by the CLI commands: clocks, topics, ClickHouse, the worker."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CollectorRegistry, start_http_server

from sinks.batch import BatchSink, SinkMetrics
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from streams.embedded_broker import TANSU_CLIENT_TIMEOUTS, install_tansu_compat
from streams.kafka_config import aiokafka_security
from streams.report_server import report_services
from streams.settings import Settings
from streams.topics import create_topics
from streams.worker import build_worker_app


def free_port() -> int:
    """A loopback port free right now (for local, single-machine runs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def local_worker_env(
    *, bootstrap: str, data_dir: Path, partitions: int, metrics_port: int
) -> dict[str, str]:
    """FUNNEL_* variables of a `funnel worker` child on this machine's embedded broker.

    Shared by the demo, the benchmark and the tests; callers add what differs (topics, rules).
    """
    return {
        "FUNNEL_KAFKA_BOOTSTRAP": bootstrap,
        "FUNNEL_KAFKA_FLAVOR": "tansu",
        "FUNNEL_TOPIC_PARTITIONS": str(partitions),
        "FUNNEL_DATA_DIR": str(data_dir),
        "FUNNEL_METRICS_PORT": str(metrics_port),
        "FUNNEL_METRICS_HOST": "127.0.0.1",
        # Several local workers must not fight over the default report port.
        "FUNNEL_QUERY_PORT": str(free_port()),
        "FUNNEL_LOG_LEVEL": "WARNING",
    }


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def clickhouse_config(settings: Settings) -> ClickHouseConfig:
    return ClickHouseConfig(
        dsn=settings.resolved_clickhouse_dsn,
        database=settings.clickhouse_database,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password.get_secret_value(),
        raw_ttl_days=settings.raw_ttl_days,
        aggregate_ttl_days=settings.aggregate_ttl_days,
    )


def broker_overrides(settings: Settings) -> Mapping[str, Any]:
    """Client settings for the broker flavour; tansu needs its workarounds installed."""
    if settings.kafka_flavor == "tansu":
        install_tansu_compat()
        return TANSU_CLIENT_TIMEOUTS.faust_settings()
    return {}


def ensure_topics(settings: Settings) -> None:
    n = settings.topic_partitions
    topics = {settings.events_topic: n, settings.dlq_topic: n, settings.abandoned_topic: n}
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
