"""The idle tick judges a partition by where handling stands, not where fetching stands.

aiokafka advances a partition's position as soon as `getmany` returns its records. A tick that
read that position while the fetched batch was still waiting to be handled would see the
partition as read to the end, advance its watermark with the wall clock and make the batch's
own events late. No broker is needed: the fetch below is Faust's, replaced by one that returns
a record and moves the position the way aiokafka does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.worker.faust_batches import BatchConsumer, Record, install_batch_consumer

TOPIC = "events"
PARTITION = TP(TOPIC, 0)


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int = 0
    key: bytes | None = None
    value: bytes | None = b"{}"
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)


async def handled(consumer: BatchConsumer, tp: TP) -> int | None:
    return (await consumer.handled_positions([tp]))[tp]


async def settle() -> None:
    """Let every ready task run; a task blocked on a lock or event stays blocked."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_fetched_batch_not_yet_handled_is_not_read_to_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetched_position = {PARTITION: 0}
    records = [FakeRecord(TOPIC, 0, 0), FakeRecord(TOPIC, 0, 1)]
    fetched = asyncio.Event()
    delivered = asyncio.Event()

    async def fetch(self: Any, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109
        # As Faust's consumer thread does: the position moves there, then the records travel
        # back to this loop.
        fetched_position[PARTITION] = records[-1].offset + 1
        fetched.set()
        await delivered.wait()
        return {PARTITION: records}, {PARTITION}

    async def position(self: Any, tp: TP) -> int:
        return fetched_position[tp]

    monkeypatch.setattr(faust_aiokafka.Consumer, "_wait_next_records", fetch)
    monkeypatch.setattr(faust_aiokafka.Consumer, "position", position)

    async def scenario() -> None:
        release = asyncio.Event()
        in_handler = asyncio.Event()
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def handler(batch: Sequence[Record]) -> asyncio.Future[None]:
            in_handler.set()
            await release.wait()
            return durable

        app = faust.App("handled-position", broker="kafka://127.0.0.1:1")
        install_batch_consumer(app, [TOPIC], handler)
        consumer = app.consumer
        assert isinstance(consumer, BatchConsumer)

        fetching = asyncio.ensure_future(consumer._wait_next_records(1.0))
        await asyncio.wait_for(fetched.wait(), timeout=60)
        # aiokafka's position already says "read to the end" while the batch is on its way.
        assert await consumer.position(PARTITION) == 2
        asking = asyncio.ensure_future(handled(consumer, PARTITION))
        await settle()
        assert not asking.done()

        delivered.set()
        await asyncio.wait_for(in_handler.wait(), timeout=60)
        await settle()
        assert not asking.done()  # in hand, not handled

        release.set()
        await asyncio.wait_for(fetching, timeout=60)
        # Processed counts as read (the funnel has seen it) ...
        assert await asyncio.wait_for(asking, timeout=60) == 2
        # ... but nothing is committed, and revocation waits, until the batch is durable.
        assert consumer._new_offset(PARTITION) is None
        emptied = asyncio.ensure_future(consumer._not_handling.wait())
        await settle()
        assert not emptied.done()
        durable.set_result(None)
        await asyncio.wait_for(emptied, timeout=60)
        assert consumer._new_offset(PARTITION) == 2
        assert await handled(consumer, PARTITION) == 2
        # Faust's consumer thread made its own event loop on construction; never started.
        consumer._thread.loop.close()

    asyncio.run(scenario())


def test_a_partition_without_records_is_read_once_until_the_next_seek(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An empty repartition partition: a tick must not wait for the fetch in flight each time."""
    empty = TP("repartition", 0)
    positions = {empty: 7}
    fetching = asyncio.Event()
    release = asyncio.Event()

    async def fetch(self: Any, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109
        fetching.set()
        await release.wait()  # a long poll: nothing arrives
        return {}, {empty}

    async def position(self: Any, tp: TP) -> int:
        return positions[tp]

    async def seek(self: Any, partition: TP, offset: int) -> None:
        positions[partition] = offset

    monkeypatch.setattr(faust_aiokafka.Consumer, "_wait_next_records", fetch)
    monkeypatch.setattr(faust_aiokafka.Consumer, "position", position)
    monkeypatch.setattr(faust_aiokafka.Consumer, "seek", seek)

    async def handler(batch: Sequence[Record]) -> asyncio.Future[None]:
        raise AssertionError("no records")

    async def scenario() -> None:
        app = faust.App("read-once", broker="kafka://127.0.0.1:1")
        install_batch_consumer(app, ["repartition"], handler)
        consumer = app.consumer
        assert isinstance(consumer, BatchConsumer)
        assert await handled(consumer, empty) == 7  # read under the fetch lock

        polling = asyncio.ensure_future(consumer._wait_next_records(1.0))
        await asyncio.wait_for(fetching.wait(), timeout=60)
        positions[empty] = 9  # moved meanwhile: the kept 7 is behind, never ahead
        assert await asyncio.wait_for(handled(consumer, empty), timeout=1) == 7
        release.set()
        await asyncio.wait_for(polling, timeout=60)

        await consumer.seek(empty, 3)  # a seek (recovery, rebalance) voids what was read
        assert await handled(consumer, empty) == 3
        consumer._thread.loop.close()

    asyncio.run(scenario())
