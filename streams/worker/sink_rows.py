"""Turn accepted events and funnel facts into ClickHouse rows, built by column name.

A batch's rows are built column by column (`raw_event_columns`, `fact_columns`): one list per
column costs far less than a dict and a tuple per row, and the sink inserts the columns as they
are, with no transpose. `sinks.tables` checks every column is named for its table, so a value can
only land in the column it is named for. The one-row forms (`raw_event_row`, `fact_row`) are the
same builders applied to one item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any, assert_never

import orjson

from schemas.decode import Rejection
from sinks.tables import DIMENSIONS, ordered_row
from streams.funnel.facts import CartChanged, Fact, OrderPlaced, StageReached
from streams.funnel.partition import Outcome
from streams.worker.dead_letters import DeadLetter
from streams.worker.ingest import Accepted, RawMessage

Row = tuple[Any, ...]
Columns = dict[str, list[Any]]


def raw_event_columns(
    items: Sequence[Accepted], outcomes: Sequence[Outcome], futures: Sequence[bool]
) -> Columns:
    """Raw event rows, paired by position with their outcomes and ``futures`` (each event's
    clock ran ahead of what the worker observed)."""
    events = [item.event for item in items]
    messages = [item.message for item in items]
    late = [outcome is Outcome.LATE for outcome in outcomes]
    return {
        "site_id": [e.site_id for e in events],
        "session_id": [e.session_id for e in events],
        "event_id": [e.event_id for e in events],
        # A StrEnum's str() is its value as a plain str, at a third of the cost of `.value`.
        "event_type": [str(e.event_type) for e in events],
        "occurred_at": [e.occurred_at_ms for e in events],
        "received_at": [m.timestamp_ms for m in messages],
        "late": late,
        "future": list(futures),
        "capped": [outcome is Outcome.CAPPED for outcome in outcomes],
        # In the key, so a late copy never replaces the counted row in a merge.
        "late_copy": late,
        "user_id": [e.user_id or "" for e in events],
        "utm_source": [e.utm_source or "" for e in events],
        "utm_medium": [e.utm_medium or "" for e in events],
        "utm_campaign": [e.utm_campaign or "" for e in events],
        "referrer": [e.referrer or "" for e in events],
        "device": [str(e.device) if e.device else "" for e in events],
        "country": [e.country or "" for e in events],
        "variant": [e.variant or "" for e in events],
        "page": [e.page or "" for e in events],
        "value": [e.value for e in events],
        "currency": [e.currency or "" for e in events],
        "order_id": [e.order_id or "" for e in events],
        "cart_id": [e.cart_id or "" for e in events],
        "source_partition": [m.partition for m in messages],
        "source_offset": [m.offset for m in messages],
        # The decoder proved the bytes are UTF-8 JSON, so they go in as they came (a String is
        # bytes: no decoding here, no encoding in the insert); unknown fields survive here.
        "raw": [m.value for m in messages],
    }


def raw_event_row(accepted: Accepted, outcome: Outcome, *, future: bool = False) -> Row:
    """A raw event row; ``future``: its clock ran ahead of what the worker observed."""
    return _only_row("events_raw", raw_event_columns([accepted], [outcome], [future]))


def dead_letter_row(message: RawMessage, letter: DeadLetter, rejection: Rejection) -> Row:
    return ordered_row(
        "dead_letters",
        {
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "rejected_at": letter.rejected_at_ms,
            "reason_code": rejection.code,
            "reason": rejection.detail,
            "message_key": (message.key or b"").decode(errors="replace"),
            "payload": letter.payload,
        },
    )


def fact_columns(facts: Iterable[Fact]) -> dict[str, Columns]:
    """The rows the facts become, by table (only tables with rows), in the facts' order."""
    stages: list[StageReached] = []
    orders: list[OrderPlaced] = []
    carts: list[CartChanged] = []
    for fact in facts:
        match fact:
            case StageReached():
                stages.append(fact)
            case OrderPlaced():
                orders.append(fact)
            case CartChanged():
                carts.append(fact)
            case _:  # a new kind of fact must get its table here, not vanish
                assert_never(fact)
    tables: dict[str, Columns] = {}
    if stages:
        tables["stage_entries"] = _stage_columns(stages)
    if orders:
        tables["orders"] = _order_columns(orders)
    if carts:
        tables["carts"] = _cart_columns(carts)
    return tables


def fact_row(fact: Fact) -> tuple[str, Row]:
    """The table and row one fact becomes."""
    ((table, columns),) = fact_columns([fact]).items()
    return table, _only_row(table, columns)


def _only_row(table: str, columns: Columns) -> Row:
    return ordered_row(table, {name: values[0] for name, values in columns.items()})


def _session_columns(facts: Sequence[Fact]) -> Columns:
    """The session's columns every fact table has: its identity, user and first-touch dims."""
    dims = [f.dims for f in facts]
    return {
        "site_id": [f.site_id for f in facts],
        "session_id": [f.session_id for f in facts],
        "session_start": [f.session_start_ms for f in facts],
        "user_id": [f.user_id or "" for f in facts],
        **{name: [value or "" for value in map(attrgetter(name), dims)] for name in DIMENSIONS},
    }


def _stage_columns(facts: Sequence[StageReached]) -> Columns:
    return {
        **_session_columns(facts),
        "stage": [int(f.stage) for f in facts],
        "reached_at": [f.reached_at_ms for f in facts],
        "time_to_convert_ms": [f.time_to_convert_ms for f in facts],
    }


def _order_columns(facts: Sequence[OrderPlaced]) -> Columns:
    return {
        **_session_columns(facts),
        "order_id": [f.order_id for f in facts],
        "occurred_at": [f.occurred_at_ms for f in facts],
        "value": [f.value for f in facts],
        "currency": [f.currency or "" for f in facts],
        "item_count": [f.item_count for f in facts],
        "reached_checkout": [f.reached_checkout for f in facts],
    }


def _cart_columns(facts: Sequence[CartChanged]) -> Columns:
    return {
        **_session_columns(facts),
        "cart_seq": [f.cart_seq for f in facts],
        "version": [int(f.status) for f in facts],
        "status": [f.status.name.lower() for f in facts],
        "opened_at": [f.opened_at_ms for f in facts],
        "closed_at": [f.closed_at_ms for f in facts],
        "recovered_at": [f.recovered_at_ms for f in facts],
        "value": [f.value for f in facts],
        "currency": [f.currency or "" for f in facts],
        "items": [orjson.dumps([item.as_json() for item in f.items]).decode() for f in facts],
        "last_stage": [int(f.last_stage) for f in facts],
    }
