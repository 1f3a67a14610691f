"""Contract-v1 documents for the schema tests: a valid base event and decoding shortcuts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Event

NOW_MS = int(datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp() * 1000)
LIMITS = DecodeLimits()


def base(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "e-1",
        "event_type": "page_view",
        "occurred_at": "2026-11-24T11:59:00.250Z",
        "site_id": "shop-1",
        "session_id": "sess-1",
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def decode(doc: Any) -> Event | Rejection:
    return decode_event(orjson.dumps(doc), now_ms=NOW_MS, limits=LIMITS)


def accepted(doc: Any) -> Event:
    result = decode(doc)
    assert isinstance(result, Event), result
    return result
