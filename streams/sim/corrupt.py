"""Malformed messages for the simulator: every kind of bad input the decoder must dead-letter.

Each kind starts from a valid event so the bad message looks like what a buggy storefront
would really send, and breaks exactly one rule of contract v1.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import orjson

# Just over the 1 MiB payload limit; the filler is the only large part of the message.
OVERSIZE_BYTES = 1024 * 1024 + 1

_REQUIRED = ("event_id", "event_type", "occurred_at", "site_id", "session_id")
# 2999-01-01 and the epoch itself: both far outside any plausible clock skew.
_ABSURD_TIMES: tuple[str | int, ...] = ("2999-01-01T00:00:00.000Z", 0, "1970-01-01T00:00:00Z")

Corruption = Callable[[random.Random, dict[str, Any]], bytes]


def _dump(event: object) -> bytes:
    return orjson.dumps(event)


def _malformed_json(rng: random.Random, event: dict[str, Any]) -> bytes:
    encoded = _dump(event)
    return encoded[: rng.randrange(1, len(encoded) - 1)]


def _not_utf8(rng: random.Random, event: dict[str, Any]) -> bytes:
    return _dump(event).replace(b'"session_id"', b'"session_\xff\xfeid"')


def _not_an_object(rng: random.Random, event: dict[str, Any]) -> bytes:
    return rng.choice([_dump([event]), b'"page_view"', b"null", b"42"])


def _wrong_type(rng: random.Random, event: dict[str, Any]) -> bytes:
    field, bad = rng.choice(
        [
            ("session_id", 12345),
            ("event_id", ["not", "a", "string"]),
            ("event_type", 1),
            ("occurred_at", True),
            ("site_id", {"id": 1}),
            ("items", "sku-1 x2"),
        ]
    )
    event[field] = bad
    return _dump(event)


def _missing_field(rng: random.Random, event: dict[str, Any]) -> bytes:
    del event[rng.choice(_REQUIRED)]
    return _dump(event)


def _unknown_event_type(rng: random.Random, event: dict[str, Any]) -> bytes:
    event["event_type"] = rng.choice(["wishlist_add", "", "purchased"])
    return _dump(event)


def _oversize(rng: random.Random, event: dict[str, Any]) -> bytes:
    event["page"] = "/p/" + "x" * OVERSIZE_BYTES
    return _dump(event)


def _absurd_timestamp(rng: random.Random, event: dict[str, Any]) -> bytes:
    event["occurred_at"] = rng.choice(_ABSURD_TIMES)
    return _dump(event)


def _commerce(event: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("items", [{"sku": "SKU-0001", "quantity": 1, "price": "9.99"}])
    event.setdefault("value", "9.99")
    event.setdefault("currency", "EUR")
    return event


def _negative_value(rng: random.Random, event: dict[str, Any]) -> bytes:
    _commerce(event)
    event["value"] = "-" + str(event["value"])
    return _dump(event)


def _value_without_currency(rng: random.Random, event: dict[str, Any]) -> bytes:
    del _commerce(event)["currency"]
    return _dump(event)


def _purchase_without_order_id(rng: random.Random, event: dict[str, Any]) -> bytes:
    _commerce(event)["event_type"] = "purchase"
    event.pop("order_id", None)
    return _dump(event)


def _bad_item(rng: random.Random, event: dict[str, Any]) -> bytes:
    field, bad = rng.choice([("quantity", 0), ("quantity", 1.5), ("price", "-1.00")])
    _commerce(event)
    event["items"] = [{**event["items"][0], field: bad}]
    return _dump(event)


def _bad_device(rng: random.Random, event: dict[str, Any]) -> bytes:
    event["device"] = rng.choice(["smart-fridge", "phone", ""])
    return _dump(event)


def _bad_country(rng: random.Random, event: dict[str, Any]) -> bytes:
    event["country"] = rng.choice(["Germany", "DEU", "1A", "D"])
    return _dump(event)


def _bad_event_id(rng: random.Random, event: dict[str, Any]) -> bytes:
    event["event_id"] = rng.choice(["", "e" * 129])
    return _dump(event)


CORRUPTIONS: Mapping[str, Corruption] = {
    "malformed_json": _malformed_json,
    "not_utf8": _not_utf8,
    "not_an_object": _not_an_object,
    "wrong_type": _wrong_type,
    "missing_field": _missing_field,
    "unknown_event_type": _unknown_event_type,
    "oversize": _oversize,
    "absurd_timestamp": _absurd_timestamp,
    "negative_value": _negative_value,
    "value_without_currency": _value_without_currency,
    "purchase_without_order_id": _purchase_without_order_id,
    "bad_item": _bad_item,
    "bad_device": _bad_device,
    "bad_country": _bad_country,
    "bad_event_id": _bad_event_id,
}
CORRUPTION_KINDS = tuple(CORRUPTIONS)


def corrupt(rng: random.Random, event: Mapping[str, Any], kind: str | None = None) -> bytes:
    """Bytes breaking one contract rule of `event` (which is not modified).

    `kind` picks the defect (see CORRUPTION_KINDS); None picks one at random.
    """
    chosen = rng.choice(CORRUPTION_KINDS) if kind is None else kind
    if chosen not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {chosen!r}; use one of {', '.join(CORRUPTION_KINDS)}")
    # Deep copy through JSON: corruptions mutate nested items and the caller keeps `event`.
    return CORRUPTIONS[chosen](rng, orjson.loads(_dump(event)))
