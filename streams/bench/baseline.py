"""The raw ceiling: a plain aiokafka consumer reading the topic, orjson-decoding each value.

No consumer group (partitions are assigned, not joined), no commits, no other work: what
reading the bytes off the broker costs in Python, and nothing more.
"""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.bench.results import Run
from streams.bench.stats import steady_rate

_POLL_MS = 500


async def baseline_run(
    bootstrap: str, topic: str, partitions: int, events: int, timeout_s: float
) -> Run:
    """Read `events` messages from the start of `topic`; timed from client start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    started = time.monotonic()
    progress: list[tuple[float, int]] = []
    count = 0
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        while count < events and time.monotonic() - started < timeout_s:
            batches = await consumer.getmany(timeout_ms=_POLL_MS)
            for messages in batches.values():
                for message in messages:
                    try:
                        orjson.loads(message.value)
                    except orjson.JSONDecodeError:
                        continue  # the 1% broken messages of the data set
                count += len(messages)
            progress.append((time.monotonic() - started, count))
        wall_s = time.monotonic() - started
    finally:
        await consumer.stop()
    if count < events:
        note = f"timed out after {timeout_s:.0f} s with {count:,} of {events:,} read"
        return Run(events=events, wall_s=None, note=note)
    return Run(
        events=count, wall_s=wall_s, steady_events_per_s=steady_rate(progress, count, wall_s)
    )
