"""Sink rows land in the column they name: checked value by value, not by width.

Each row is read back the way ClickHouse receives it (`insert(column_names=COLUMNS[table])`
pairs positions with names) and compared with an independent reference: the raw event's own
JSON fields, and each fact's attributes looked up by the column's name. Every field carries a
distinct value, so two swapped columns (say `utm_medium` and `country`) fail.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from enum import IntEnum
from typing import Any

import orjson
import pytest

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Event, Item
from sinks.tables import COLUMNS, DIMENSIONS, RowShapeError, ordered_row
from streams.funnel.facts import (
    CartChanged,
    CartStatus,
    Dims,
    Fact,
    OrderPlaced,
    Stage,
    StageReached,
)
from streams.funnel.partition import Outcome
from streams.worker.dead_letters import SourcePosition, dead_letter
from streams.worker.ingest import Accepted, RawMessage
from streams.worker.sink_rows import dead_letter_row, fact_row, raw_event_row

NOW_MS = 1_764_000_000_000
DOCUMENT = {
    "event_id": "ev-1", "event_type": "purchase", "occurred_at": NOW_MS - 5_000,
    "site_id": "shop-9", "session_id": "sess-7", "user_id": "user-3", "utm_source": "src",
    "utm_medium": "med", "utm_campaign": "camp", "referrer": "https://ref.example/",
    "device": "tablet", "country": "DE", "variant": "B", "page": "/thanks", "value": "12.50",
    "currency": "EUR", "order_id": "ord-4", "cart_id": "cart-2",
    "items": [{"sku": "sku-1", "quantity": 2, "price": "6.25"}],
}  # fmt: skip
DIMS = Dims("src", "med", "camp", "mobile", "FR", "A")


def by_column(table: str, row: tuple[Any, ...]) -> dict[str, Any]:
    assert len(row) == len(COLUMNS[table])
    return dict(zip(COLUMNS[table], row, strict=True))


def test_raw_event_columns_equal_the_events_own_fields() -> None:
    raw = orjson.dumps(DOCUMENT)
    event = decode_event(raw, now_ms=NOW_MS, limits=DecodeLimits())
    assert isinstance(event, Event)
    message = RawMessage("events", 3, 41, NOW_MS - 1_000, b"sess-7", raw)
    row = by_column("events_raw", raw_event_row(Accepted(event, message), Outcome.LATE))

    named_like_the_contract = set(COLUMNS["events_raw"]) & DOCUMENT.keys()
    assert len(named_like_the_contract) == 18
    for column in named_like_the_contract - {"occurred_at", "value"}:
        assert row[column] == DOCUMENT[column], column
    assert row["occurred_at"] == DOCUMENT["occurred_at"]
    assert row["value"] == Decimal(DOCUMENT["value"])
    assert (row["received_at"], row["late"], row["late_copy"]) == (NOW_MS - 1_000, True, True)
    assert (row["future"], row["capped"]) == (False, False)
    capped = raw_event_row(Accepted(event, message), Outcome.CAPPED, future=True)
    flags = by_column("events_raw", capped)
    assert [flags[c] for c in ("late", "late_copy", "future", "capped")] == [
        False, False, True, True,
    ]  # fmt: skip
    assert (row["source_partition"], row["source_offset"]) == (3, 41)
    assert orjson.loads(row["raw"]) == DOCUMENT


def attribute(fact: Fact, column: str) -> Any:
    """The fact's value for a column, found by name: `x`, `x_ms`, or the first-touch dims."""
    for name in (column, f"{column}_ms"):
        if name in {f.name for f in fields(fact)}:
            value = getattr(fact, name)
            return int(value) if isinstance(value, IntEnum) else value
    assert column in DIMENSIONS, column
    return getattr(fact.dims, column)


FACTS: list[Fact] = [
    StageReached("shop-9", "sess-7", NOW_MS - 60_000, "user-3", DIMS, Stage.CHECKOUT, NOW_MS, 4_000),
    OrderPlaced("shop-9", "sess-7", NOW_MS - 60_000, "user-3", DIMS, "ord-4", NOW_MS, Decimal("12.50"), "EUR", 3,
                True),
    CartChanged("shop-9", "sess-7", NOW_MS - 60_000, "user-3", DIMS, 2, CartStatus.ABANDONED, NOW_MS - 9,
                NOW_MS, NOW_MS + 9, Decimal("12.50"), "EUR", (Item("sku-1", 2, Decimal("6.25")),),
                Stage.CHECKOUT),
]  # fmt: skip


@pytest.mark.parametrize("fact", FACTS, ids=lambda f: type(f).__name__)
def test_fact_columns_equal_the_facts_attributes_by_name(fact: Fact) -> None:
    table, values = fact_row(fact)
    row = by_column(table, values)
    special = {"version", "status", "items"}  # carts: derived from the status and items
    for column in set(row) - special:
        assert row[column] == attribute(fact, column), (table, column)
    if isinstance(fact, CartChanged):
        assert row["version"] == int(fact.status)
        assert row["status"] == "abandoned"
        assert orjson.loads(row["items"]) == [{"sku": "sku-1", "quantity": 2, "price": "6.25"}]


def test_dead_letter_columns() -> None:
    rejection = Rejection("not_json", "payload is not JSON")
    letter = dead_letter(
        b"{oops", rejection, SourcePosition("events", 5, 77), rejected_at_ms=NOW_MS
    )
    message = RawMessage("events", 5, 77, NOW_MS, b"key-1", b"{oops")
    assert by_column("dead_letters", dead_letter_row(message, letter, rejection)) == {
        "source_topic": "events", "source_partition": 5, "source_offset": 77,
        "rejected_at": NOW_MS, "reason_code": "not_json", "reason": "payload is not JSON",
        "message_key": "key-1", "payload": b"{oops",
    }  # fmt: skip


def test_a_row_must_name_every_column_and_no_other() -> None:
    values = dict.fromkeys(COLUMNS["dead_letters"], "x")
    assert ordered_row("dead_letters", values) == ("x",) * len(values)
    with pytest.raises(RowShapeError, match=r"missing columns \['reason'\]"):
        ordered_row("dead_letters", {k: v for k, v in values.items() if k != "reason"})
    renamed = {("reason_text" if k == "reason" else k): v for k, v in values.items()}
    with pytest.raises(RowShapeError, match=r"unknown columns \['reason_text'\]"):
        ordered_row("dead_letters", renamed)
    with pytest.raises(RowShapeError, match="unknown columns"):
        ordered_row("dead_letters", {**values, "extra": 1})
