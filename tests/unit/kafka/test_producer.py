"""The pure parts of the producer: event building, line keys, partitioning, send_lines."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from schemas.event import Device, EventType, Item
from streams.kafka.producer import (
    build_event,
    format_occurred_at,
    key_hash,
    line_key,
    send_lines,
)

WHEN = datetime(2026, 11, 20, 10, 15, 2, 123_456, tzinfo=UTC)


def test_build_event_minimal_has_required_fields_only() -> None:
    event = build_event(
        event_type=EventType.PAGE_VIEW, site_id="shop-1", session_id="s-1", occurred_at=WHEN
    )
    assert set(event) == {"event_id", "event_type", "occurred_at", "site_id", "session_id"}
    assert event["event_type"] == "page_view"
    assert event["occurred_at"] == "2026-11-20T10:15:02.123Z"
    assert uuid.UUID(event["event_id"]).version == 4


def test_build_event_generates_a_fresh_id_each_time() -> None:
    ids = {
        build_event(event_type="page_view", site_id="a", session_id="b", occurred_at=WHEN)[
            "event_id"
        ]
        for _ in range(100)
    }
    assert len(ids) == 100


def test_build_event_commerce_fields_are_json_ready() -> None:
    event = build_event(
        event_type=EventType.PURCHASE,
        site_id="shop-1",
        session_id="s-1",
        occurred_at=1_795_000_000_000,
        event_id="e-1",
        device=Device.MOBILE,
        country="DE",
        items=[Item("SKU-1", 2, Decimal("19.99")), Item("SKU-2", 1, Decimal("5.00"))],
        value=Decimal("44.98"),
        currency="EUR",
        order_id="o-1",
        cart_id="c-1",
    )
    assert event["event_id"] == "e-1"
    assert event["occurred_at"] == 1_795_000_000_000
    assert event["device"] == "mobile"
    assert event["value"] == "44.98"
    assert event["items"] == [
        {"sku": "SKU-1", "quantity": 2, "price": "19.99"},
        {"sku": "SKU-2", "quantity": 1, "price": "5.00"},
    ]
    # Serialisable as is: no Decimal, datetime or enum left inside.
    assert orjson.loads(orjson.dumps(event)) == event


def test_format_occurred_at_converts_offsets_to_utc() -> None:
    local = datetime(2026, 11, 20, 11, 15, 2, 5_000, tzinfo=timezone(timedelta(hours=1)))
    assert format_occurred_at(local) == "2026-11-20T10:15:02.005Z"


def test_format_occurred_at_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_occurred_at(datetime(2026, 11, 20, 10, 0))  # noqa: DTZ001 - the point of the test


@pytest.mark.parametrize(
    ("line", "key"),
    [
        (b'{"session_id": "s-1", "event_type": "page_view"}', b"s-1"),
        (b'{"session_id": 42}', None),
        (b"[1, 2]", None),
        (b'{"session_id": "s-1"', None),
        (b"\xff\xfe", None),
        (b"", None),
    ],
)
def test_line_key(line: bytes, key: bytes | None) -> None:
    assert line_key(line) == key


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=1, max_value=64))
def test_key_hash_partitions_like_the_default_partitioner(key: bytes, partitions: int) -> None:
    # Sessions must land where Faust and Java producers would put them.
    all_partitions = list(range(partitions))
    expected = DefaultPartitioner()(key, all_partitions, all_partitions)
    assert key_hash(key) % partitions == expected


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def send_raw_many(self, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
        batch = list(messages)
        self.sent.extend(batch)
        return len(batch)


def test_send_lines_forwards_every_non_blank_line_as_is() -> None:
    lines = [
        b'{"session_id": "s-1", "event_type": "page_view"}\n',
        b"not json at all\r\n",
        b"\n",
        b"   \n",
        b'{"session_id": "s-2"}',
    ]
    sender = FakeSender()
    assert asyncio.run(send_lines(sender, lines)) == 3
    assert sender.sent == [
        (b"s-1", b'{"session_id": "s-1", "event_type": "page_view"}'),
        (None, b"not json at all"),
        (b"s-2", b'{"session_id": "s-2"}'),
    ]
