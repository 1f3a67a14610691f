"""Edge modules: settings, dead letters, batch ingestion routing, row shapes, metric labels."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from schemas.decode import DecodeLimits, Rejection
from schemas.event import Event, EventType, Item
from sinks.tables import COLUMNS
from streams.funnel.facts import CartChanged, CartStatus, Dims, OrderPlaced, Stage, StageReached
from streams.settings import Settings
from streams.worker.dead_letters import (
    MAX_DEAD_LETTER_PAYLOAD,
    DeadLetter,
    SourcePosition,
    dead_letter,
)
from streams.worker.funnel_metrics import SiteLabels
from streams.worker.ingest import Accepted, Ingestion, PartitionBatch, RawMessage
from streams.worker.ingest_metrics import Metrics
from streams.worker.repartition import LATE_HEADER, MARKER_HEADER
from streams.worker.sink_rows import dead_letter_row, fact_row, raw_event_row

NOW_MS = int(datetime(2026, 11, 24, 12, tzinfo=UTC).timestamp() * 1000)


def test_settings_are_frozen_and_mask_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNNEL_KAFKA_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("FUNNEL_CLICKHOUSE_PASSWORD", "s3cret")
    monkeypatch.setenv("FUNNEL_CLICKHOUSE_DSN", "https://app:inline-pw@ch.example:8443/funnel")
    monkeypatch.setenv("FUNNEL_KAFKA_BOOTSTRAP", "kafka://broker:9092")
    settings = Settings()
    shown = orjson.dumps(settings.masked()).decode()
    for secret in ("hunter2", "s3cret", "inline-pw"):
        assert secret not in shown
    assert settings.kafka_bootstrap == "broker:9092"
    assert settings.masked()["clickhouse_dsn"] == "https://app:**********@ch.example:8443/funnel"
    with pytest.raises(ValidationError):
        settings.events_topic = "other"  # type: ignore[misc]


def test_unknown_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_embedded_dsn_defaults_under_the_data_dir(tmp_path: object) -> None:
    settings = Settings(data_dir="/srv/funnel")  # type: ignore[arg-type]
    assert settings.resolved_clickhouse_dsn == "chdb:////srv/funnel/chdb"


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
    def __init__(self) -> None:
        self.calls: list[tuple[int, list[str], int]] = []
        self.dead: list[tuple[int, str]] = []
        self.forwarded: list[tuple[str, bool]] = []
        self.markers: list[tuple[int, int]] = []

    async def process(self, batch: Mapping[int, PartitionBatch]) -> dict[int, list[str]]:
        for partition, part in batch.items():
            self.calls.append(
                (partition, [a.event.event_id for a in part.accepted], part.last_offsets["events"])
            )
            self.forwarded += [(a.event.event_id, late) for a, late in part.forwarded]
            self.markers += part.markers
        return {
            p: ["accepted"] * (len(part.accepted) + len(part.forwarded))
            for p, part in batch.items()
        }

    def record_dead_letter(self, message: RawMessage, letter: object, rejection: Rejection) -> None:
        self.dead.append((message.offset, rejection.code))


class Deliveries:
    waited = 0

    async def delivered(self) -> None:
        self.waited += 1


def message(partition: int, offset: int, value: bytes) -> RawMessage:
    return RawMessage("events", partition, offset, NOW_MS, b"s", value)


def event_json(event_id: str) -> bytes:
    return orjson.dumps({"event_id": event_id, "event_type": "page_view", "occurred_at": NOW_MS,
                        "site_id": "shop", "session_id": "s"})  # fmt: skip


def test_ingestion_routes_every_partition_and_counts_outcomes() -> None:
    recorder = Recorder()
    registry = CollectorRegistry()
    published: list[int] = []
    deliveries = Deliveries()

    async def dead_letter(m: RawMessage, letter: DeadLetter, rejection: Rejection) -> None:
        published.append(m.offset)
        recorder.record_dead_letter(m, letter, rejection)

    ingestion = Ingestion(
        limits=DecodeLimits(), metrics=Metrics.create(registry), processor=recorder,
        dead_letter=dead_letter, repartition_topic="rp", publisher=deliveries,
        clock=lambda: NOW_MS,
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
    asyncio.run(ingestion.handle(batch))
    # Partition 1 had only rejections and is still handed over, with its last offset.
    assert recorder.calls == [(0, ["a", "b"], 11), (1, [], 6)]
    # Forwards keep their source's lateness verdict; markers are not events.
    assert recorder.forwarded == [("d", False), ("c", True)]
    assert recorder.markers == [(2, 1234)]
    assert recorder.dead == [(5, "not_json"), (6, "not_object")]
    assert published == [5, 6]
    assert deliveries.waited == 1
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


def test_rows_have_the_table_widths() -> None:
    dims = Dims(utm_source="google", device="mobile")
    event = Event("e", EventType.PURCHASE, NOW_MS, "shop", "s", value=Decimal("5"), currency="EUR",
                  order_id="o", items=(Item("a", 1, Decimal("5")),))  # fmt: skip
    accepted = Accepted(event, message(0, 1, event_json("e")))
    assert len(raw_event_row(accepted, late=False)) == len(COLUMNS["events_raw"])
    facts = [
        StageReached("shop", "s", None, dims, Stage.PURCHASE, NOW_MS, 1000),
        OrderPlaced("shop", "s", "u", dims, "o", NOW_MS, Decimal("5"), "EUR", 1, True),
        CartChanged("shop", "s", None, dims, 1, CartStatus.ABANDONED, NOW_MS, NOW_MS + 1, None,
                    Decimal("5"), "EUR", (Item("a", 1, Decimal("5")),), Stage.CHECKOUT),
    ]  # fmt: skip
    for fact in facts:
        table, row = fact_row(fact)
        assert len(row) == len(COLUMNS[table]), table
    letter = dead_letter(
        b"x",
        Rejection("not_json", "not JSON"),
        SourcePosition("events", 0, 1),
        rejected_at_ms=NOW_MS,
    )
    assert len(
        dead_letter_row(message(0, 1, b"x"), letter, Rejection("not_json", "not JSON"))
    ) == len(COLUMNS["dead_letters"])


def test_site_labels_are_bounded() -> None:
    labels = SiteLabels(limit=2)
    assert [labels(s) for s in ["a", "b", "c", "a", "d", "b"]] == [
        "a",
        "b",
        "other",
        "a",
        "other",
        "b",
    ]
