"""Process-level wiring shared by the CLI commands: clocks, topics, ClickHouse, the worker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import faust
import uvloop
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry, start_http_server

from sinks.batch import BatchSink, SinkMetrics
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from streams.clock import wall_clock_ms
from streams.kafka.config import (
    aiokafka_security,
    faust_flavor_settings,
    install_flavor_workarounds,
)
from streams.kafka.topics import create_topics, worker_topics
from streams.settings import Settings
from streams.settings_adapters import clickhouse_config
from streams.worker.assembly import build_worker_app
from streams.worker.fatal import exit_process
from streams.worker.query_pool import QueryPool
from streams.worker.report_endpoint import report_services


def ensure_topics(settings: Settings) -> None:
    asyncio.run(
        create_topics(
            settings.kafka_bootstrap,
            worker_topics(settings),
            client_options=aiokafka_security(settings),
        )
    )


def migrated_client(config: ClickHouseConfig) -> tuple[Client, list[str]]:
    """A client over the migrated schema, with the migrations it applied; closed if they fail."""
    client = connect(config)
    try:
        return client, migrate(client, config, now=datetime.now(UTC))
    except BaseException:
        client.close()
        raise


def run_migrations(settings: Settings) -> list[str]:
    client, applied = migrated_client(clickhouse_config(settings))
    client.close()
    return applied


@contextlib.contextmanager
def clickhouse_sink(settings: Settings, registry: CollectorRegistry) -> Iterator[BatchSink]:
    """The worker's sink, opening and migrating its client on its own thread meanwhile (the
    group join takes seconds); every write waits for that. Both are closed on the way out,
    however the worker ends (Faust ends it with SystemExit): the sink's thread, then the client."""
    config = clickhouse_config(settings)
    metrics = SinkMetrics.create(registry)
    sink = BatchSink.opening(
        lambda: migrated_client(config)[0], database=config.database, metrics=metrics
    )
    try:
        yield sink
    finally:
        sink.close()


def run_worker(settings: Settings) -> None:
    """Run one worker until SIGINT/SIGTERM. Blocks; exits the process like any Faust worker."""
    use_uvloop()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    install_flavor_workarounds(settings)
    ensure_topics(settings)
    registry = CollectorRegistry()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    with clickhouse_sink(settings, registry) as sink:
        app = build_worker_app(
            settings,
            registry=registry,
            sink=sink,
            clock=wall_clock_ms,
            fatal=exit_process,
            faust_overrides=faust_flavor_settings(settings),
        )
        config = clickhouse_config(settings)

        def query_client() -> Client:
            sink.wait_opened()  # the tables exist only once the sink's client has migrated
            return connect(config, create_database=False)

        queries = QueryPool(query_client, limit=settings.report_max_concurrent)
        services = report_services(settings, queries)
        worker = faust_worker(app, *services, loglevel=settings.log_level)
        tune_gc()
        worker.execute_from_commandline()


def faust_worker(app: faust.App, *services: Any, loglevel: str) -> faust.Worker:
    worker = faust.Worker(app, *services, loglevel=loglevel)
    # Faust's terminal spinner (on at WARNING and above) turns the root logger to DEBUG, so
    # every aiokafka debug line (one per produced record) is built and handled: ~4% of the
    # worker's CPU. Without it, the level asked for is the level in force.
    worker.spinner = None
    return worker


def tune_gc() -> None:
    """Fewer, cheaper cyclic collections once the worker is built.

    With the default thresholds a 200k-event backlog ran 26 full collections of ~160 ms each,
    every one traversing the whole heap (Faust, the modules, the warm sessions): 4 s of a 35 s
    run. Frozen, the start-up objects are never traversed again; a larger first generation lets
    a batch's short-lived objects die by reference counting before anything is scanned.
    """
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)


def use_uvloop() -> None:
    """Every event loop of this process from now on is uvloop's: the worker's own and the one
    Faust's consumer thread makes. Side by side in the benchmark, asyncio's ran 1-15 % slower."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
