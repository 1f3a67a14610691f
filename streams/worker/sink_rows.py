"""Turn accepted events and funnel facts into ClickHouse rows, built by column name.

`sinks.tables.ordered_row` puts each row in its table's column order, so a value can only land
in the column it is named for.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.decode import Rejection
from sinks.tables import DIMENSIONS, ordered_row
from streams.funnel.facts import CartChanged, Dims, Fact, OrderPlaced, StageReached
from streams.funnel.partition import Outcome
from streams.worker.dead_letters import DeadLetter
from streams.worker.ingest import Accepted, RawMessage

Row = tuple[Any, ...]


def _dims(dims: Dims) -> dict[str, str]:
    return {name: getattr(dims, name) or "" for name in DIMENSIONS}


def raw_event_row(accepted: Accepted, outcome: Outcome, *, future: bool = False) -> Row:
    """A raw event row; ``future``: its clock ran ahead of what the worker observed."""
    event, message = accepted.event, accepted.message
    return ordered_row(
        "events_raw",
        {
            "site_id": event.site_id,
            "session_id": event.session_id,
            "event_id": event.event_id,
            "event_type": event.event_type.value,
            "occurred_at": event.occurred_at_ms,
            "received_at": message.timestamp_ms,
            "late": outcome is Outcome.LATE,
            "future": future,
            "capped": outcome is Outcome.CAPPED,
            # In the key, so a late copy never replaces the counted row in a merge.
            "late_copy": outcome is Outcome.LATE,
            "user_id": event.user_id or "",
            "utm_source": event.utm_source or "",
            "utm_medium": event.utm_medium or "",
            "utm_campaign": event.utm_campaign or "",
            "referrer": event.referrer or "",
            "device": event.device.value if event.device else "",
            "country": event.country or "",
            "variant": event.variant or "",
            "page": event.page or "",
            "value": event.value,
            "currency": event.currency or "",
            "order_id": event.order_id or "",
            "cart_id": event.cart_id or "",
            "source_partition": message.partition,
            "source_offset": message.offset,
            # The decoder proved the bytes are UTF-8 JSON; unknown fields survive here.
            "raw": message.value.decode(),
        },
    )


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


def fact_row(fact: Fact) -> tuple[str, Row]:
    """The table and row one fact becomes."""
    match fact:
        case StageReached():
            return "stage_entries", ordered_row(
                "stage_entries",
                {
                    "site_id": fact.site_id,
                    "stage": int(fact.stage),
                    "reached_at": fact.reached_at_ms,
                    "session_id": fact.session_id,
                    "session_start": fact.session_start_ms,
                    "user_id": fact.user_id or "",
                    **_dims(fact.dims),
                    "time_to_convert_ms": fact.time_to_convert_ms,
                },
            )
        case OrderPlaced():
            return "orders", ordered_row(
                "orders",
                {
                    "site_id": fact.site_id,
                    "order_id": fact.order_id,
                    "occurred_at": fact.occurred_at_ms,
                    "session_id": fact.session_id,
                    "session_start": fact.session_start_ms,
                    "user_id": fact.user_id or "",
                    "value": fact.value,
                    "currency": fact.currency or "",
                    "item_count": fact.item_count,
                    "reached_checkout": fact.reached_checkout,
                    **_dims(fact.dims),
                },
            )
        case CartChanged():
            return "carts", ordered_row(
                "carts",
                {
                    "site_id": fact.site_id,
                    "session_id": fact.session_id,
                    "session_start": fact.session_start_ms,
                    "cart_seq": fact.cart_seq,
                    "version": int(fact.status),
                    "status": fact.status.name.lower(),
                    "opened_at": fact.opened_at_ms,
                    "closed_at": fact.closed_at_ms,
                    "recovered_at": fact.recovered_at_ms,
                    "value": fact.value,
                    "currency": fact.currency or "",
                    "items": orjson.dumps([item.as_json() for item in fact.items]).decode(),
                    "last_stage": int(fact.last_stage),
                    "user_id": fact.user_id or "",
                    **_dims(fact.dims),
                },
            )
