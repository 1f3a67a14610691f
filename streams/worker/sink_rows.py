"""Turn accepted events and funnel facts into ClickHouse rows (column order: `sinks.tables`)."""

from __future__ import annotations

from typing import Any

import orjson

from schemas.decode import Rejection
from streams.funnel.facts import CartChanged, Dims, Fact, OrderPlaced, StageReached
from streams.funnel.partition import Outcome
from streams.worker.dead_letters import DeadLetter
from streams.worker.ingest import Accepted, RawMessage

Row = tuple[Any, ...]


def _dims(dims: Dims) -> tuple[str, ...]:
    return (
        dims.utm_source or "",
        dims.utm_medium or "",
        dims.utm_campaign or "",
        dims.device or "",
        dims.country or "",
        dims.variant or "",
    )


def raw_event_row(accepted: Accepted, outcome: Outcome, *, future: bool = False) -> Row:
    """A raw event row; ``future``: its clock ran ahead of what the worker observed."""
    event, message = accepted.event, accepted.message
    return (
        event.site_id,
        event.session_id,
        event.event_id,
        event.event_type.value,
        event.occurred_at_ms,
        message.timestamp_ms,
        outcome is Outcome.LATE,
        future,
        outcome is Outcome.CAPPED,
        outcome is Outcome.LATE,  # late_copy: in the key, so a late copy never replaces a row
        event.user_id or "",
        event.utm_source or "",
        event.utm_medium or "",
        event.utm_campaign or "",
        event.referrer or "",
        event.device.value if event.device else "",
        event.country or "",
        event.variant or "",
        event.page or "",
        event.value,
        event.currency or "",
        event.order_id or "",
        event.cart_id or "",
        message.partition,
        message.offset,
        # The decoder proved the bytes are UTF-8 JSON; unknown fields survive here.
        message.value.decode(),
    )


def dead_letter_row(message: RawMessage, letter: DeadLetter, rejection: Rejection) -> Row:
    return (
        message.topic,
        message.partition,
        message.offset,
        letter.rejected_at_ms,
        rejection.code,
        rejection.detail,
        (message.key or b"").decode(errors="replace"),
        letter.payload,
    )


def fact_row(fact: Fact) -> tuple[str, Row]:
    """The table and row one fact becomes."""
    match fact:
        case StageReached():
            return "stage_entries", (
                fact.site_id,
                int(fact.stage),
                fact.reached_at_ms,
                fact.session_id,
                fact.session_start_ms,
                fact.user_id or "",
                *_dims(fact.dims),
                fact.time_to_convert_ms,
            )
        case OrderPlaced():
            return "orders", (
                fact.site_id,
                fact.order_id,
                fact.occurred_at_ms,
                fact.session_id,
                fact.session_start_ms,
                fact.user_id or "",
                fact.value,
                fact.currency or "",
                fact.item_count,
                fact.reached_checkout,
                *_dims(fact.dims),
            )
        case CartChanged():
            return "carts", (
                fact.site_id,
                fact.session_id,
                fact.session_start_ms,
                fact.cart_seq,
                int(fact.status),
                fact.status.name.lower(),
                fact.opened_at_ms,
                fact.closed_at_ms,
                fact.recovered_at_ms,
                fact.value,
                fact.currency or "",
                orjson.dumps(
                    [
                        {"sku": i.sku, "quantity": i.quantity, "price": str(i.price)}
                        for i in fact.items
                    ]
                ).decode(),
                int(fact.last_stage),
                fact.user_id or "",
                *_dims(fact.dims),
            )
