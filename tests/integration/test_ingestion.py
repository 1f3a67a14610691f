"""Issue 2 acceptance: 10,000 mixed messages through a real broker and a real worker.

Every valid message must reach the processed path (the raw-events table) and every invalid one
the dead-letter topic, byte for byte, with the reason its defect calls for.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.local.embedded_broker import EmbeddedBroker
from streams.sim.generator import SimulatedMessage, SimulationConfig, generate
from streams.worker.dead_letters import MAX_DEAD_LETTER_PAYLOAD
from tests.integration.pipeline import PipelineConfig, WorkerProcess, produce, query, read_all

pytestmark = pytest.mark.integration

TOTAL = 10_000

# What the decoder must answer for each kind of damage the simulator does.
EXPECTED_REASONS: dict[str, set[str]] = {
    "malformed_json": {"not_json"},
    "not_utf8": {"not_json"},
    "not_an_object": {"not_object"},
    "wrong_type": {"wrong_type"},
    "missing_field": {"missing_field"},
    "unknown_event_type": {"unknown_event_type"},
    "oversize": {"oversize"},
    "absurd_timestamp": {"timestamp_future", "timestamp_past"},
    "negative_value": {"invalid_value"},
    "value_without_currency": {"currency_required"},
    "purchase_without_order_id": {"order_id_required"},
    "bad_item": {"invalid_value", "wrong_type"},
    "bad_device": {"invalid_value"},
    "bad_country": {"invalid_value"},
    "bad_event_id": {"invalid_value"},
}


async def read_at(bootstrap: str, topic: str, partition: int, offset: int) -> bytes:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                max_partition_fetch_bytes=4 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        record = await consumer.getone()
        assert record.offset == offset
        value: bytes = record.value
        return value
    finally:
        await consumer.stop()


def test_mixed_messages_end_processed_or_dead_lettered(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    config = PipelineConfig(broker.bootstrap, unique_topic("ingest"), tmp_path)
    start = datetime.now(UTC) - timedelta(hours=2)
    simulation = SimulationConfig(start=start, seed=7, sessions=None, session_rate=50.0,
                                  invalid_rate=0.2)  # fmt: skip
    messages: list[SimulatedMessage] = list(itertools.islice(generate(simulation), TOTAL))
    valid = [m for m in messages if m.valid]
    invalid = [m for m in messages if not m.valid]
    assert len(messages) == TOTAL
    assert len(invalid) > 1000
    assert {m.defect for m in invalid} == set(EXPECTED_REASONS)

    config.create_topics()
    assert asyncio.run(produce(broker.bootstrap, config.events_topic, messages)) == TOTAL

    worker = WorkerProcess(config, tmp_path / "worker")
    try:
        worker.wait_until(
            lambda: worker.total("funnel_events_consumed_total") >= TOTAL,
            timeout=180, what="all messages consumed",
        )  # fmt: skip
        assert worker.total("funnel_events_consumed_total", outcome="accepted") == len(valid)
        assert worker.total("funnel_events_consumed_total", outcome="invalid") == len(invalid)
        assert worker.total("funnel_dead_lettered_total") == len(invalid)
        metric_reasons = {
            dict(labels)["reason"]: value
            for (name, labels), value in worker.metrics().items()
            if name == "funnel_events_invalid_total"
        }
    finally:
        assert worker.stop() == 0, worker.log_tail()

    # The dead-letter topic: one record per invalid message, original bytes, specific reason.
    dead = asyncio.run(read_all(broker.bootstrap, config.dlq_topic, len(invalid)))
    assert len(dead) == len(invalid)
    defects = {m.value: m.defect for m in invalid}
    header_reasons: Counter[str] = Counter()
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}  # type: ignore[attr-defined]
        original = asyncio.run(
            read_at(broker.bootstrap, headers["funnel.source_topic"],
                    int(headers["funnel.source_partition"]), int(headers["funnel.source_offset"]))
        )  # fmt: skip
        payload: bytes = record.value  # type: ignore[attr-defined]
        if len(original) > MAX_DEAD_LETTER_PAYLOAD:
            assert payload == original[:MAX_DEAD_LETTER_PAYLOAD]
            assert headers["funnel.original_size"] == str(len(original))
            assert headers["funnel.original_sha256"] == hashlib.sha256(original).hexdigest()
        else:
            assert payload == original
        defect = defects[original]
        assert headers["funnel.reason_code"] in EXPECTED_REASONS[defect or ""], (defect, headers)
        assert headers["funnel.reason"]
        header_reasons[headers["funnel.reason_code"]] += 1
        datetime.fromisoformat(headers["funnel.rejected_at"])
    assert header_reasons == metric_reasons

    # The processed path: every valid event stored once, with its original JSON.
    stored = dict(query(worker.data_dir, "SELECT event_id, raw FROM funnel.events_raw FINAL"))
    expected = {orjson.loads(m.value)["event_id"]: m.value.decode() for m in valid}
    assert stored == expected
    reasons = query(
        worker.data_dir,
        "SELECT count(), uniqExact(source_partition, source_offset) FROM funnel.dead_letters FINAL",
    )
    assert reasons == [(len(invalid), len(invalid))]
