"""Wire the pure partition funnels to the Faust table, the ClickHouse sink and the cart topic.

Per batch, in this order: run each partition's funnel (state changes staged), add raw events
and facts to the sink and apply the state to the local table; then, in the batch's durable
step (see durable.py), flush the sink once, send the state to the table's changelog and wait
for every record of the batch to be delivered; the offsets are acked only after that step. So
a crash at any point replays events whose rows are either already in ClickHouse (idempotent) or
whose state was never written (recomputed identically); reads whose state was written (it
records the next offset per topic it covers) are skipped, not judged against the newer state.

Events read in another session's partition are first forwarded through the repartition topic
(``repartition``); those forwards are on the broker before the progress markers behind them are
sent and before any state that remembers judging them is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from schemas.decode import Rejection
from sinks.batch import BatchSink
from streams.clock import Clock
from streams.funnel.partition import BatchResult, Outcome, PartitionFunnel
from streams.funnel.progress import SourceProgress
from streams.funnel.rules import FunnelRules, SessionLimits
from streams.funnel.store import PROGRESS_KEY
from streams.funnel.watermark import is_future
from streams.worker.dead_letters import DeadLetter
from streams.worker.durable import BatchCommitter, PartitionCommit
from streams.worker.funnel_metrics import FunnelMetrics
from streams.worker.ingest import Accepted, PartitionBatch, Processed, RawMessage
from streams.worker.publisher import Publisher
from streams.worker.repartition import Repartitioner
from streams.worker.replay import FreshReads, read_outcome
from streams.worker.sink_rows import dead_letter_row, raw_event_columns
from streams.worker.table_store import StagedTableStore, keep_only


@dataclass(frozen=True, slots=True)
class Topics:
    """Where the processor reads: storefront events, and forwards from other partitions."""

    events: str
    repartition: str
    partitions: int


@dataclass(slots=True)
class _Partition:
    funnel: PartitionFunnel
    store: StagedTableStore
    progress: SourceProgress


class FunnelProcessor:
    def __init__(
        self,
        *,
        table: faust.types.TableT[Any, Any],
        rules: FunnelRules,
        limits: SessionLimits,
        sink: BatchSink,
        metrics: FunnelMetrics,
        clock: Clock,
        publisher: Publisher,
        abandoned_topic: str,
        repartitioner: Repartitioner,
        topics: Topics,
        owns: Callable[[int], bool],
        assigned: Callable[[], Iterable[int]],
        end_offset: Callable[[str, int], int],
        fetch_positions: Callable[
            [Iterable[tuple[str, int]]], Awaitable[Mapping[tuple[str, int], int | None]]
        ],
        settled: Callable[[], bool],
    ) -> None:
        self._table = table
        self._rules = rules
        self._limits = limits
        self._sink = sink
        self._metrics = metrics
        self._clock = clock
        self._publisher = publisher
        self._repartitioner = repartitioner
        self._topics = topics
        self._owns = owns
        self._assigned = assigned
        self._end_offset = end_offset
        self._fetch_positions = fetch_positions
        self._settled = settled
        self._positions: dict[tuple[str, int], int] = {}
        self._partitions: dict[int, _Partition] = {}
        # Bumped by every revocation and assignment: positions read before one are void.
        self._assignments = 0
        # The agent and the idle timer both drive funnels; one at a time, whole batches.
        self._lock = asyncio.Lock()
        self._committer = BatchCommitter(
            sink=sink,
            publisher=publisher,
            metrics=metrics,
            clock=clock,
            abandoned_topic=abandoned_topic,
        )

    async def process(self, batch: Mapping[int, PartitionBatch]) -> Processed:
        async with self._lock:
            # Producers stamp Kafka timestamps with their own clocks: the worker's own clock at
            # consumption bounds how far one storefront can push event time (see partition).
            now_ms = self._clock()
            outcomes: dict[int, list[Outcome]] = {}
            owned: dict[int, tuple[PartitionBatch, FreshReads, list[bool]]] = {}
            forwarded = False
            for partition, part in batch.items():
                if not self._owns(partition):
                    # Taken before a rebalance moved the partition: its new owner replays these
                    # from the committed offset, so touching them here would corrupt state.
                    revoked = len(part.accepted) + len(part.forwarded)
                    outcomes[partition] = [Outcome.REVOKED] * revoked
                    continue
                for topic, offset in part.last_offsets.items():
                    self._positions[topic, partition] = offset + 1
                entry = self._partition(partition)
                fresh = FreshReads.of(entry.progress, part)
                read = [(a.event, a.message) for a in fresh.read]
                stays = await self._repartitioner.split(entry.progress, read)
                forwarded = forwarded or not all(stays)
                owned[partition] = (part, fresh, stays)
            if forwarded:
                await self._publisher.delivered()  # forwards first, then the markers behind them
            results: list[tuple[int, BatchResult]] = []
            for partition, (part, fresh, stays) in owned.items():
                entry = self._partitions[partition]
                await self._repartitioner.announce(entry.progress)
                direct = [a for a, stay in zip(fresh.read, stays, strict=True) if stay]
                offered = fresh.forwarded
                result = entry.funnel.process_batch(
                    [(a.event, min(a.message.timestamp_ms, now_ms)) for a in direct],
                    [(a.event, late) for a, late in offered],
                )
                # A marker covers the forwards before it, some of which this batch has just
                # offered: it holds finalisation from the next batch or tick on.
                for source, watermark in part.markers:
                    entry.progress.see(source, watermark)
                entry.funnel.hold_ms = entry.progress.hold_ms()
                processed = [*direct, *(a for a, _ in offered)]
                self._add_raw(processed, result.outcomes, now_ms)
                for topic, offset in part.last_offsets.items():
                    entry.progress.applied(topic, offset + 1)
                done = iter(result.outcomes)
                stay = iter(stays)
                outcomes[partition] = [
                    *(read_outcome(keep and next(stay), keep, done) for keep in fresh.read_mask),
                    *(read_outcome(keep, keep, done) for keep in fresh.forwarded_mask),
                ]
                results.append((partition, result))
                # The previous batch's durable step runs on this loop too: each of its awaits
                # (insert done, records handed over) waits for a turn, so give it one here.
                await asyncio.sleep(0)
            return Processed(outcomes, self._stage(results))

    def _add_raw(
        self, processed: Sequence[Accepted], outcomes: Sequence[Outcome], now_ms: int
    ) -> None:
        kept: list[Accepted] = []
        kept_outcomes: list[Outcome] = []
        futures: list[bool] = []
        for item, outcome in zip(processed, outcomes, strict=True):
            # Duplicates are already stored under their key; late and capped ones are kept,
            # flagged.
            if outcome is Outcome.DUPLICATE:
                continue
            observed = min(item.message.timestamp_ms, now_ms)
            future = is_future(item.event.occurred_at_ms, observed, self._rules)
            if future or outcome is Outcome.CAPPED:
                site = self._metrics.site(item.event.site_id)
                if future:
                    self._metrics.events_future.labels(site).inc()
                if outcome is Outcome.CAPPED:
                    self._metrics.session_capped.labels(site).inc()
            kept.append(item)
            kept_outcomes.append(outcome)
            futures.append(future)
        self._sink.add_columns("events_raw", raw_event_columns(kept, kept_outcomes, futures))

    def record_dead_letter(
        self, message: RawMessage, letter: DeadLetter, rejection: Rejection
    ) -> None:
        self._sink.add("dead_letters", dead_letter_row(message, letter, rejection))

    async def tick(self) -> None:
        """Advance idle partitions' watermarks from the wall clock (finalises, abandons carts).

        Only partitions with nothing left to read count as idle: a backlog after an outage must
        be replayed in event time, not overtaken by the wall clock. Every assigned partition
        takes part, also one that never had a message: as a source it must still announce
        progress, or it would hold the others back.
        """
        if not self._settled():
            return
        # Read before taking the lock: the consumer answers once no fetched batch is on its
        # way, and a batch in hand waits for this lock. A position read now can only be behind
        # where handling stands later, which delays idleness by a tick, never hastens it;
        # unless a rebalance came between (records dropped, positions reset): then it is void.
        assignments = self._assignments
        started = await self._fetch_positions(
            [
                (topic, partition)
                for partition in self._assigned()
                for topic in self._topic_names()
                if (topic, partition) not in self._positions
            ]
        )
        async with self._lock:
            if not self._settled():
                # Mid-rebalance the table may be half recovered: no state is read or written.
                return
            if assignments != self._assignments:
                started = {}
            now_ms = self._clock()
            results: list[tuple[int, BatchResult]] = []
            for partition in sorted(self._assigned()):
                entry = self._partition(partition)
                unread = {t: self._unread(t, partition, started) for t in self._topic_names()}
                self._repartitioner.observe(entry.progress, unread[self._topics.repartition])
                if any(n is None or n > 0 for n in unread.values()):
                    continue
                entry.progress.source.tick(now_ms)
                await self._repartitioner.announce(entry.progress)
                results.append((partition, entry.funnel.tick(now_ms)))
            if not results:
                return  # nothing idle: no step to chain behind the batch being made durable
            # Awaited under the lock: a tick moves watermarks by the wall clock, which no replay
            # repeats, so no batch may be judged against a tick's state before it is durable.
            await self._stage(results)

    def _topic_names(self) -> tuple[str, str]:
        return self._topics.events, self._topics.repartition

    def _unread(
        self, topic: str, partition: int, started: Mapping[tuple[str, int], int | None]
    ) -> int | None:
        """Messages left to read; None when the position is not known yet."""
        # Nothing handled here since the start: where the consumer stood before the lock.
        position = self._positions.get((topic, partition), started.get((topic, partition)))
        if position is None:
            return None
        return max(0, self._end_offset(topic, partition) - position)

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Drop the revoked partitions' funnels; rebuilt from the table if they come back."""
        async with self._lock:
            await self._committer.settled()  # nothing of theirs is left to send
            self._assignments += 1
            for partition in partitions:
                entry = self._partitions.pop(partition, None)
                for topic in self._topic_names():
                    self._positions.pop((topic, partition), None)
                if entry is not None:
                    entry.store.discard()
                    self._metrics.forget_partition(partition)
                    self._repartitioner.forget_partition(partition)

    async def keep_partitions(self, partitions: Iterable[int]) -> None:
        """Drop the table keys of partitions no longer owned, once the new assignment is known."""
        async with self._lock:
            self._assignments += 1
            keep_only(self._table, set(partitions))

    def _partition(self, partition: int) -> _Partition:
        # Built lazily: Faust has recovered the table before it hands us the first event.
        entry = self._partitions.get(partition)
        if entry is None:
            store = StagedTableStore(self._table, partition)
            progress = SourceProgress(self._rules, partition, self._topics.partitions)
            saved = store.get(PROGRESS_KEY)
            if saved is not None:
                progress.load(saved)
            funnel = PartitionFunnel(store, self._rules, limits=self._limits)
            funnel.hold_ms = progress.hold_ms()
            entry = _Partition(funnel, store, progress)
            self._partitions[partition] = entry
        return entry

    def _stage(self, results: Sequence[tuple[int, BatchResult]]) -> asyncio.Future[None]:
        commits: list[PartitionCommit] = []
        for partition, result in results:
            entry = self._partitions[partition]
            progress = entry.progress.dump()
            if progress is not None:
                entry.store.put(PROGRESS_KEY, progress)
            commit = PartitionCommit(
                partition, result, entry.store.apply(), entry.funnel.open_sessions
            )
            commits.append(commit)
        return self._committer.stage(commits)
