"""Issue 12: commits of the batch seam stay right while partitions move under load.

A backlog is consumed while a second worker joins and leaves three times, then each worker is
killed with -9 once, mid-stream. Afterwards every offset of the topic must have been handled:
each valid event's first occurrence in `events_raw` of some worker, each invalid message in its
`dead_letters`, the funnel numbers equal to the independent reference, and the group's committed
offsets at the end of every partition. An offset committed ahead of its handling, then lost to
a kill or a move, shows up as a missing row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.local.embedded_broker import EmbeddedBroker
from tests.integration.exactness import (
    assert_same,
    expected_answer,
    final_bound_s,
    finalised,
    prepare,
    simulate,
    stored_answer,
)
from tests.integration.pipeline import PipelineConfig, WorkerProcess, query

pytestmark = pytest.mark.integration

TOTAL = 120_000
PARTITIONS = 4

Position = tuple[int, int]  # partition, offset


async def read_topic(bootstrap: str, topic: str) -> list[tuple[Position, bytes]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        fetch_max_bytes=8 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[tuple[Position, bytes]] = []
        async with asyncio.timeout(120):
            while len(records) < TOTAL:
                for batch in (await consumer.getmany(timeout_ms=1000)).values():
                    records.extend(((r.partition, r.offset), r.value) for r in batch)
        return records
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


def expected_positions(
    records: list[tuple[Position, bytes]], valid: dict[bytes, bool]
) -> tuple[set[Position], set[Position]]:
    """First occurrence of each valid event per partition (later ones are duplicates, stored
    under the first), and every invalid message's position."""
    first: dict[tuple[int, str], int] = {}
    invalid: set[Position] = set()
    for (partition, offset), value in records:
        if not valid[value]:
            invalid.add((partition, offset))
            continue
        key = (partition, orjson.loads(value)["event_id"])
        first[key] = min(offset, first.get(key, offset))
    return {(partition, offset) for (partition, _), offset in first.items()}, invalid


class Progress:
    """Events handled so far, summed over every worker started: a stopped or killed worker
    keeps its last count. Replays count again, so this runs a little ahead of the offsets."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}

    def __call__(self, workers: list[WorkerProcess]) -> float:
        for worker in workers:
            self.last[id(worker)] = worker.total("funnel_events_consumed_total")
        return sum(self.last.values())


@pytest.mark.timeout(1200)
def test_workers_joining_leaving_and_killed_handle_every_offset(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    messages, _ = simulate(seed=21, count=TOTAL)
    expected, last_event_ms = expected_answer(messages)
    config: PipelineConfig = prepare(broker, unique_topic("moves"), tmp_path, messages)
    # Faust's own account of each rebalance and recovery, for whoever reads a failure.
    config.extra_env["FUNNEL_LOG_LEVEL"] = "INFO"
    progress = Progress()
    live: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        worker = WorkerProcess(config, tmp_path / name)
        live.append(worker)
        return worker

    def reach(fraction: float, owner: WorkerProcess) -> None:
        """Until `fraction` of the backlog is consumed and `owner` runs partitions (a partition
        shows a watermark once its owner has recovered it)."""
        deadline = time.monotonic() + 600
        while progress(live) < fraction * TOTAL or not any(
            name == "funnel_watermark_seconds" for name, _ in owner.metrics()
        ):
            assert time.monotonic() < deadline, "\n".join(w.log_tail() for w in live)
            for worker in live:
                worker.wait_until(lambda: True, timeout=1, what="alive")
            time.sleep(0.25)

    try:
        first = start("a")
        for join_at in (0.05, 0.15, 0.25):
            second = start("b")
            reach(join_at + 0.05, second)
            live.remove(second)
            assert second.stop() == 0, second.log_tail()  # leaves cleanly: revoke, commit
        second = start("b")
        reach(0.4, second)
        live.remove(first)
        first.kill()
        first = start("a")
        reach(0.5, first)
        live.remove(second)
        second.kill()

        first.wait_until(
            finalised(first, PARTITIONS, final_bound_s(last_event_ms)),
            timeout=900,
            what="all partitions final",
        )
    finally:
        for worker in live:
            assert worker.stop() == 0, worker.log_tail()

    dirs = [tmp_path / "a", tmp_path / "b"]
    records = asyncio.run(read_topic(broker.bootstrap, config.events_topic))
    valid_positions, invalid_positions = expected_positions(
        records, {m.value: m.valid for m in messages}
    )
    stored: set[Position] = set()
    rejected: set[Position] = set()
    for data_dir in dirs:
        stored |= set(
            query(data_dir, "SELECT source_partition, source_offset FROM funnel.events_raw")
        )
        rejected |= set(
            query(data_dir, "SELECT source_partition, source_offset FROM funnel.dead_letters")
        )
    assert len(stored) == len(valid_positions)
    assert stored == valid_positions
    assert rejected == invalid_positions
    ends: dict[int, int] = {}
    for (partition, offset), _ in records:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    assert asyncio.run(committed(broker.bootstrap, config.name, config.events_topic)) == ends
    assert_same(stored_answer(dirs), expected)
