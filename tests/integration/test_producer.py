"""EventProducer against the real (tansu) broker: keys, partitions and bytes round-trip."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner

from streams.kafka.producer import EventProducer, ProduceError, send_lines
from streams.kafka.topics import create_topics
from streams.local.embedded_broker import EmbeddedBroker
from streams.sim.generator import SimulationConfig, generate
from streams.sim.sender import run_simulation

pytestmark = pytest.mark.integration

PARTITIONS = 4
CONFIG = SimulationConfig(
    start=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    seed=21,
    sessions=300,
    duplicate_rate=0.05,
    invalid_rate=0.05,
)


async def read_all(
    bootstrap: str, topic: str, expected: int
) -> list[tuple[int, bytes | None, bytes]]:
    """(partition, key, value) of the first `expected` records, in per-partition order."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[tuple[int, bytes | None, bytes]] = []
    try:
        async with asyncio.timeout(30):
            while len(records) < expected:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, batch in batches.items():
                    records.extend((tp.partition, r.key, r.value) for r in batch)
    finally:
        await consumer.stop()
    return records


def partition_of(key: bytes) -> int:
    everything = list(range(PARTITIONS))
    return int(DefaultPartitioner()(key, everything, everything))


def test_events_arrive_keyed_by_session_on_the_default_partition(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str]
) -> None:
    topic = unique_topic("events")
    events = [orjson.loads(m.value) for m in generate(replace(CONFIG, invalid_rate=0.0))]

    async def scenario() -> list[tuple[int, bytes | None, bytes]]:
        await create_topics(broker.bootstrap, {topic: PARTITIONS})
        async with EventProducer(broker.bootstrap, topic) as producer:
            await producer.send(events[0])
            assert await producer.send_many(events[1:]) == len(events) - 1
        return await read_all(broker.bootstrap, topic, len(events))

    records = asyncio.run(scenario())
    assert len(records) == len(events)
    sent = {orjson.dumps(event) for event in events}
    for partition, key, value in records:
        assert value in sent
        assert key == orjson.loads(value)["session_id"].encode()
        assert partition == partition_of(key)
    # Within a partition, each session's events keep their send order.
    for session_id in {e["session_id"] for e in events[:50]}:
        expected = [orjson.dumps(e) for e in events if e["session_id"] == session_id]
        assert [v for _, k, v in records if k == session_id.encode()] == expected


def test_raw_lines_and_simulated_traffic_are_sent_byte_for_byte(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str]
) -> None:
    topic = unique_topic("raw")
    lines = [b'{"session_id": "s-1", "event_type": "page_view"}\n', b"{not json\n", b"\n"]
    simulated = [(m.key, m.value) for m in generate(CONFIG)]
    oversize = [m for m in generate(CONFIG) if m.defect == "oversize"]
    assert oversize, "the seed should include a message over 1 MiB"

    async def scenario() -> list[tuple[int, bytes | None, bytes]]:
        await create_topics(broker.bootstrap, {topic: PARTITIONS})
        async with EventProducer(broker.bootstrap, topic) as producer:
            assert await send_lines(producer, lines) == 2
            stats = await run_simulation(producer, CONFIG, batch_size=500)
        assert stats.sent == len(simulated)
        assert stats.invalid > 0
        return await read_all(broker.bootstrap, topic, 2 + len(simulated))

    records = asyncio.run(scenario())
    received = sorted((key or b"", value) for _, key, value in records)
    expected = [
        (b"s-1", b'{"session_id": "s-1", "event_type": "page_view"}'),
        (b"", b"{not json"),
        *((key or b"", value) for key, value in simulated),
    ]
    assert received == sorted(expected)


def test_no_broker_is_a_retriable_produce_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused

        async def scenario() -> None:
            async with EventProducer(f"127.0.0.1:{port}", "events"):
                pytest.fail("started without a broker")

        with pytest.raises(ProduceError) as caught:
            asyncio.run(scenario())
    assert caught.value.retriable
