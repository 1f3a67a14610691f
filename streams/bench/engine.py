"""In-process parts: the decoder alone, and the pure funnel engine over the decoded events.

The engine run doubles as the reference for the worker run: it yields exactly the rows the
worker must write to ClickHouse for the same messages, so "the last aggregate is queryable" is
a count the worker's sink reaches, not a guess.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Event
from streams.bench.dataset import partition_of
from streams.bench.results import Run
from streams.funnel.facts import CartChanged, Fact, OrderPlaced, StageReached
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.rules import FunnelRules
from streams.funnel.store import DictStore
from streams.settings import Settings
from streams.sim.generator import SimulatedMessage
from streams.worker.run import tune_gc

LIMITS = DecodeLimits()  # the worker's defaults
# Events the worker takes per batch at most (FUNNEL_BATCH_MAX's default).
BATCH_MAX: int = Settings.model_fields["batch_max"].default


@dataclass(frozen=True, slots=True)
class Expected:
    """What a worker writes for the data set: rows per sink table, sessions per site and stage."""

    rows: dict[str, int]
    stage_sessions: dict[tuple[str, str], int]
    open_sessions: int


# (partition, events of the batch in offset order, with their Kafka timestamps)
Batch = list[tuple[int, list[tuple[Event, int]]]]


@contextlib.contextmanager
def worker_gc() -> Iterator[None]:
    """The worker's GC policy (`tune_gc`) for an in-process part, this process's data set frozen
    like the worker's start-up heap (the worker never holds a whole data set; sweeping this one
    took 40% of the engine's time); undone after."""
    thresholds = gc.get_threshold()
    tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def time_decoder(messages: Sequence[SimulatedMessage], now_ms: int) -> Run:
    """decode_event over every message value: JSON parsing and contract validation."""
    with worker_gc():
        started = time.perf_counter()
        for message in messages:
            decode_event(message.value, now_ms=now_ms, limits=LIMITS)
        wall_s = time.perf_counter() - started
    return Run(events=len(messages), wall_s=wall_s)


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
    makes once it has caught up (they finalise the tail); timed, and counted.

    Facts are counted as they come, not kept: the worker never holds them all either."""
    funnels: dict[int, PartitionFunnel] = {}
    tally = _Tally()
    outcomes: Counter[Outcome] = Counter()
    events = 0
    with worker_gc():
        started = time.perf_counter()
        for batch in batches:
            for partition, items in batch:
                funnel = funnels.get(partition)
                if funnel is None:
                    funnel = funnels[partition] = PartitionFunnel(DictStore(), rules)
                result = funnel.process_batch(items)
                tally.add(result.facts)
                outcomes.update(result.outcomes)
                events += len(items)
        for funnel in funnels.values():
            tally.add(funnel.tick(now_ms).facts)
            tally.add(funnel.tick(now_ms + rules.idle_after_ms).facts)
        wall_s = time.perf_counter() - started
    return Run(events=events, wall_s=wall_s), tally.expected(outcomes, rejected, funnels)


@dataclass(slots=True)
class _Tally:
    stages: Counter[tuple[str, str]] = field(default_factory=Counter)
    orders: int = 0
    carts: int = 0

    def add(self, facts: Sequence[Fact]) -> None:
        for fact in facts:
            if isinstance(fact, StageReached):
                self.stages[fact.site_id, fact.stage.name.lower()] += 1
            elif isinstance(fact, OrderPlaced):
                self.orders += 1
            elif isinstance(fact, CartChanged):
                self.carts += 1

    def expected(
        self, outcomes: Counter[Outcome], rejected: int, funnels: dict[int, PartitionFunnel]
    ) -> Expected:
        rows = {
            "events_raw": outcomes[Outcome.ACCEPTED]
            + outcomes[Outcome.LATE]
            + outcomes[Outcome.CAPPED],
            "stage_entries": sum(self.stages.values()),
            "orders": self.orders,
            "carts": self.carts,
            "dead_letters": rejected,
        }
        open_sessions = sum(f.open_sessions for f in funnels.values())
        return Expected(rows=rows, stage_sessions=dict(self.stages), open_sessions=open_sessions)
