"""Generate the JSON Schema for producers in other languages from `schemas.contract`.

`python -m schemas.jsonschema` rewrites `schemas/event.schema.json`; a test fails when it is stale.
It states the decoder's rules exactly (a test runs both over one corpus of edge cases), except
the two that depend on the receiver: the event-time window around its clock and the payload size.
A null optional field is as if absent, as in the decoder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from schemas.contract import (
    CONTRACT_VERSION,
    COUNTRY_PATTERN,
    CURRENCY_PATTERN,
    DEVICES,
    EVENT_TYPE_ALIASES,
    FIELDS,
    MAX_ITEMS,
    MAX_MONEY,
    MAX_QUANTITY,
    MONEY_PATTERN,
    PLAIN_TEXT_PATTERN,
    TIMESTAMP_PATTERN,
    FieldSpec,
    Kind,
)
from schemas.event import EventType

SCHEMA_PATH = Path(__file__).with_name("event.schema.json")

_MONEY: dict[str, Any] = {
    "oneOf": [
        # Rounded to 6 places on decode (binary floats: 3.3000000000000003 is 3.3).
        {"type": "number", "minimum": 0, "exclusiveMaximum": MAX_MONEY},
        # Exact: digits, at most 6 places.
        {"type": "string", "pattern": MONEY_PATTERN},
    ]
}
_PURCHASE_TYPES = sorted(n for n, t in EVENT_TYPE_ALIASES.items() if t is EventType.PURCHASE)


def _present(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _property(spec: FieldSpec) -> dict[str, Any]:
    body: dict[str, Any]
    match spec.kind:
        case Kind.ID:
            body = {
                "type": "string",
                "minLength": 1,
                "maxLength": spec.max_length,
                "pattern": PLAIN_TEXT_PATTERN,
            }
        case Kind.TEXT:
            body = {"type": "string", "minLength": 1, "maxLength": spec.max_length}
        case Kind.EVENT_TYPE:
            body = {"type": "string", "enum": sorted(EVENT_TYPE_ALIASES)}
        case Kind.TIMESTAMP:
            body = {
                "oneOf": [
                    {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN},
                    {"type": "integer"},
                ]
            }
        case Kind.DEVICE:
            body = {"type": "string", "enum": list(DEVICES)}
        case Kind.COUNTRY:
            body = {"type": "string", "pattern": COUNTRY_PATTERN}
        case Kind.CURRENCY:
            body = {"type": "string", "pattern": CURRENCY_PATTERN}
        case Kind.DECIMAL:
            body = dict(_MONEY)
        case Kind.ITEMS:
            body = {
                "type": "array",
                "maxItems": MAX_ITEMS,
                "items": {
                    "type": "object",
                    "required": ["sku", "quantity", "price"],
                    "properties": {
                        "sku": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 128,
                            "pattern": PLAIN_TEXT_PATTERN,
                        },
                        "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
                        "price": _MONEY,
                    },
                },
            }
    if not spec.required:
        body = {"anyOf": [body, {"type": "null"}]}
    return {"description": spec.description, **body}


def build_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://funnelstream.dev/schemas/event-v{CONTRACT_VERSION}.json",
        "title": f"Funnelstream storefront event, contract v{CONTRACT_VERSION}",
        "type": "object",
        "required": [spec.name for spec in FIELDS if spec.required],
        "properties": {spec.name: _property(spec) for spec in FIELDS},
        # Unknown fields are kept in the raw record, never rejected.
        "additionalProperties": True,
        "allOf": [
            {"if": _present("value"), "then": _present("currency")},
            {
                "if": {
                    "properties": {"event_type": {"enum": _PURCHASE_TYPES}},
                    "required": ["event_type"],
                },
                "then": {
                    "allOf": [
                        _present("order_id"),
                        {"if": _present("items"), "then": _present("currency")},
                    ]
                },
            },
        ],
    }


def render() -> bytes:
    return orjson.dumps(build_schema(), option=orjson.OPT_INDENT_2) + b"\n"


def main() -> None:
    SCHEMA_PATH.write_bytes(render())
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")


if __name__ == "__main__":
    main()
