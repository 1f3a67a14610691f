"""The worker's report endpoint runs apart from the sink (issue 10): on ClickHouse clients and
threads of its own, at most FUNNEL_REPORT_MAX_CONCURRENT at once, so no report delays a flush."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry

from sinks.batch import BatchSink, SinkMetrics
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from streams.worker.query_pool import QueryPool, QueryPoolBusyError

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_a_running_report_never_delays_a_flush_and_extra_reports_are_refused(
    tmp_path: Path,
) -> None:
    config = ClickHouseConfig(dsn=f"chdb:///{tmp_path / 'chdb'}")
    client = connect(config)
    migrate(client, config, now=datetime.now(UTC))
    registry = CollectorRegistry()
    sink = BatchSink(client, database="funnel", metrics=SinkMetrics.create(registry))
    queries = QueryPool(lambda: connect(config, create_database=False), limit=1, queue=1)
    started, release = threading.Event(), threading.Event()

    def wide_report(reader: Client) -> int:
        # A real query on the report's own client, then held open as long as the test wants.
        rows: int = reader.query("SELECT count() FROM funnel.events_raw").result_rows[0][0]
        started.set()
        release.wait(300)
        return rows

    async def run() -> None:
        report = asyncio.create_task(queries.run(wide_report))
        assert await asyncio.to_thread(started.wait, 300)
        queued = asyncio.create_task(queries.run(lambda reader: 7))  # waits for the slot
        await asyncio.sleep(0)
        with pytest.raises(QueryPoolBusyError):  # past limit + queue: refused at once
            await queries.run(lambda reader: 0)
        at = now_ms()
        sink.add("dead_letters", ("t", 0, 1, at, "not_json", "x", "", "x"))
        await asyncio.wait_for(sink.flush(), 300)  # never behind the report
        assert not report.done()
        assert not queued.done()
        release.set()
        assert await report == 0
        assert await queued == 7

    try:
        asyncio.run(run())
        assert (
            registry.get_sample_value("funnel_sink_rows_written_total", {"table": "dead_letters"})
            == 1
        )
    finally:
        release.set()
        queries.close()
        sink.close()
        client.close()
