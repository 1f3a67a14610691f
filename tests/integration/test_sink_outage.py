"""A 30 s ClickHouse outage loses nothing and duplicates nothing.

No modern ClickHouse server runs here, so the outage is injected at the client boundary: the
real chDB client is wrapped and, for 30 s, raises the exceptions clickhouse-connect raises for a
refused connection (OperationalError) and for a server-side error (DatabaseError with a code).
The worker runs in-process so the wrapped client can be handed to its sink.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from prometheus_client import CollectorRegistry

from sinks.batch import BatchSink, SinkMetrics
from sinks.clickhouse import ClickHouseConfig, migrate
from streams.clock import wall_clock_ms
from streams.kafka.tansu_compat import TANSU_CLIENT_TIMEOUTS
from streams.local.embedded_broker import EmbeddedBroker
from streams.settings import Settings
from streams.worker.assembly import build_worker_app
from tests.integration.exactness import (
    answer_from,
    assert_same,
    expected_answer,
    final_bound_s,
    prepare,
    simulate,
)
from tests.integration.pipeline import PipelineConfig

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0


class FlakyClient:
    """The real client, except that inserts fail while the outage lasts."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.outage_until = 0.0
        self.failures = 0

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self.outage_until:
            self.failures += 1
            if self.failures % 2:
                raise OperationalError(
                    "Error HTTPConnectionPool(host='clickhouse', port=8123): Max retries exceeded "
                    "(Caused by NewConnectionError: [Errno 111] Connection refused)"
                )
            raise DatabaseError(
                "Code: 242. DB::Exception: Table is in readonly mode. (TABLE_IS_READ_ONLY)",
                code=242,
                name="TABLE_IS_READ_ONLY",
            )
        return self._client.insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def unexpected(error: BaseException, where: str) -> NoReturn:
    # Retriable errors are retried inside the sink; nothing may reach the worker's fatal path.
    raise AssertionError(f"{where} failed: {error!r}")


def test_clickhouse_outage_of_30s_loses_and_duplicates_nothing(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    messages, _ = simulate(seed=21, count=15_000)
    expected, last_event_ms = expected_answer(messages)
    config: PipelineConfig = prepare(broker, unique_topic("outage"), tmp_path, messages)
    settings = Settings(
        kafka_bootstrap=broker.bootstrap, kafka_flavor="tansu", app_id=config.name,
        events_topic=config.events_topic, dlq_topic=config.dlq_topic,
        abandoned_topic=config.abandoned_topic, topic_partitions=4, data_dir=tmp_path / "w",
        idle_after_s=2, commit_interval_s=0.5, batch_max=500, metrics_port=0,
    )  # fmt: skip
    settings.data_dir.mkdir(parents=True)
    ch = ClickHouseConfig(dsn=settings.resolved_clickhouse_dsn)
    real = clickhouse_connect.get_client(dsn=ch.dsn)
    real.command("CREATE DATABASE IF NOT EXISTS funnel")
    migrate(real, ch, now=datetime.now(UTC))
    client = FlakyClient(real)
    registry = CollectorRegistry()
    sink = BatchSink(client, database="funnel", metrics=SinkMetrics.create(registry))  # type: ignore[arg-type]

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    async def run() -> None:
        app = build_worker_app(settings, registry=registry, sink=sink, clock=wall_clock_ms,
                               fatal=unexpected,
                               faust_overrides=TANSU_CLIENT_TIMEOUTS.faust_settings())  # fmt: skip
        await app.start()
        try:
            # Let some batches land, then take ClickHouse away mid-stream.
            while sample("funnel_sink_rows_written_total", table="events_raw") < 2_000:
                await asyncio.sleep(0.05)
            client.outage_until = time.monotonic() + OUTAGE_S
            await asyncio.sleep(3)
            consumed_during = sample(
                "funnel_events_consumed_total", event_type="page_view", outcome="accepted"
            )
            await asyncio.sleep(OUTAGE_S - 6)
            # Back-pressure: while the sink cannot flush, the agent takes no new batch.
            assert (
                sample("funnel_events_consumed_total", event_type="page_view", outcome="accepted")
                == consumed_during
            )
            assert sample("funnel_sink_retries_total") > 0
            bound = final_bound_s(last_event_ms)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                marks = [
                    s.value for m in registry.collect() if m.name == "funnel_watermark_seconds"
                    for s in m.samples
                ]  # fmt: skip
                if len(marks) == 4 and min(marks) >= bound:
                    break
                await asyncio.sleep(0.5)
            else:
                pytest.fail("partitions never became final after the outage")
        finally:
            await app.stop()

    try:
        asyncio.run(run())
        assert client.failures > 4
        assert sample("funnel_sink_errors_total", retriable="true") == client.failures
        assert sample("funnel_sink_errors_total", retriable="false") == 0
        assert_same(
            answer_from([lambda sql: [tuple(r) for r in real.query(sql).result_rows]]), expected
        )
        # Nothing doubled in the raw table either: one row per distinct event, before merges.
        ((total, distinct),) = real.query(
            "SELECT count(), uniqExact(site_id, session_id, event_id) FROM funnel.events_raw"
        ).result_rows
        accepted = len({(m.key, m.value) for m in messages if m.valid})
        assert distinct == accepted
        assert total == distinct
    finally:
        sink.close()
        real.close()
