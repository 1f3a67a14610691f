"""Buffer rows per table and write them on `flush()`, retrying what can clear up by itself.

Contract (quix-streams style): the caller flushes before it commits source offsets, and rows are
idempotent (tables collapse on their sorting key), so a replay after a crash is harmless.
While ClickHouse is unreachable `flush()` keeps retrying: the agent stops taking events, which is
the back-pressure, and nothing buffered is dropped.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client
from prometheus_client import CollectorRegistry, Counter, Histogram

from sinks.errors import translate
from sinks.retry import Backoff
from sinks.tables import COLUMNS


@dataclass(frozen=True, slots=True)
class SinkMetrics:
    rows_written: Counter
    flush_seconds: Histogram
    errors: Counter
    retries: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SinkMetrics:
        return cls(
            rows_written=Counter(
                "funnel_sink_rows_written_total", "Rows written to ClickHouse.", ["table"],
                registry=registry,
            ),
            flush_seconds=Histogram(
                "funnel_sink_flush_seconds", "Time to flush all buffered rows, retries included.",
                buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                registry=registry,
            ),
            errors=Counter(
                "funnel_sink_errors_total", "Failed ClickHouse writes.", ["retriable"],
                registry=registry,
            ),
            retries=Counter(
                "funnel_sink_retries_total", "ClickHouse writes retried after a failure.",
                registry=registry,
            ),
        )  # fmt: skip

    def __post_init__(self) -> None:
        # Both series exist from the start at 0, so the first failure of either kind is an
        # increase an alert can see (a series born at 1 never "increases").
        for retriable in ("true", "false"):
            self.errors.labels(retriable)


class BatchSink:
    def __init__(
        self,
        client: Client,
        *,
        database: str,
        metrics: SinkMetrics,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._database = database
        self._metrics = metrics
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._rows: dict[str, list[Sequence[Any]]] = {table: [] for table in COLUMNS}
        # chDB is synchronous and single-path: every call goes through this one thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    def add(self, table: str, row: Sequence[Any]) -> None:
        self._rows[table].append(row)

    async def flush(self) -> None:
        started = time.perf_counter()
        for table in self._rows:
            # Taken before the await: rows added meanwhile belong to the next flush.
            rows, self._rows[table] = self._rows[table], []
            if rows:
                await self._insert_with_retry(table, rows)
                self._metrics.rows_written.labels(table).inc(len(rows))
        self._metrics.flush_seconds.observe(time.perf_counter() - started)

    async def write_now(self, table: str, rows: list[Sequence[Any]]) -> None:
        """Insert `rows` at once, with the flush's retries but outside its buffers: for a stream
        that acks on its own (the spend topic), so it never takes another agent's rows."""
        if rows:
            await self._insert_with_retry(table, rows)
            self._metrics.rows_written.labels(table).inc(len(rows))

    async def run(self, call: Callable[[Client], Any]) -> Any:
        """Run a client call on the sink's thread (reports use clients of their own)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, call, self._client)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def _insert_with_retry(self, table: str, rows: list[Sequence[Any]]) -> None:
        name = f"{self._database}.{table}"
        columns = COLUMNS[table]
        attempt = 0
        while True:
            try:
                await self.run(lambda client: client.insert(name, rows, column_names=columns))
                return
            except Exception as exc:
                error = translate(exc)
                self._metrics.errors.labels(str(error.retriable).lower()).inc()
                if not error.retriable:
                    raise error from exc
            self._metrics.retries.inc()
            await self._sleep(self._backoff.delay(attempt, self._rng))
            attempt += 1
