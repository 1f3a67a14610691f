"""In-process parts: the decoder alone, and the pure funnel engine over the decoded events.

The engine run doubles as the reference for the worker run: it yields exactly the rows the
worker must write to ClickHouse for the same messages, so "the last aggregate is queryable" is
a count the worker's sink reaches, not a guess.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Event
from streams.bench.dataset import partition_of
from streams.bench.results import Run
from streams.funnel.facts import CartChanged, Fact, OrderPlaced, StageReached
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.rules import FunnelRules
from streams.funnel.store import DictStore
from streams.sim.generator import SimulatedMessage

LIMITS = DecodeLimits()  # the worker's defaults
BATCH_MAX = 5_000  # events the worker takes per batch (FUNNEL_BATCH_MAX default)


@dataclass(frozen=True, slots=True)
class Expected:
    """What a worker writes for the data set: rows per sink table, sessions per site and stage."""

    rows: dict[str, int]
    stage_sessions: dict[tuple[str, str], int]
    open_sessions: int


# (partition, events of the batch in offset order, with their Kafka timestamps)
Batch = list[tuple[int, list[tuple[Event, int]]]]


def time_decoder(messages: Sequence[SimulatedMessage], now_ms: int) -> Run:
    """decode_event over every message value: JSON parsing and contract validation."""
    started = time.perf_counter()
    for message in messages:
        decode_event(message.value, now_ms=now_ms, limits=LIMITS)
    return Run(events=len(messages), wall_s=time.perf_counter() - started)


def decoded_batches(
    messages: Sequence[SimulatedMessage], now_ms: int, partitions: int
) -> tuple[list[Batch], int]:
    """The worker's batches (BATCH_MAX messages, split by partition) and the rejected count."""
    batches: list[Batch] = []
    rejected = 0
    for start in range(0, len(messages), BATCH_MAX):
        by_partition: dict[int, list[tuple[Event, int]]] = {}
        for message in messages[start : start + BATCH_MAX]:
            result = decode_event(message.value, now_ms=now_ms, limits=LIMITS)
            if isinstance(result, Rejection):
                rejected += 1
                continue
            partition = partition_of(message.key, partitions)
            # The broker stamps the record when it is produced, which is about now.
            by_partition.setdefault(partition, []).append((result, now_ms))
        batches.append(sorted(by_partition.items()))
    return batches, rejected


def run_engine(
    batches: Sequence[Batch], rejected: int, rules: FunnelRules, now_ms: int
) -> tuple[Run, Expected]:
    """Every batch through one PartitionFunnel per partition, then the idle ticks the worker
    makes once it has caught up (they finalise the tail); timed, and counted."""
    funnels: dict[int, PartitionFunnel] = {}
    facts: list[Fact] = []
    outcomes: Counter[Outcome] = Counter()
    events = 0
    started = time.perf_counter()
    for batch in batches:
        for partition, items in batch:
            funnel = funnels.get(partition)
            if funnel is None:
                funnel = funnels[partition] = PartitionFunnel(DictStore(), rules)
            result = funnel.process_batch(items)
            facts += result.facts
            outcomes.update(result.outcomes)
            events += len(items)
    for funnel in funnels.values():
        facts += funnel.tick(now_ms).facts
        facts += funnel.tick(now_ms + rules.idle_after_ms).facts
    wall_s = time.perf_counter() - started
    return Run(events=events, wall_s=wall_s), _expected(facts, outcomes, rejected, funnels)


def _expected(
    facts: Sequence[Fact],
    outcomes: Counter[Outcome],
    rejected: int,
    funnels: dict[int, PartitionFunnel],
) -> Expected:
    stages: Counter[tuple[str, str]] = Counter()
    for fact in facts:
        if isinstance(fact, StageReached):
            stages[fact.site_id, fact.stage.name.lower()] += 1
    rows = {
        "events_raw": outcomes[Outcome.ACCEPTED]
        + outcomes[Outcome.LATE]
        + outcomes[Outcome.CAPPED],
        "stage_entries": sum(stages.values()),
        "orders": sum(isinstance(f, OrderPlaced) for f in facts),
        "carts": sum(isinstance(f, CartChanged) for f in facts),
        "dead_letters": rejected,
    }
    open_sessions = sum(f.open_sessions for f in funnels.values())
    return Expected(rows=rows, stage_sessions=dict(stages), open_sessions=open_sessions)
