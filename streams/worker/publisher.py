"""Produce straight through the Kafka client and confirm delivery once per batch.

Faust's `send_soon` goes through a 100-message buffer drained one message at a time, and its
consumer stops fetching while that buffer is full: with a changelog write per dirty session it
throttled the whole worker. Sends here are batched by the client itself; `delivered()` waits
for all of a batch's records before its offsets are acked, so a failed send fails the batch
instead of being lost behind a later commit.

Deliveries are tracked per caller (asyncio task): the ingest agent and the idle timer each wait
for their own records, so a failure surfaces in the one whose work it was, never in the other
while the first acks offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from streams.kafka.key_hash import key_hash
from streams.worker.faust_batches import kafka_producer

# Lists: aiokafka's compiled record batches take no other sequence.
Headers = list[tuple[str, bytes]]
_NO_HEADERS: Headers = []  # shared by every record without headers; aiokafka only reads it
# A record for `send_spread`: (partition hint for no key, key, value, headers).
SpreadRecord = tuple[int, bytes | None, bytes, Headers]


class DeliveryError(Exception):
    """A record could not be produced (e.g. over the broker's size limit): not retriable here,
    and the batch that made it must not be acked."""


@dataclass(frozen=True, slots=True)
class Deliveries:
    records: Sequence[tuple[str, Awaitable[Any]]] = ()


class Publisher:
    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._pending: dict[asyncio.Task[Any] | None, list[tuple[str, Awaitable[Any]]]] = {}

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        await self._track(
            topic, self._app.producer.send(topic, key, value, partition, None, headers)
        )

    async def send_batch(
        self, topic: str, partition: int, records: Iterable[tuple[bytes, bytes | None]]
    ) -> None:
        """Send `records` (key, value; None deletes) to one partition in as few record batches as
        the producer's batch size allows: one delivery to await per batch, not per record."""
        await self._send_batches(topic, partition, ((k, v, _NO_HEADERS) for k, v in records))

    async def send_spread(self, topic: str, records: Sequence[SpreadRecord]) -> None:
        """Send `records` where the producer's partitioner would put them (a key's murmur2; an
        unkeyed record by its hint, there at random), as record batches per partition."""
        try:
            partitions = len(await kafka_producer(self._app).partitions_for(topic))
        except Exception as exc:
            raise _failed(topic, exc) from exc
        by_partition: dict[int, list[tuple[bytes | None, bytes, Headers]]] = {}
        for hint, key, value, headers in records:
            at = (hint if key is None else key_hash(key)) % partitions
            by_partition.setdefault(at, []).append((key, value, headers))
        for partition, part in by_partition.items():
            await self._send_batches(topic, partition, part)

    async def _send_batches(
        self,
        topic: str,
        partition: int,
        records: Iterable[tuple[bytes | None, bytes | None, Headers]],
    ) -> None:
        producer = kafka_producer(self._app)
        batch = producer.create_batch()
        for key, value, headers in records:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:  # full
                await self._track(topic, producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                # A first record always fits.
                batch.append(key=key, value=value, timestamp=None, headers=headers)
        if batch.record_count():
            await self._track(topic, producer.send_batch(batch, topic, partition=partition))

    async def _track(self, topic: str, sending: Awaitable[Awaitable[Any]]) -> None:
        """Hand the records to the producer; their delivery joins the calling task's."""
        try:
            delivery = await sending
        except Exception as exc:
            raise _failed(topic, exc) from exc
        self._pending.setdefault(asyncio.current_task(), []).append((topic, delivery))

    def detach(self) -> Deliveries:
        """The records the calling task sent since its last call, for another task to await
        (a batch's deliveries are awaited by the step that makes it durable)."""
        return Deliveries(self._pending.pop(asyncio.current_task(), []))

    async def delivered(self, *others: Deliveries) -> None:
        """Wait for every record the calling task sent since its last call, and `others`."""
        pending = [*self.detach().records, *(r for other in others for r in other.records)]
        results = await asyncio.gather(*(d for _, d in pending), return_exceptions=True)
        for (topic, _), result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                raise _failed(topic, result) from result


def _failed(topic: str, error: BaseException) -> DeliveryError:
    return DeliveryError(f"producing to {topic} failed: {error!r}")
