"""Make batches durable one after another, while the next batch is already being processed.

Processing a batch is CPU work on the event loop; making it durable (the ClickHouse insert on
the sink's thread, then the changelog, dead-letter and cart records, then waiting for the
broker) is mostly waiting. Run as a task per batch, the second overlaps the next batch's
processing. The steps still run strictly in order: a batch's rows reach ClickHouse, and its
state the changelog, only after every earlier batch's did, so a key's changelog records stay
in order and a crash never leaves a later batch's state on the broker without an earlier one's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sinks.batch import BatchSink, Pending
from streams.clock import Clock
from streams.funnel.facts import CartChanged, CartStatus, Fact
from streams.funnel.partition import BatchResult
from streams.worker.abandoned_carts import abandoned_cart_message
from streams.worker.funnel_metrics import FunnelMetrics
from streams.worker.publisher import Deliveries, Publisher, SpreadRecord
from streams.worker.sink_rows import fact_columns
from streams.worker.table_store import ChangelogRecords


class DurableSteps:
    def __init__(self) -> None:
        self._last: asyncio.Future[None] | None = None

    def then(self, step: Callable[[], Awaitable[None]]) -> asyncio.Future[None]:
        """Start `step` once every earlier step has succeeded; a failure fails the steps after
        it too (each is awaited by whoever acks its batch)."""
        previous = self._last

        async def run() -> None:
            if previous is not None:
                await previous
            await step()

        self._last = asyncio.ensure_future(run())
        return self._last

    async def settled(self) -> None:
        """Return once every step started so far has finished, failed or not."""
        if self._last is not None and not self._last.done():
            await asyncio.wait([self._last])


@dataclass(frozen=True, slots=True)
class PartitionCommit:
    """What one partition's batch leaves to make durable: its funnel's result (facts, metrics)
    and its state changes, already applied to the local table."""

    partition: int
    result: BatchResult
    changes: ChangelogRecords
    open_sessions: int


class BatchCommitter:
    def __init__(
        self,
        *,
        sink: BatchSink,
        publisher: Publisher,
        metrics: FunnelMetrics,
        clock: Clock,
        abandoned_topic: str,
    ) -> None:
        self._sink = sink
        self._publisher = publisher
        self._metrics = metrics
        self._clock = clock
        self._abandoned_topic = abandoned_topic
        self._steps = DurableSteps()

    def stage(self, commits: Sequence[PartitionCommit]) -> asyncio.Future[None]:
        """The batch's facts to the sink now; its durable step once the earlier ones are done.
        That step writes every row added for the batch (raw events, dead letters, facts), and
        awaits what the calling task sent for it (dead letters, markers)."""
        facts = (fact for commit in commits for fact in commit.result.facts)
        for table, columns in fact_columns(facts).items():
            self._sink.add_columns(table, columns)
        rows = self._sink.take()
        sent = self._publisher.detach()
        return self._steps.then(lambda: self._make_durable(commits, rows, sent))

    async def settled(self) -> None:
        await self._steps.settled()

    async def _make_durable(
        self, commits: Sequence[PartitionCommit], rows: Pending, sent: Deliveries
    ) -> None:
        # One sink flush of the batch's own rows, then (and only then) its state and records.
        await self._sink.flush(rows)
        for commit in commits:
            await self._publish(commit.result.facts)
            await commit.changes.send(self._publisher)
        await self._publisher.delivered(sent)
        # Stage entries count once they are queryable: the latency benchmark reads them so.
        now_ms = self._clock()
        for commit in commits:
            self._metrics.observe_batch(
                commit.partition, commit.result, commit.open_sessions, now_ms
            )

    async def _publish(self, facts: Sequence[Fact]) -> None:
        abandoned: list[SpreadRecord] = [
            (0, fact.session_id.encode(), abandoned_cart_message(fact), [])
            for fact in facts
            if isinstance(fact, CartChanged) and fact.status is CartStatus.ABANDONED
        ]
        if abandoned:
            await self._publisher.send_spread(self._abandoned_topic, abandoned)
