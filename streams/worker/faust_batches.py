"""Whole fetched batches of the worker's topics, straight from Faust's consumer.

The only module that touches Faust's private API; written against `FAUST_VERSION` (pinned in
pyproject.toml), and tests/unit/test_faust_seam.py fails loudly when that seam changes.

Stock Faust hands every message through its conductor and a stream, one at a time: ~290 µs per
event even when the agent does nothing. `BatchConsumer` takes the routed topics' records out of
each `getmany` result before that path sees them and awaits one handler for all of them; other
topics (table changelogs during recovery) keep Faust's own path.
Faust keeps the group, rebalances, tables and the commits themselves: its commit timer,
revocation and shutdown commit "last handled offset + 1" through `_new_offset`.

Why the commits stay right:
- The handler runs inside the fetch, under one lock every seek takes too, so a seek (recovery's,
  to the committed offsets) never lands between a fetch and its handling; no buffer exists.
- Records that arrive once a rebalance has begun (flow stopped, or a new generation) are
  dropped unhandled, positions not advanced. Every rebalance restarts aiokafka's positions
  from the committed offsets, so they are read again; seeking back to them instead could skip
  records whose state a rebalance discarded.
- Revocation waits for the batch in hand, lets Faust commit it, and only then forgets the
  revoked partitions' positions, so a later assignment never commits from a stale one.
- The handler returns once a batch is processed, with the step that makes it durable (sink
  insert, changelog), which overlaps the next fetch. A batch's positions move only once its
  step is done, in batch order, so no commit passes a batch that is not durable; revocation
  and shutdown wait for the steps too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any, Final, Protocol

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import IllegalStateError
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

FAUST_VERSION: Final = "0.15.3"
# Faust fixes the fetch long poll at 1.5 s. aiokafka keeps one fetch in flight per broker, so
# one for only idle partitions (changelogs, a quiet repartition partition) held that long
# stalls the busy ones: 0.3-0.9 s every few batches of a backlog, and as much latency live.
FETCH_MAX_WAIT_MS: Final = 100


class Record(Protocol):
    """The fields of aiokafka's `ConsumerRecord` the handler reads."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


BatchHandler = Callable[[Sequence[Record]], Awaitable["asyncio.Future[None]"]]
"""Handles one fetch's records of the routed topics (all partitions, each in offset order).
Returns once they are processed, with a step that is done once their effects are durable; the
steps of successive batches must finish in order. Raising, or a failed step, crashes the worker
(nothing is committed for that batch)."""


