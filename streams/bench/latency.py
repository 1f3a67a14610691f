"""Produce-to-visible latency at a fixed rate, through one real worker.

The simulator's messages are sent at `rate` for `seconds`, each valid event stamped with
occurred_at = the moment its batch is handed to the producer (so event time is the wall clock,
as on a live site). The worker runs with FUNNEL_LATENESS_S=1: a stage is final, and written,
once the watermark is 1 s past it, so 1 s is the floor of the latency by design.

"Visible" is when the worker's `funnel_stage_entries_total` counts the stage entry. The worker
increments it only after the batch's rows were inserted into ClickHouse (the INSERT returned, so
any query sees them) and its state committed: an upper bound on when a query could first see
them. It is scraped every POLL_S and the answer's arrival time is used. The k-th stage entry of
a stage (in event-time order, from the pure engine run over the same stamped events) counts as
visible at the first scrape whose counter reaches k. Polling the report endpoint instead would
put a ClickHouse query on the sink's one thread every time (tenths of a second at this size)
and slow the very writes being timed; it is asked once at the end, to check that ClickHouse
holds what the counter says. Only events that change an aggregate are measured: those that
bring a session to a stage.

After the measured window, filler traffic for another site keeps the watermark moving for a few
seconds, so the last measured events are finalised as in a continuous stream, not by the idle
timer. Then polling goes on until the worker has consumed everything and settled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import orjson

from schemas.decode import Rejection, decode_event
from schemas.event import Event
from streams.bench.engine import LIMITS
from streams.bench.procs import BenchError
from streams.bench.results import LatencyRun
from streams.bench.stats import fifo_latencies, summarise_latencies
from streams.bench.worker_proc import IDLE_AFTER_S, BenchWorker, stage_sessions
from streams.clock import wall_clock_ms
from streams.funnel.facts import StageReached
from streams.funnel.partition import PartitionFunnel
from streams.funnel.rules import FunnelRules
from streams.funnel.store import DictStore
from streams.kafka.producer import EventProducer
from streams.kafka.topics import create_topics
from streams.local.live_view import STAGES, total
from streams.sim.generator import SimulatedMessage, SimulationConfig, generate
from streams.sim.sender import TokenBucket
from streams.sim.traffic import MESSAGES_PER_SESSION

SITE = "bench-latency"
FILLER_SITE = "bench-filler"
WARMUP_SITE = "bench-warmup"
LATENESS_S = 1
POLL_S = 0.2
_WAIT_POLL_S = 0.5  # polling for "all consumed": no timing depends on it
WARMUP_EVENTS = 200
STARTUP_TIMEOUT_S = 120.0
_SENDS_PER_SECOND = 20
_FILLER_S = LATENESS_S + 2.0
# After everything is consumed: the idle timer, the lateness and a few polls.
_SETTLE_S = IDLE_AFTER_S + LATENESS_S + 3.0


def _traffic(site: str, rate: float, seed: int, start: datetime) -> Iterator[SimulatedMessage]:
    return generate(
        SimulationConfig(
            start=start,
            seed=seed,
            sites=(site,),
            sessions=None,
            session_rate=rate / MESSAGES_PER_SESSION,
            duplicate_rate=0.01,
            invalid_rate=0.01,
        )
    )


def _stamped(message: SimulatedMessage, now_ms: int) -> bytes:
    """The message with occurred_at = now; broken messages stay exactly as broken."""
    if not message.valid:
        return message.value
    event = orjson.loads(message.value)
    event["occurred_at"] = now_ms
    return orjson.dumps(event)


class _Sender:
    def __init__(self, producer: EventProducer, rate: float) -> None:
        self._producer = producer
        self._rate = rate
        self._batch = max(1, int(rate / _SENDS_PER_SECOND))
        self.valid: list[bytes] = []  # stamped values of the measured site, for the reference
        self.measured = 0
        self.sent = 0

    async def send_for(
        self, messages: Iterator[SimulatedMessage], seconds: float, *, measured: bool
    ) -> float:
        """Send at the rate for `seconds`; returns the elapsed time."""
        started = time.monotonic()
        bucket = TokenBucket(self._rate, self._batch, started)
        while (now := time.monotonic()) - started < seconds:
            batch = [next(messages) for _ in range(self._batch)]
            if (wait := bucket.reserve(len(batch), now)) > 0:
                await asyncio.sleep(wait)
            now_ms = wall_clock_ms()
            values = [(m.key, _stamped(m, now_ms)) for m in batch]
            self.sent += await self._producer.send_raw_many(values)
            if measured:
                self.valid += [v for m, (_, v) in zip(batch, values, strict=True) if m.valid]
                self.measured += len(values)
        return time.monotonic() - started


def _stage_counts(worker: BenchWorker) -> dict[str, int] | None:
    samples = worker.metrics()
    if not samples:
        return None
    return {
        stage: int(total(samples, "funnel_stage_entries_total", site=SITE, stage=stage))
        for stage in STAGES
    }


async def _poll(worker: BenchWorker, stop: asyncio.Event) -> list[tuple[int, dict[str, int]]]:
    polls: list[tuple[int, dict[str, int]]] = []
    while not stop.is_set():
        asked = time.monotonic()
        counts = await asyncio.to_thread(_stage_counts, worker)
        if counts is not None:
            polls.append((wall_clock_ms(), counts))
        await asyncio.sleep(max(0.0, POLL_S - (time.monotonic() - asked)))
    return polls


async def _wait_consumed(worker: BenchWorker, count: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.check_alive("funnel worker")
        samples = await asyncio.to_thread(worker.metrics)
        if total(samples, "funnel_events_consumed_total") >= count:
            return True
        await asyncio.sleep(_WAIT_POLL_S)
    return False


@dataclass(frozen=True, slots=True)
class _Measured:
    sender: _Sender
    elapsed_s: float
    polls: list[tuple[int, dict[str, int]]]
    in_clickhouse: dict[str, int]  # the report endpoint's stage counts at the end


async def _measure(
    worker: BenchWorker, bootstrap: str, topic: str, rate: float, seconds: float, seed: int
) -> _Measured:
    now = datetime.now(UTC)
    async with EventProducer(bootstrap, topic) as producer:
        warmup = islice(_traffic(WARMUP_SITE, rate, seed + 1, now), WARMUP_EVENTS)
        await producer.send_raw_many((m.key, m.value) for m in warmup)
        if not await _wait_consumed(worker, WARMUP_EVENTS, STARTUP_TIMEOUT_S):
            raise BenchError(f"the worker did not consume the warm-up:\n{worker.log_tail()}")
        sender = _Sender(producer, rate)
        stop = asyncio.Event()
        polling = asyncio.create_task(_poll(worker, stop))
        elapsed = await sender.send_for(_traffic(SITE, rate, seed, now), seconds, measured=True)
        await sender.send_for(_traffic(FILLER_SITE, rate, seed + 2, now), _FILLER_S, measured=False)
        await _wait_consumed(worker, WARMUP_EVENTS + sender.sent, 3 * seconds + 60)
        await asyncio.sleep(_SETTLE_S)
        stop.set()
        polls = await polling
    report = worker.report(SITE, now - timedelta(minutes=1), now + timedelta(days=1))
    in_clickhouse = {} if report is None else stage_sessions(report)
    return _Measured(sender, elapsed, polls, in_clickhouse)


def _reached_at(values: list[bytes], rules: FunnelRules) -> dict[str, list[int]]:
    """Stage name -> reached_at (ms) of every stage entry the stamped events produce."""
    now_ms = wall_clock_ms()
    events: list[tuple[Event, int]] = []
    for value in values:
        event = decode_event(value, now_ms=now_ms, limits=LIMITS)
        if not isinstance(event, Rejection):
            events.append((event, event.occurred_at_ms))
    funnel = PartitionFunnel(DictStore(), rules)
    facts = list(funnel.process_batch(events).facts)
    facts += funnel.tick(now_ms).facts + funnel.tick(now_ms + rules.idle_after_ms).facts
    reached: dict[str, list[int]] = {stage: [] for stage in STAGES}
    for fact in facts:
        if isinstance(fact, StageReached):
            reached[fact.stage.name.lower()].append(fact.reached_at_ms)
    return reached


def latency_run(
    *, bootstrap: str, rate: float, seconds: float, app_id: str, partitions: int, data_dir: Path,
    seed: int,
) -> LatencyRun:  # fmt: skip
    topic = f"{app_id}.events"
    asyncio.run(create_topics(bootstrap, {topic: partitions}))
    with BenchWorker(
        bootstrap=bootstrap,
        app_id=app_id,
        events_topic=topic,
        partitions=partitions,
        data_dir=data_dir,
        rules_env={"FUNNEL_LATENESS_S": str(LATENESS_S)},
    ) as worker:
        measured = asyncio.run(_measure(worker, bootstrap, topic, rate, seconds, seed))
    rules = FunnelRules(lateness_ms=LATENESS_S * 1000, idle_after_ms=round(IDLE_AFTER_S * 1000))
    latencies: list[float] = []
    problems = []
    reached_by_stage = _reached_at(measured.sender.valid, rules)
    for stage, reached in reached_by_stage.items():
        counted = [(at, counts[stage]) for at, counts in measured.polls]
        latencies += fifo_latencies(reached, counted)
        in_clickhouse = measured.in_clickhouse.get(stage)
        if in_clickhouse != len(reached) or (counted and counted[-1][1] != len(reached)):
            last = counted[-1][1] if counted else None
            problems.append(
                f"{stage}: engine {len(reached)}, counter {last}, ClickHouse {in_clickhouse}"
            )
    elapsed = measured.elapsed_s
    return LatencyRun(
        rate=rate,
        achieved_rate=measured.sender.measured / elapsed if elapsed > 0 else 0.0,
        sent=measured.sender.measured,
        summary=summarise_latencies(latencies, sum(len(r) for r in reached_by_stage.values())),
        polls=len(measured.polls),
        note="; ".join(problems),
    )
