"""Producing storefront events: a pure event builder and an aiokafka wrapper.

Storefront backends call `build_event` and `EventProducer.send`; `funnel send` forwards
JSON lines untouched through `send_lines`, because rejecting bad input is the worker's job
(it dead-letters with a reason), not the producer's.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice
from types import TracebackType
from typing import Any, Protocol, Self

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.event import Device, EventType, Item
from streams.kafka.key_hash import key_hash

# Bounds how many delivery futures (and the payloads they pin) are alive at once when a
# caller streams an unbounded iterable, e.g. `funnel send` reading stdin.
DEFAULT_CHUNK_SIZE = 10_000


class RawSender(Protocol):
    """The one producer method `send_lines` and the simulator need; tests fake it."""

    async def send_raw_many(self, messages: Iterable[tuple[bytes | None, bytes]]) -> int: ...


class ProduceError(Exception):
    """Delivery to Kafka failed; `retriable` says whether trying again can help."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


def format_occurred_at(when: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision, e.g. ``2026-11-20T10:15:02.123Z``."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("occurred_at must be timezone-aware")
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_event(
    *,
    event_type: EventType | str,
    site_id: str,
    session_id: str,
    occurred_at: datetime | int,
    event_id: str | None = None,
    user_id: str | None = None,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
    referrer: str | None = None,
    device: Device | str | None = None,
    country: str | None = None,
    variant: str | None = None,
    page: str | None = None,
    items: Sequence[Item] = (),
    value: Decimal | None = None,
    currency: str | None = None,
    order_id: str | None = None,
    cart_id: str | None = None,
) -> dict[str, Any]:
    """A JSON-ready contract-v1 event; fields left as None are omitted.

    `occurred_at` is an aware datetime (sent as RFC 3339, ms, ``Z``) or epoch milliseconds.
    Decimals travel as strings so no float rounding happens between shop and warehouse.
    This only shapes the payload; validation is the decoder's job.
    """
    event: dict[str, Any] = {
        "event_id": event_id if event_id is not None else str(uuid.uuid4()),
        "event_type": str(event_type),
        "occurred_at": (
            occurred_at if isinstance(occurred_at, int) else format_occurred_at(occurred_at)
        ),
        "site_id": site_id,
        "session_id": session_id,
    }
    optional: dict[str, str | None] = {
        "user_id": user_id,
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "utm_campaign": utm_campaign,
        "referrer": referrer,
        "device": None if device is None else str(device),
        "country": country,
        "variant": variant,
        "page": page,
        "value": None if value is None else str(value),
        "currency": currency,
        "order_id": order_id,
        "cart_id": cart_id,
    }
    event.update((name, field) for name, field in optional.items() if field is not None)
    if items:
        event["items"] = [item.as_json() for item in items]
    return event


def line_key(line: bytes) -> bytes | None:
    """The partition key for a raw JSON line: its string session_id, if it has one."""
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    session_id = parsed.get("session_id") if isinstance(parsed, dict) else None
    return session_id.encode() if isinstance(session_id, str) else None


def _chunks(
    pairs: Iterable[tuple[bytes | None, bytes]], size: int
) -> Iterator[list[tuple[bytes | None, bytes]]]:
    iterator = iter(pairs)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _translate(error: BaseException) -> ProduceError:
    retriable = isinstance(error, KafkaError) and bool(error.retriable)
    return ProduceError(f"kafka delivery failed: {error}", retriable=retriable)


class EventProducer:
    """Sends events to one topic, keyed by session_id so a session stays on one partition.

    `client_options` go to AIOKafkaProducer as they are (security settings, for example).
    Records are sent as given: a message over the broker's size limit fails there, so an
    oversize test message reaches the worker only if the broker accepts it.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        client_id: str = "funnelstream-producer",
        max_batch_size: int = 256 * 1024,
        client_options: Mapping[str, Any] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.topic = topic
        self._chunk_size = chunk_size
        # Round-robin for unkeyed records: spreads them without a global RNG.
        self._unkeyed = 0
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            max_batch_size=max_batch_size,
            **dict(client_options or {}),
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaError as error:
            # A half-started client still holds sockets; close it before reporting.
            await self._producer.stop()
            raise _translate(error) from error

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send one event and wait until the broker has it."""
        await self.send_raw(orjson.dumps(event), _event_key(event))

    async def send_many(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Send events without waiting on each one, then wait for all; returns the count."""
        return await self.send_raw_many(
            (_event_key(event), orjson.dumps(event)) for event in events
        )

    async def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Send bytes exactly as given and wait until the broker has them."""
        await self.send_raw_many([(key, value)])

    async def send_raw_many(self, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
        """Send (key, value) pairs as given, pipelined; returns how many were delivered.

        Raises ProduceError on the first failed delivery, after the rest of its chunk settled.
        """
        delivered = 0
        for chunk in _chunks(messages, self._chunk_size):
            try:
                futures = await self._submit(chunk)
            except KafkaError as error:
                raise _translate(error) from error
            results = await asyncio.gather(*futures, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise _translate(result) from result
            delivered += len(chunk)
        return delivered

    async def _submit(self, chunk: list[tuple[bytes | None, bytes]]) -> list[asyncio.Future[Any]]:
        """Queue a chunk as one record batch per partition (more when a batch fills up).

        aiokafka's per-message send() costs a future, a metadata check and a pure-Python
        murmur2 per record, which caps a producer near 20k records/s; building the batches
        here, with the same partitioning, does several times better.
        """
        partitions = sorted(await self._producer.partitions_for(self.topic))
        builders: dict[int, Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for key, value in chunk:
            if key is None:
                partition = partitions[self._unkeyed % len(partitions)]
                self._unkeyed += 1
            else:
                partition = partitions[key_hash(key) % len(partitions)]
            builder = builders.get(partition)
            if builder is None or builder.append(timestamp=None, key=key, value=value) is None:
                if builder is not None:
                    futures.append(await self._send_batch(builder, partition))
                # A fresh batch always takes its first record, however large.
                builder = builders[partition] = self._producer.create_batch()
                builder.append(timestamp=None, key=key, value=value)
        for partition, builder in builders.items():
            futures.append(await self._send_batch(builder, partition))
        return futures

    async def _send_batch(self, builder: Any, partition: int) -> asyncio.Future[Any]:
        # A closed batch is sent at once; an open one would wait for more records.
        builder.close()
        future: asyncio.Future[Any] = await self._producer.send_batch(
            builder, self.topic, partition=partition
        )
        return future


def _event_key(event: Mapping[str, Any]) -> bytes:
    session_id = event.get("session_id")
    if not isinstance(session_id, str):
        raise ValueError("event has no string session_id to key it by")
    return session_id.encode()


async def send_lines(producer: RawSender, lines: Iterable[bytes]) -> int:
    """Forward JSON lines as-is, keyed by session_id when one can be read; returns lines sent.

    Blank lines are skipped; every other line is sent, even when it is not valid JSON, so the
    worker can dead-letter it with a reason instead of it vanishing here.
    """
    stripped = (line.rstrip(b"\r\n") for line in lines)
    return await producer.send_raw_many((line_key(line), line) for line in stripped if line.strip())