@dataclass(frozen=True)
class _Route:
    topics: frozenset[str]
    handler: BatchHandler


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, with some topics' records handed over a fetch at a time."""

    def __init__(self, transport: BatchTransport, *args: Any, **kwargs: Any) -> None:
        super().__init__(transport, *args, **kwargs)
        self._route = transport.batch_route
        self._fetch_lock = asyncio.Lock()
        # Clear while a batch is being handled or made durable. Revocation waits on this, never
        # on the fetch lock: a seek holding that lock can wait on the very rebalance being
        # revoked.
        self._not_handling = asyncio.Event()
        self._not_handling.set()
        self._unfinished = 0
        # Set by a failed batch: no position moves after it (the worker is stopping).
        self._failed = False
        # Next offset to commit per routed partition: last handled + 1, once durable.
        self._handled: dict[TP, int] = {}
        # Positions read while nothing was handled yet (see handled_positions).
        self._read_positions: dict[TP, int] = {}
        # The last handled batch whose durable step may still be running.
        self._in_flight: asyncio.Future[None] | None = None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # Faust's own signature (getmany passes the fetch timeout through).
    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109
        if not self.flow_active:
            # Waited for outside the lock: recovery seeks before it resumes the flow.
            # mode types wait() for its own Event; Faust passes an asyncio.Event the same way.
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
        async with self._fetch_lock:
            if not self.flow_active or self.should_stop:
                return None, None  # getmany returns; the drain loop waits for the flow again
            generation = self.app.consumer_generation_id
            records, active = await super()._wait_next_records(timeout)
            topics = self._route.topics
            if not records or all(tp.topic not in topics for tp in records):
                return records, active
            ours = {tp: batch for tp, batch in records.items() if tp.topic in topics}
            if (
                self.flow_active
                and not self.should_stop
                and generation == self.app.consumer_generation_id
            ):
                await self._handle(ours)
            else:
                self.log.info(
                    "Dropped %d records fetched as a rebalance began; they are read again "
                    "from the committed offsets",
                    sum(len(batch) for batch in ours.values()),
                )
            return {tp: batch for tp, batch in records.items() if tp.topic not in topics}, active

    async def _handle(self, batches: dict[TP, list[Record]]) -> None:
        # Cleared in the same step as the flow check before it: once a rebalance has stopped
        # the flow, no new batch starts, and revocation only has to wait for those in hand.
        self._unfinished += 1
        self._not_handling.clear()
        # Shielded: shutdown stops the fetcher task, which must not cut a batch in half;
        # wait_empty then waits for the batch and commits it.
        await asyncio.shield(self._handle_whole(batches))

    async def _handle_whole(self, batches: dict[TP, list[Record]]) -> None:
        try:
            step = await self._route.handler(
                [record for batch in batches.values() for record in batch]
            )
        except BaseException as exc:
            # Nothing of this fetch, or after it, is committed; the worker stops and a restart
            # replays it.
            self._failed = True
            self._finished()
            if isinstance(exc, Exception):
                await self.crash(exc)
            raise
        previous = self._in_flight
        self._in_flight = asyncio.ensure_future(self._acked_once_durable(previous, batches, step))
        if previous is not None:
            # One batch's durable step at a time overlaps the next fetch and processing.
            await asyncio.wait([previous])

    async def _acked_once_durable(
        self,
        previous: asyncio.Future[None] | None,
        batches: dict[TP, list[Record]],
        step: asyncio.Future[None],
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # positions only ever move forward
            await step
        except Exception as exc:
            self._failed = True  # for handlers whose later steps would not fail with it
            await self.crash(exc)
        else:
            if self._failed:
                return  # never past a batch that failed
            now = monotonic()
            for tp, batch in batches.items():
                self._handled[tp] = batch[-1].offset + 1
                # Faust's stall detector reads this; no stream sets it for these topics now.
                self.app.monitor.stream_inbound_time[tp] = now
        finally:
            self._finished()

    def _finished(self) -> None:
        self._unfinished -= 1
        if not self._unfinished:
            self._not_handling.set()

    async def handled_positions(self, tps: Iterable[TP]) -> dict[TP, int | None]:
        """The next offset to handle in each routed partition (None: not known, e.g. revoked).

        Not aiokafka's position alone: that moves in the consumer thread as soon as records
        are fetched, before they reach this loop and the handler, so a batch on its way would
        make its partition look read to the end. Where nothing is handled since the
        assignment, the positions are read under the fetch lock, all in one hold of it: no
        fetch in flight, none in hand (a batch processed but not yet durable counts as read:
        the handler has seen it). Callers must not hold a lock the handler waits for.

        A position so read is kept until the next seek or revocation: handling only moves it
        forward, so the kept one can only be behind, which delays idleness and never hastens
        it. Read afresh, each partition that never gets a record (an empty repartition topic)
        cost a wait for a fetch in flight on every tick: 15 s ticks for sixteen of them.
        """
        positions: dict[TP, int | None] = {}
        unread: list[TP] = []
        for tp in tps:
            known = self._handled.get(tp, self._read_positions.get(tp))
            if known is None:
                unread.append(tp)
            positions[tp] = known
        if unread:
            async with self._fetch_lock:
                for tp in unread:
                    handled = self._handled.get(tp)
                    positions[tp] = handled if handled is not None else await self._read(tp)
        return positions

    async def _read(self, tp: TP) -> int | None:
        generation = self.app.consumer_generation_id
        try:
            position: int | None = await self.position(tp)
        except IllegalStateError:
            return None  # revoked since the caller asked: not idle, ask again later
        if position is not None and generation == self.app.consumer_generation_id:
            self._read_positions[tp] = position  # not kept across a rebalance begun meanwhile
        return position

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        yield from super()._filter_tps_with_pending_acks(topics)
        for tp in self._handled:
            if topics is None or tp in topics or tp.topic in topics:
                yield tp

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic in self._route.topics:
            return self._handled.get(tp)
        offset: int | None = super()._new_offset(tp)
        return offset

    async def perform_seek(self) -> None:
        async with self._fetch_lock:
            self._read_positions.clear()
            await super().perform_seek()

    async def seek(self, partition: TP, offset: int) -> None:
        async with self._fetch_lock:
            self._read_positions.pop(partition, None)
            await super().seek(partition, offset)

    async def wait_empty(self) -> None:
        # Revocation and shutdown: the batch in hand is handled before Faust's final commit,
        # which then includes it; anything fetched after the flow stopped is dropped.
        await self._not_handling.wait()
        await super().wait_empty()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        await super().on_partitions_revoked(revoked)
        for tp in revoked:
            self._handled.pop(tp, None)
            self._read_positions.pop(tp, None)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer: AIOKafkaConsumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # start() hands it to the fetcher
        return consumer


class PromptTableManager(TableManager):
    """Faust's, without its 1 s start-up sleep (for agents to define tables as they start):
    the worker's table is defined when the app is built."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer
    batch_route: _Route


def install_batch_consumer(app: faust.App, topics: Sequence[str], handler: BatchHandler) -> None:
    """Route the `topics`' records to `handler`, a fetch at a time. Before the app starts."""
    if app._consumer is not None:
        raise RuntimeError("install_batch_consumer must run before the app's consumer exists")
    transport = BatchTransport(app.conf.broker_consumer, app)
    transport.batch_route = _Route(frozenset(topics), handler)
    app.transport = transport
    # Subscribed like an agent's topic (and so co-partitioned with the tables), but no stream
    # ever reads it: its records never reach the conductor.
    app.topics.add(app.topic(*topics, key_serializer="raw", value_serializer="raw"))


def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under the app's own (started with the app), for record batches:
    Faust sends one record at a time."""
    producer = app.producer
    if not isinstance(producer, faust_aiokafka.Producer):
        raise TypeError(f"the worker needs Faust's aiokafka producer, not {type(producer)}")
    return producer._ensure_producer()
