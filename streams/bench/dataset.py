"""The throughput data set: N simulated messages with the default session mix, placed in time.

Event time runs at SESSION_RATE new sessions per second (a mid-size shop) and ends
QUIET_BEFORE_NOW before the run starts. So every event is well inside the decoder's age limit,
nothing is late, the last carts' abandonment deadlines have passed when the worker's idle tick
brings the watermark to the wall clock (all facts are final), and no session is old enough to
expire during the run (open sessions are still held at the end, for the memory figure).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import islice

from aiokafka.partitioner import murmur2

from streams.sim.generator import SimulatedMessage, SimulationConfig, generate
from streams.sim.traffic import MESSAGES_PER_SESSION

SITES = ("shop-1", "shop-2")
SESSION_RATE = 5.0
# Longer than a session can last (re-adds come up to 2 h after a pause), shorter than the time
# left before the first sessions would expire (state is kept 25 h after a session's last event).
QUIET_BEFORE_NOW = timedelta(hours=6)
# Real traffic is not clean: re-deliveries, delivery out of event-time order, broken messages.
DUPLICATE_RATE = 0.01
OUT_OF_ORDER_MS = 2_000
INVALID_RATE = 0.01


def throughput_config(events: int, *, now: datetime, seed: int) -> SimulationConfig:
    span = timedelta(seconds=events / (MESSAGES_PER_SESSION * SESSION_RATE))
    return SimulationConfig(
        start=now - span - QUIET_BEFORE_NOW,
        seed=seed,
        sites=SITES,
        sessions=None,
        session_rate=SESSION_RATE,
        duplicate_rate=DUPLICATE_RATE,
        out_of_order_ms=OUT_OF_ORDER_MS,
        invalid_rate=INVALID_RATE,
    )


def throughput_messages(events: int, *, now: datetime, seed: int) -> list[SimulatedMessage]:
    """The first `events` messages, in delivery order (the last sessions may be cut short)."""
    return list(islice(generate(throughput_config(events, now=now, seed=seed)), events))


def partition_of(key: bytes | None, partitions: int) -> int:
    """The partition `EventProducer` sends a keyed message to (the simulator keys them all)."""
    return 0 if key is None else (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def without_keys(
    messages: Sequence[SimulatedMessage], share: float, *, seed: int
) -> list[SimulatedMessage]:
    """The same messages, a random `share` of them unkeyed (round-robin producers)."""
    rng = random.Random(f"{seed}/unkeyed")
    return [m._replace(key=None) if rng.random() < share else m for m in messages]
