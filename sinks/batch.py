"""Buffer rows per table and write them on `flush()`, retrying what can clear up by itself.

Contract (quix-streams style): the caller flushes before it commits source offsets, and rows are
idempotent (tables collapse on their sorting key), so a replay after a crash is harmless.
While ClickHouse is unreachable `flush()` keeps retrying: the agent stops taking events, which is
the back-pressure, and nothing buffered is dropped.

Rows are written column-oriented, through one insert context per table, kept from the first
insert on: clickhouse-connect then neither asks the table's column types again for every
insert nor transposes the rows, and a batch's rows given as columns (`add_columns`, the
bulk of the traffic) are inserted as they are. Each insert holds the GIL while it encodes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any, cast

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.insert import InsertContext
from prometheus_client import CollectorRegistry, Counter, Histogram

from sinks.errors import SinkError, translate
from sinks.retry import Backoff
from sinks.tables import COLUMNS, ordered_columns


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


@dataclass(frozen=True, slots=True)
class _Part:
    """Buffered rows of one table: one sequence per row, or (`by_column`) one per column in the
    table's column order."""

    data: list[Sequence[Any]]
    by_column: bool

    @property
    def rows(self) -> int:
        return len(self.data[0]) if self.by_column else len(self.data)

    def columns(self) -> list[Sequence[Any]]:
        return self.data if self.by_column else list(zip(*self.data, strict=True))


@dataclass(frozen=True, slots=True)
class Pending:
    """Rows taken out of the sink's buffers (`BatchSink.take`), by table, for one flush."""

    parts: Mapping[str, list[_Part]]


def _joined(parts: Sequence[_Part]) -> list[Sequence[Any]]:
    """The parts' rows as one set of columns, in arrival order."""
    blocks = [part.columns() for part in parts]
    if len(blocks) == 1:
        return blocks[0]
    return [list(chain.from_iterable(column)) for column in zip(*blocks, strict=True)]


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
        # Rows added one by one since the table's last part; sealed into a part, in order.
        self._rows: dict[str, list[Sequence[Any]]] = {table: [] for table in COLUMNS}
        self._parts: dict[str, list[_Part]] = {table: [] for table in COLUMNS}
        # Used and replaced on the sink's thread only.
        self._contexts: dict[str, InsertContext] = {}
        # chDB is synchronous and single-path: every call goes through this one thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self._opening: Future[Client] | None = None

    @classmethod
    def opening(
        cls, open_client: Callable[[], Client], *, database: str, metrics: SinkMetrics
    ) -> BatchSink:
        """A sink whose client `open_client` makes (connect, migrate) as the sink thread's first
        job, while the caller goes on starting up (the worker: through its group join). Every
        call waits for it; `opened()` says how it went; `close()` closes that client too."""
        # No client yet: calls take the opening job's (`_open_client`).
        sink = cls(cast(Client, None), database=database, metrics=metrics)
        sink._opening = sink._executor.submit(open_client)
        return sink

    def wait_opened(self) -> None:
        """Block until the client is open (raise if it could not be): other clients of the same
        ClickHouse wait for its migrations. Never on the event loop."""
        if self._opening is not None:
            self._opening.result()

    async def opened(self) -> None:
        """Return once the client is open; raise, not retriable, if it could not be."""
        await self.run(lambda client: None)

    def add(self, table: str, row: Sequence[Any]) -> None:
        self._rows[table].append(row)

    def add_columns(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        """Many rows at once, given column by column by name (`sinks.tables.ordered_columns`
        checks the names and lengths); cheaper than one `add` per row."""
        ordered = ordered_columns(table, columns)
        if ordered[0]:
            self._seal(table)
            self._parts[table].append(_Part(ordered, by_column=True))

    def take(self) -> Pending:
        """Every row added so far, out of the buffers, for one flush: a batch's step writes its
        own rows, never rows the next batch added while it waited for its turn."""
        taken: dict[str, list[_Part]] = {}
        for table in self._parts:
            self._seal(table)
            if self._parts[table]:
                taken[table], self._parts[table] = self._parts[table], []
        return Pending(taken)

    async def flush(self, pending: Pending | None = None) -> None:
        """Write `pending`, or every row added so far, with one INSERT per table."""
        started = time.perf_counter()
        # Taken before any await: rows added meanwhile belong to the next flush.
        taken = self.take() if pending is None else pending
        await self._write(dict(taken.parts))
        self._metrics.flush_seconds.observe(time.perf_counter() - started)

    async def write_now(self, table: str, rows: list[Sequence[Any]]) -> None:
        """Insert `rows` at once, with the flush's retries but outside its buffers: for a stream
        that acks on its own (the spend topic), so it never takes another agent's rows."""
        if rows:
            await self._write({table: [_Part(rows, by_column=False)]})

    async def run(self, call: Callable[[Client], Any]) -> Any:
        """Run a client call on the sink's thread (reports use clients of their own)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: call(self._open_client()))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._opening is not None and self._opening.exception() is None:
            self._opening.result().close()

    def _open_client(self) -> Client:
        """On the sink's thread, where opening was the first job, so it is done by now."""
        if self._opening is None:
            return self._client
        try:
            return self._opening.result()
        except Exception as exc:
            # Not retriable: the same failure would only be raised again.
            raise SinkError(f"ClickHouse could not be opened: {exc!r}", retriable=False) from exc

    def _seal(self, table: str) -> None:
        if self._rows[table]:
            self._parts[table].append(_Part(self._rows[table], by_column=False))
            self._rows[table] = []

    async def _write(self, unwritten: dict[str, list[_Part]]) -> None:
        """Insert every table's parts in one trip to the sink's thread (the event loop may be
        busy for a while between trips); after a failure, retry the tables not yet written."""
        attempt = 0
        while unwritten:
            try:
                await self.run(lambda client: self._insert_each(client, unwritten))
            except Exception as exc:
                error = translate(exc)
                self._metrics.errors.labels(str(error.retriable).lower()).inc()
                if not error.retriable:
                    raise error from exc
                self._metrics.retries.inc()
                await self._sleep(self._backoff.delay(attempt, self._rng))
                attempt += 1

    def _insert_each(self, client: Client, unwritten: dict[str, list[_Part]]) -> None:
        """One INSERT per table, each dropped from `unwritten` once written; on the sink's
        thread (the caller awaits it, so nothing else touches `unwritten` meanwhile)."""
        for table, parts in list(unwritten.items()):
            self._insert(client, table, parts)
            del unwritten[table]
            self._metrics.rows_written.labels(table).inc(sum(part.rows for part in parts))

    def _insert(self, client: Client, table: str, parts: list[_Part]) -> None:
        context = self._contexts.get(table)
        if context is None:
            context = client.create_insert_context(
                f"{self._database}.{table}", COLUMNS[table], column_oriented=True
            )
            self._contexts[table] = context
        try:
            client.insert(data=_joined(parts), context=context)
        except BaseException:
            # A failed insert may leave state behind in its context: the next one starts afresh.
            del self._contexts[table]
            raise
