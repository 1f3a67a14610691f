"""Rows written column by column (`BatchSink.add_columns`, one reused insert context per table)
land in ClickHouse exactly as the row-by-row inserts the sink made before: the same simulated
traffic goes both ways into two databases of one real chDB engine, and every table reads back
identical, value for value."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from schemas.decode import DecodeLimits, Rejection, decode_event
from sinks.batch import BatchSink, SinkMetrics
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from sinks.tables import COLUMNS
from streams.funnel.facts import Fact
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.rules import FunnelRules
from streams.funnel.store import DictStore
from streams.sim.generator import SimulationConfig, generate
from streams.worker.dead_letters import SourcePosition, dead_letter
from streams.worker.ingest import Accepted, RawMessage
from streams.worker.sink_rows import (
    Row,
    dead_letter_row,
    fact_columns,
    fact_row,
    raw_event_columns,
    raw_event_row,
)
from tests.unit.funnel.builders import DAY_MS, flush

pytestmark = pytest.mark.integration

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
BATCH = 40
# Cycled over the raw events, so every flag column carries both values.
OUTCOMES = (Outcome.ACCEPTED, Outcome.LATE, Outcome.CAPPED)
WRITTEN = ("events_raw", "stage_entries", "orders", "carts", "dead_letters")


class Traffic:
    """Simulated messages through the funnel in batches; each batch's output handed to both
    writers: `rows` (one row each, the former way) and `sink` (columns, as the worker writes
    them; every other batch's facts one row at a time, so a table mixes both)."""

    def __init__(self, sink: BatchSink) -> None:
        self.sink = sink
        self.rows: dict[str, list[Row]] = {table: [] for table in WRITTEN}
        self.funnel = PartitionFunnel(DictStore(), FunnelRules())
        self.batches = 0
        self.payloads: dict[int, bytes] = {}  # raw events' message values by offset

    def events(self, batch: list[Accepted]) -> None:
        result = self.funnel.process_batch([(a.event, a.message.timestamp_ms) for a in batch])
        outcomes = [OUTCOMES[i % 3] for i in range(len(batch))]
        futures = [i % 2 == 0 for i in range(len(batch))]
        for item, outcome, future in zip(batch, outcomes, futures, strict=True):
            self.rows["events_raw"].append(raw_event_row(item, outcome, future=future))
            self.payloads[item.message.offset] = item.message.value
        self.sink.add_columns("events_raw", raw_event_columns(batch, outcomes, futures))
        self.facts(result.facts)

    def facts(self, facts: tuple[Fact, ...] | list[Fact]) -> None:
        for fact in facts:
            table, row = fact_row(fact)
            self.rows[table].append(row)
            if self.batches % 2 == 0:
                self.sink.add(table, row)
        if self.batches % 2 == 1:
            for table, columns in fact_columns(facts).items():
                self.sink.add_columns(table, columns)
        self.batches += 1

    def rejected(self, message: RawMessage, rejection: Rejection) -> None:
        position = SourcePosition(message.topic, 0, message.offset)
        letter = dead_letter(
            message.value, rejection, position, rejected_at_ms=message.timestamp_ms
        )
        row = dead_letter_row(message, letter, rejection)
        self.rows["dead_letters"].append(row)
        self.sink.add("dead_letters", row)


def simulate(traffic: Traffic) -> None:
    config = SimulationConfig(
        start=START, seed=3, sites=("shop-1", "shop-2"), sessions=400, session_rate=0.2,
        duplicate_rate=0.02, out_of_order_ms=60_000, invalid_rate=0.03,
    )  # fmt: skip
    now_ms = int((START + timedelta(days=1)).timestamp() * 1000)
    batch: list[Accepted] = []
    kafka_ms = int(START.timestamp() * 1000)
    for offset, simulated in enumerate(generate(config)):
        decoded = decode_event(simulated.value, now_ms=now_ms, limits=DecodeLimits())
        message = RawMessage("events", 0, offset, kafka_ms, simulated.key, simulated.value)
        if isinstance(decoded, Rejection):
            traffic.rejected(message, decoded)
            continue
        kafka_ms = max(kafka_ms, decoded.occurred_at_ms)
        batch.append(Accepted(decoded, message))
        if len(batch) == BATCH:
            traffic.events(batch)
            batch = []
    traffic.events(batch)
    traffic.facts(flush(traffic.funnel, kafka_ms + FunnelRules().retention_ms + DAY_MS))


def test_columns_written_by_the_sink_equal_the_rows_inserted_one_by_one(tmp_path: Path) -> None:
    engine = f"chdb:///{tmp_path / 'chdb'}"
    before, after = ClickHouseConfig(engine, "before"), ClickHouseConfig(engine, "after")
    client = connect(before)
    migrate(client, before, now=datetime.now(UTC))
    migrate(connect(after), after, now=datetime.now(UTC))
    registry = CollectorRegistry()
    sink = BatchSink(connect(after), database="after", metrics=SinkMetrics.create(registry))
    traffic = Traffic(sink)
    simulate(traffic)

    asyncio.run(sink.flush())
    sink.close()
    for table, rows in traffic.rows.items():
        client.insert(f"before.{table}", rows, column_names=COLUMNS[table])

    for table, rows in traffic.rows.items():
        assert len(rows) >= 5, table  # the traffic reaches every table
        written = registry.get_sample_value("funnel_sink_rows_written_total", {"table": table})
        assert written == len(rows), table
        columns = ", ".join(COLUMNS[table])
        stored = [
            client.query(f"SELECT {columns} FROM {db}.{table} FINAL ORDER BY ALL").result_rows
            for db in ("before", "after")
        ]
        assert stored[0], table
        assert stored[1] == stored[0], table
    # The raw column holds each message as it came, whichever way it was written.
    # (Re-deliveries of one event collapse to one row on insert: the table's key.)
    raw = client.query("SELECT source_offset, raw FROM after.events_raw").result_rows
    stored = {offset: text.encode() for offset, text in raw}
    assert len(stored) > len(traffic.payloads) * 0.9
    assert stored == {offset: traffic.payloads[offset] for offset in stored}
