"""The shipped JSON Schema is generated from the contract, is current, and agrees with the decoder."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from schemas.decode import decode_event
from schemas.event import Event
from schemas.jsonschema import SCHEMA_PATH, build_schema, render
from tests.unit.schemas.documents import LIMITS, NOW_MS, base


def test_schema_file_is_current() -> None:
    assert SCHEMA_PATH.read_bytes() == render(), "run: python -m schemas.jsonschema"


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(build_schema())


VALIDATOR = jsonschema.Draft202012Validator(build_schema())


@pytest.mark.parametrize(
    "doc",
    [
        base(),
        base(event_type="Order Completed", order_id="o", value="10.50", currency="EUR"),
        base(items=[{"sku": "a", "quantity": 2, "price": 3.5}], device="tablet", country="fr"),
        base(occurred_at=NOW_MS, unknown_extra={"x": 1}),
    ],
)
def test_events_the_decoder_accepts_validate(doc: dict[str, Any]) -> None:
    assert isinstance(decode_event(orjson.dumps(doc), now_ms=NOW_MS, limits=LIMITS), Event)
    VALIDATOR.validate(doc)


@pytest.mark.parametrize(
    "doc",
    [
        base(session_id=...),
        base(event_type="refund"),
        base(value="3"),
        base(event_type="purchase"),
        base(device="phone"),
        base(items=[{"sku": "a", "quantity": 0, "price": 1}]),
        base(occurred_at=1.5),
    ],
)
def test_events_the_decoder_rejects_fail_the_schema(doc: dict[str, Any]) -> None:
    assert not isinstance(decode_event(orjson.dumps(doc), now_ms=NOW_MS, limits=LIMITS), Event)
    assert not VALIDATOR.is_valid(doc)
