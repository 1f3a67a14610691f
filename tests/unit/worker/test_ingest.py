"""The worker's edges: dead letters, batch ingestion routing, bounded metric labels."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

import orjson
from prometheus_client import CollectorRegistry

from schemas.decode import DecodeLimits, Rejection
from streams.funnel.partition import Outcome
from streams.worker.dead_letters import (
    MAX_DEAD_LETTER_PAYLOAD,
    SourcePosition,
    dead_letter,
)
from streams.worker.ingest import Ingestion, PartitionBatch, Processed, RawMessage
from streams.worker.ingest_metrics import Metrics
from streams.worker.repartition import LATE_HEADER, MARKER_HEADER
from tests.unit.worker.fakes import RecordingPublisher

NOW_MS = int(datetime(2026, 11, 24, 12, tzinfo=UTC).timestamp() * 1000)


def test_dead_letter_keeps_bytes_or_truncates_with_size_and_hash() -> None:
    rejection = Rejection("oversize", "payload 2 MB over limit 1 MB")
    source = SourcePosition("events", 3, 42)
    small = dead_letter(b"{bad", rejection, source, rejected_at_ms=NOW_MS)
    assert small.payload == b"{bad"
    headers = dict(small.headers)
    assert headers["funnel.reason"] == b"payload 2 MB over limit 1 MB"
    assert headers["funnel.reason_code"] == b"oversize"
    assert (
        headers["funnel.source_topic"],
        headers["funnel.source_partition"],
        headers["funnel.source_offset"],
    ) == (b"events", b"3", b"42")
    assert headers["funnel.rejected_at"] == b"2026-11-24T12:00:00.000+00:00"
    big_payload = b"x" * (MAX_DEAD_LETTER_PAYLOAD + 10)
    big = dead_letter(big_payload, rejection, source, rejected_at_ms=NOW_MS)
    assert big.payload == big_payload[:MAX_DEAD_LETTER_PAYLOAD]
    assert dict(big.headers)["funnel.original_size"] == str(len(big_payload)).encode()
    assert (
        dict(big.headers)["funnel.original_sha256"]
        == hashlib.sha256(big_payload).hexdigest().encode()
    )


class Recorder:
    def __init__(self, publisher: RecordingPublisher) -> None:
        self.publisher = publisher
        self.sent_before: list[int] = []  # records the caller had sent, per process() call
        self.calls: list[tuple[int, list[str], int]] = []
        self.dead: list[tuple[int, str]] = []
        self.forwarded: list[tuple[str, bool]] = []
        self.markers: list[tuple[int, int]] = []

    async def process(self, batch: Mapping[int, PartitionBatch]) -> Processed:
        self.sent_before.append(len(self.publisher.sent))
        for partition, part in batch.items():
            self.calls.append(
                (partition, [a.event.event_id for a in part.accepted], part.last_offsets["events"])
            )
            self.forwarded += [(a.event.event_id, late) for a, late in part.forwarded]
            self.markers += part.markers
        outcomes = {
            p: [Outcome.ACCEPTED] * (len(part.accepted) + len(part.forwarded))
            for p, part in batch.items()
        }
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        durable.set_result(None)
        return Processed(outcomes, durable)

    def record_dead_letter(self, message: RawMessage, letter: object, rejection: Rejection) -> None:
        self.dead.append((message.offset, rejection.code))


def message(partition: int, offset: int, value: bytes) -> RawMessage:
    return RawMessage("events", partition, offset, NOW_MS, b"s", value)


def event_json(event_id: str) -> bytes:
    return orjson.dumps({"event_id": event_id, "event_type": "page_view", "occurred_at": NOW_MS,
                        "site_id": "shop", "session_id": "s"})  # fmt: skip


CONSUMED = {"event_type": "page_view", "outcome": "accepted"}


def test_ingestion_routes_every_partition_and_counts_outcomes() -> None:
    registry = CollectorRegistry()
    deliveries = RecordingPublisher([])
    recorder = Recorder(deliveries)
    ingestion = Ingestion(
        limits=DecodeLimits(), metrics=Metrics.create(registry), processor=recorder,
        publisher=deliveries, repartition_topic="rp", dlq_topic="dlq", clock=lambda: NOW_MS,
    )  # fmt: skip
    batch = [
        message(0, 10, event_json("a")),
        message(1, 5, b"not json"),
        message(0, 11, event_json("b")),
        message(1, 6, b"[]"),
        RawMessage("rp", 1, 3, NOW_MS, b"s", event_json("c"), ((LATE_HEADER, b"1"),)),
        RawMessage("rp", 1, 4, NOW_MS, None, b"", ((MARKER_HEADER, b"2:1234"),)),
        RawMessage("rp", 0, 8, NOW_MS, b"s", event_json("d")),
    ]

    async def handled_and_durable() -> None:
        step = await ingestion.handle(batch)
        assert registry.get_sample_value("funnel_events_consumed_total", CONSUMED) is None
        await step  # counted as consumed once durable

    asyncio.run(handled_and_durable())
    # Partition 1 had only rejections and is still handed over, with its last offset.
    assert recorder.calls == [(0, ["a", "b"], 11), (1, [], 6)]
    # Forwards keep their source's lateness verdict; markers are not events.
    assert recorder.forwarded == [("d", False), ("c", True)]
    assert recorder.markers == [(2, 1234)]
    # Rejections go to the dead-letter topic (their bytes, their key) and reach the processor.
    assert deliveries.sent == [("dlq", b"s", b"not json", None), ("dlq", b"s", b"[]", None)]
    assert recorder.dead == [(5, "not_json"), (6, "not_object")]
    # Sent before the batch is processed: its durable step awaits them before the ack.
    assert recorder.sent_before == [2]
    value = registry.get_sample_value
    assert (
        value("funnel_events_consumed_total", {"event_type": "page_view", "outcome": "accepted"})
        == 4
    )
    assert (
        value("funnel_events_consumed_total", {"event_type": "unknown", "outcome": "invalid"}) == 2
    )
    assert value("funnel_events_invalid_total", {"reason": "not_json"}) == 1
    assert value("funnel_dead_lettered_total") == 2
