"""`BatchSink`: one insert per table per flush, by column name, through one insert context per
table; rows added one by one and as columns go in together, in arrival order; retriable failures
retried with the backoff's delays until they clear, the rest raised; rows added during a flush
wait for the next one. ClickHouse failing on demand cannot be produced in a unit test, hence the
stand-in client (tests/integration/test_sink_outage.py runs a real outage;
tests/integration/test_sink_columns.py checks what real chDB stores)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from prometheus_client import CollectorRegistry

from sinks.batch import BatchSink, SinkMetrics
from sinks.errors import SinkError
from sinks.retry import Backoff
from sinks.tables import COLUMNS, RowShapeError


@dataclass(frozen=True)
class Context:
    table: str
    column_names: tuple[str, ...]


class Client:
    """clickhouse-connect's column-oriented insert through an insert context, recorded as the
    rows it writes; raises the queued failures first."""

    def __init__(self, failures: Sequence[Exception] = ()) -> None:
        self.failures = list(failures)
        self.inserts: list[tuple[str, list[Any], tuple[str, ...]]] = []
        self.contexts: list[Context] = []
        self.on_insert: Any = None

    def create_insert_context(
        self, table: str, column_names: tuple[str, ...], *, column_oriented: bool
    ) -> Context:
        assert column_oriented
        context = Context(table, column_names)
        self.contexts.append(context)
        return context

    def insert(self, *, data: list[Sequence[Any]], context: Context) -> None:
        if self.on_insert is not None:
            self.on_insert()
        if self.failures:
            raise self.failures.pop(0)
        assert len(data) == len(context.column_names)
        rows = [tuple(row) for row in zip(*data, strict=True)]
        self.inserts.append((context.table, rows, context.column_names))


class Rig:
    def __init__(self, client: Client) -> None:
        self.registry = CollectorRegistry()
        self.sleeps: list[float] = []
        self.backoff = Backoff(initial_s=0.5, cap_s=4.0)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.sink = BatchSink(
            client,  # type: ignore[arg-type]
            database="db",
            metrics=SinkMetrics.create(self.registry),
            backoff=self.backoff,
            rng=random.Random(7),
            sleep=sleep,
        )

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def row(table: str, marker: str) -> tuple[str, ...]:
    return (marker,) * len(COLUMNS[table])


def test_flush_inserts_each_tables_rows_once_with_their_column_names() -> None:
    client = Client()
    rig = Rig(client)
    rig.sink.add("orders", row("orders", "o1"))
    rig.sink.add("events_raw", row("events_raw", "e1"))
    rig.sink.add("orders", row("orders", "o2"))
    asyncio.run(rig.sink.flush())
    assert sorted(client.inserts) == [
        ("db.events_raw", [row("events_raw", "e1")], COLUMNS["events_raw"]),
        ("db.orders", [row("orders", "o1"), row("orders", "o2")], COLUMNS["orders"]),
    ]
    assert rig.value("funnel_sink_rows_written_total", table="orders") == 2
    asyncio.run(rig.sink.flush())  # the buffer was emptied: nothing is written twice
    assert len(client.inserts) == 2
    rig.sink.close()


def test_a_flush_of_taken_rows_writes_those_and_nothing_added_after() -> None:
    # A batch's durable step waits its turn while the next batch adds rows to the buffers.
    client = Client()
    rig = Rig(client)
    rig.sink.add("orders", row("orders", "batch-1"))
    taken = rig.sink.take()
    rig.sink.add("orders", row("orders", "batch-2"))
    rig.sink.add("carts", row("carts", "batch-2"))
    asyncio.run(rig.sink.flush(taken))
    assert client.inserts == [("db.orders", [row("orders", "batch-1")], COLUMNS["orders"])]
    asyncio.run(rig.sink.flush())
    assert sorted(client.inserts[1:]) == [
        ("db.carts", [row("carts", "batch-2")], COLUMNS["carts"]),
        ("db.orders", [row("orders", "batch-2")], COLUMNS["orders"]),
    ]
    rig.sink.close()


def test_retriable_failures_are_retried_with_backoff_until_they_clear() -> None:
    down = OperationalError("connection refused")
    busy = DatabaseError("too many queries", code=202)
    client = Client([down, busy])
    rig = Rig(client)
    rig.sink.add("carts", row("carts", "c"))
    asyncio.run(rig.sink.flush())
    assert client.inserts == [("db.carts", [row("carts", "c")], COLUMNS["carts"])]
    expected = random.Random(7)
    assert rig.sleeps == [rig.backoff.delay(attempt, expected) for attempt in (0, 1)]
    assert rig.value("funnel_sink_retries_total") == 2
    assert rig.value("funnel_sink_errors_total", retriable="true") == 2
    rig.sink.close()


def test_a_non_retriable_failure_is_raised_at_once() -> None:
    client = Client([DatabaseError("Unknown column", code=16)])
    rig = Rig(client)
    rig.sink.add("orders", row("orders", "o"))
    with pytest.raises(SinkError) as raised:
        asyncio.run(rig.sink.flush())
    assert raised.value.retriable is False
    assert rig.sleeps == []
    assert rig.value("funnel_sink_errors_total", retriable="false") == 1
    rig.sink.close()


def test_rows_added_during_a_flush_wait_for_the_next_one() -> None:
    client = Client()
    rig = Rig(client)
    # Runs on the sink's thread while the insert is in flight.
    client.on_insert = lambda: rig.sink.add("orders", row("orders", "late"))
    rig.sink.add("orders", row("orders", "first"))
    asyncio.run(rig.sink.flush())
    client.on_insert = None
    assert client.inserts[0][1] == [row("orders", "first")]
    asyncio.run(rig.sink.flush())
    assert client.inserts[1][1] == [row("orders", "late")]
    rig.sink.close()


def columns(table: str, *markers: str) -> dict[str, list[str]]:
    """`markers` as rows of `table`, given column by column."""
    return {name: list(markers) for name in COLUMNS[table]}


def test_rows_and_columns_go_in_one_insert_in_arrival_order() -> None:
    client = Client()
    rig = Rig(client)
    rig.sink.add("orders", row("orders", "o1"))
    rig.sink.add_columns("orders", columns("orders", "o2", "o3"))
    rig.sink.add("orders", row("orders", "o4"))
    rig.sink.add_columns("orders", columns("orders"))  # no rows: nothing to write
    rig.sink.add_columns("events_raw", columns("events_raw", "e1"))
    asyncio.run(rig.sink.flush())
    assert sorted(client.inserts) == [
        ("db.events_raw", [row("events_raw", "e1")], COLUMNS["events_raw"]),
        ("db.orders", [row("orders", m) for m in ("o1", "o2", "o3", "o4")], COLUMNS["orders"]),
    ]
    assert rig.value("funnel_sink_rows_written_total", table="orders") == 4
    assert rig.value("funnel_sink_rows_written_total", table="events_raw") == 1
    rig.sink.close()


def test_columns_must_be_the_tables_own_and_of_one_length() -> None:
    rig = Rig(Client())
    given = columns("orders", "o1")
    with pytest.raises(RowShapeError, match=r"missing columns \['value'\]"):
        rig.sink.add_columns("orders", {k: v for k, v in given.items() if k != "value"})
    with pytest.raises(RowShapeError, match=r"unknown columns \['extra'\]"):
        rig.sink.add_columns("orders", {**given, "extra": ["x"]})
    with pytest.raises(RowShapeError, match=r"unequal lengths \[1, 2\]"):
        rig.sink.add_columns("orders", {**given, "value": ["1", "2"]})
    asyncio.run(rig.sink.flush())
    assert rig.value("funnel_sink_rows_written_total", table="orders") == 0
    rig.sink.close()


def test_each_tables_insert_context_is_made_once_and_afresh_after_a_failure() -> None:
    client = Client()
    rig = Rig(client)
    for marker in ("o1", "o2"):
        rig.sink.add("orders", row("orders", marker))
        asyncio.run(rig.sink.flush())
    assert client.contexts == [Context("db.orders", COLUMNS["orders"])]
    client.failures = [OperationalError("connection refused")]
    rig.sink.add("orders", row("orders", "o3"))
    asyncio.run(rig.sink.flush())  # retried, through a new context
    assert len(client.contexts) == 2
    assert [rows for _, rows, _ in client.inserts] == [
        [row("orders", m)] for m in ("o1", "o2", "o3")
    ]
    rig.sink.close()
