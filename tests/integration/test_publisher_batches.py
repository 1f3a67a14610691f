"""`Publisher.send_batch` and `send_spread` through Faust's own producer to the real broker: records reach their
partition in order, split over several record batches when they outgrow one, tombstones
included, and `delivered()` waits for every batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import faust
import pytest
from aiokafka import AIOKafkaConsumer

from streams.kafka.topics import create_topics
from streams.local.embedded_broker import EmbeddedBroker
from streams.worker.publisher import Publisher, SpreadRecord

pytestmark = pytest.mark.integration

PARTITION = 2


async def read(bootstrap: str, topic: str, expected: int) -> list[tuple[int, bytes, bytes | None]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[tuple[int, bytes, bytes | None]] = []
    try:
        async with asyncio.timeout(30):
            while len(records) < expected:
                for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                    records.extend((tp.partition, r.key or b"", r.value) for r in batch)
    finally:
        await consumer.stop()
    return records


def test_a_batch_of_records_lands_whole_and_in_order(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str]
) -> None:
    topic = unique_topic("changelog")
    asyncio.run(create_topics(broker.bootstrap, {topic: 4}))
    # ~600 KB: far over the producer's 16 KB record batch, so it is sent as many batches.
    records: list[tuple[bytes, bytes | None]] = [
        (f"2|s{i}".encode(), None if i % 7 == 0 else bytes([65 + i % 26]) * 300)
        for i in range(2000)
    ]

    async def scenario() -> None:
        app = faust.App("publisher-batches", broker=f"kafka://{broker.bootstrap}")
        await app.producer.start()
        try:
            publisher = Publisher(app)
            await publisher.send_batch(topic, PARTITION, records)
            await publisher.delivered()
        finally:
            await app.producer.stop()

    asyncio.run(scenario())
    received = asyncio.run(read(broker.bootstrap, topic, len(records)))
    assert received == [(PARTITION, key, value) for key, value in records]


def test_spread_records_land_where_the_producer_would_put_them_with_their_headers(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str]
) -> None:
    spread, single = unique_topic("dlq-spread"), unique_topic("dlq-single")
    asyncio.run(create_topics(broker.bootstrap, {spread: 4, single: 4}))
    keys = [f"session-{i}".encode() for i in range(40)]
    records: list[SpreadRecord] = [
        *((7, key, b"keyed %d" % i, [("reason", b"%d" % i)]) for i, key in enumerate(keys)),
        *((hint, None, b"unkeyed %d" % hint, [("reason", b"none")]) for hint in range(6)),
    ]

    async def scenario() -> None:
        app = faust.App("publisher-spread", broker=f"kafka://{broker.bootstrap}")
        await app.producer.start()
        try:
            publisher = Publisher(app)
            await publisher.send_spread(spread, records)
            for key in keys:  # one at a time, partitioned by the producer itself
                await publisher.send(single, key=key, value=key)
            await publisher.delivered()
        finally:
            await app.producer.stop()

    asyncio.run(scenario())
    got = asyncio.run(read_with_headers(broker.bootstrap, spread, len(records)))
    producer_partition = {
        key: partition for partition, key, _ in asyncio.run(read(broker.bootstrap, single, 40))
    }
    for i, key in enumerate(keys):
        assert got[b"keyed %d" % i] == (producer_partition[key], key, [("reason", b"%d" % i)])
    for hint in range(6):
        assert got[b"unkeyed %d" % hint] == (hint % 4, None, [("reason", b"none")])


async def read_with_headers(
    bootstrap: str, topic: str, expected: int
) -> dict[bytes, tuple[int, bytes | None, list[tuple[str, bytes]]]]:
    """Each record by value: (partition, key, headers); values must be unique."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: dict[bytes, tuple[int, bytes | None, list[tuple[str, bytes]]]] = {}
    try:
        async with asyncio.timeout(30):
            while len(records) < expected:
                for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                    for r in batch:
                        records[r.value or b""] = (tp.partition, r.key, list(r.headers))
    finally:
        await consumer.stop()
    return records
