"""Generate the JSON Schema for producers in other languages from `schemas.contract`.

`python -m schemas.jsonschema` rewrites `schemas/event.schema.json`; a test fails when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from schemas.contract import (
    CONTRACT_VERSION,
    DEVICES,
    EVENT_TYPE_ALIASES,
    FIELDS,
    MAX_ITEMS,
    MAX_MONEY,
    MAX_QUANTITY,
    FieldSpec,
    Kind,
)

SCHEMA_PATH = Path(__file__).with_name("event.schema.json")

_MONEY: dict[str, Any] = {
    "oneOf": [
        {"type": "number", "minimum": 0, "exclusiveMaximum": MAX_MONEY},
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
    ]
}


def _property(spec: FieldSpec) -> dict[str, Any]:
    body: dict[str, Any]
    match spec.kind:
        case Kind.ID | Kind.TEXT:
            body = {"type": "string", "minLength": 1, "maxLength": spec.max_length}
        case Kind.EVENT_TYPE:
            body = {"type": "string", "enum": sorted(EVENT_TYPE_ALIASES)}
        case Kind.TIMESTAMP:
            body = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "integer"}]}
        case Kind.DEVICE:
            body = {"type": "string", "enum": list(DEVICES)}
        case Kind.COUNTRY:
            body = {"type": "string", "pattern": "^[A-Za-z]{2}$"}
        case Kind.CURRENCY:
            body = {"type": "string", "pattern": "^[A-Za-z]{3}$"}
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
                        "sku": {"type": "string", "minLength": 1, "maxLength": 128},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
                        "price": _MONEY,
                    },
                },
            }
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
            {"if": {"required": ["value"]}, "then": {"required": ["currency"]}},
            {
                "if": {
                    "properties": {
                        "event_type": {"enum": ["purchase", "Order Completed"]},
                    },
                    "required": ["event_type"],
                },
                "then": {"required": ["order_id"]},
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
