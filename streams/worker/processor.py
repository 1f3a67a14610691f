"""Wire the pure partition funnels to the Faust table, the ClickHouse sink and the cart topic.

Per batch, in this order: run each partition's funnel (state changes staged), add raw events
and facts to the sink, flush the sink once, then send the staged state to the changelogged
table; the caller waits for those records to be delivered before the offsets are acked. So a
crash at any point replays events whose rows are either already in ClickHouse (idempotent) or
whose state was never written (recomputed identically).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import faust

from schemas.decode import Rejection
from sinks.batch import BatchSink
from streams.funnel.facts import CartChanged, CartStatus, Fact
from streams.funnel.partition import BatchResult, Outcome, PartitionFunnel
from streams.funnel.rules import FunnelRules
from streams.worker.abandoned_carts import abandoned_cart_message
from streams.worker.dead_letters import DeadLetter
from streams.worker.funnel_metrics import FunnelMetrics
from streams.worker.ingest import Clock, PartitionBatch, RawMessage
from streams.worker.publisher import Publisher
from streams.worker.sink_rows import dead_letter_row, fact_row, raw_event_row
from streams.worker.table_store import StagedTableStore, keep_only

REVOKED = "revoked"


class FunnelProcessor:
    def __init__(
        self,
        *,
        table: faust.types.TableT[Any, Any],
        rules: FunnelRules,
        sink: BatchSink,
        metrics: FunnelMetrics,
        clock: Clock,
        publisher: Publisher,
        abandoned_topic: str,
        owns: Callable[[int], bool],
        assigned: Callable[[], Iterable[int]],
        caught_up: Callable[[int], bool],
        settled: Callable[[], bool],
    ) -> None:
        self._table = table
        self._rules = rules
        self._sink = sink
        self._metrics = metrics
        self._clock = clock
        self._publisher = publisher
        self._abandoned_topic = abandoned_topic
        self._owns = owns
        self._assigned = assigned
        self._caught_up = caught_up
        self._settled = settled
        self._partitions: dict[int, tuple[PartitionFunnel, StagedTableStore]] = {}
        # The batch handler and the idle timer both drive funnels; one at a time, whole batches.
        self._lock = asyncio.Lock()

    async def process(self, batch: Mapping[int, PartitionBatch]) -> dict[int, list[str]]:
        async with self._lock:
            outcomes: dict[int, list[str]] = {}
            results: list[tuple[int, BatchResult]] = []
            for partition, (accepted, _) in batch.items():
                if not self._owns(partition):
                    # Taken before a rebalance moved the partition: its new owner replays these
                    # from the committed offset, so touching them here would corrupt state.
                    outcomes[partition] = [REVOKED] * len(accepted)
                    continue
                funnel, _ = self._partition(partition)
                result = funnel.process_batch([(a.event, a.message.timestamp_ms) for a in accepted])
                for item, outcome in zip(accepted, result.outcomes, strict=True):
                    # Duplicates are already stored under their key; late ones are kept, flagged.
                    if outcome is not Outcome.DUPLICATE:
                        row = raw_event_row(item, late=outcome is Outcome.LATE)
                        self._sink.add("events_raw", row)
                outcomes[partition] = [outcome.value for outcome in result.outcomes]
                results.append((partition, result))
            await self._complete(results)
            return outcomes

    def record_dead_letter(
        self, message: RawMessage, letter: DeadLetter, rejection: Rejection
    ) -> None:
        self._sink.add("dead_letters", dead_letter_row(message, letter, rejection))

    async def tick(self) -> None:
        """Advance idle partitions' watermarks from the wall clock (finalises, abandons carts).

        Only partitions with nothing left to read count as idle: a backlog after an outage must
        be replayed in event time, not overtaken by the wall clock. Every owned partition counts,
        also one taken over with nothing left to read: its sessions must still be finalised.
        """
        async with self._lock:
            if not self._settled():
                # Mid-rebalance the table may be half recovered: no state is read or written.
                return
            now_ms = self._clock()
            await self._complete(
                [
                    (partition, self._partition(partition)[0].tick(now_ms))
                    for partition in self._assigned()
                    if self._caught_up(partition)
                ]
            )
            await self._publisher.delivered()

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Drop the revoked partitions' funnels; rebuilt from the table if they come back."""
        async with self._lock:
            for partition in partitions:
                entry = self._partitions.pop(partition, None)
                if entry is not None:
                    entry[1].discard()
                    self._metrics.forget_partition(partition)

    async def assigned(self, partitions: Iterable[int]) -> None:
        """Drop the table keys of partitions no longer owned, once the new assignment is known."""
        async with self._lock:
            keep_only(self._table, set(partitions))

    def _partition(self, partition: int) -> tuple[PartitionFunnel, StagedTableStore]:
        # Built lazily: Faust has recovered the table before it hands us the first event.
        entry = self._partitions.get(partition)
        if entry is None:
            store = StagedTableStore(self._table, partition)
            entry = (PartitionFunnel(store, self._rules), store)
            self._partitions[partition] = entry
        return entry

    async def _complete(self, results: Sequence[tuple[int, BatchResult]]) -> None:
        """One sink flush for the whole batch, then (and only then) the staged state."""
        for _, result in results:
            for fact in result.facts:
                self._sink.add(*fact_row(fact))
        await self._sink.flush()
        now_ms = self._clock()
        for partition, result in results:
            funnel, store = self._partitions[partition]
            await self._publish(result.facts)
            await store.commit(self._publisher)
            self._metrics.observe_batch(partition, result, funnel.open_sessions, now_ms)

    async def _publish(self, facts: Sequence[Fact]) -> None:
        for fact in facts:
            if isinstance(fact, CartChanged) and fact.status is CartStatus.ABANDONED:
                await self._publisher.send(
                    self._abandoned_topic,
                    key=fact.session_id.encode(),
                    value=abandoned_cart_message(fact),
                )
