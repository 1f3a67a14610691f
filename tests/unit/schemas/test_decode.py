"""Contract v1: every field rule, every alias, every rejection reason; the decoder never raises."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Device, Event, EventType, Item
from tests.unit.schemas.documents import LIMITS, NOW_MS, accepted, base, decode


def rejected(doc: Any) -> Rejection:
    result = decode(doc)
    assert isinstance(result, Rejection), result
    return result


def test_minimal_event_is_normalised() -> None:
    event = accepted(base())
    assert event == Event(
        event_id="e-1",
        event_type=EventType.PAGE_VIEW,
        occurred_at_ms=NOW_MS - 59_750,
        site_id="shop-1",
        session_id="sess-1",
    )


def test_full_purchase_keeps_every_field() -> None:
    event = accepted(
        base(
            event_type="purchase",
            user_id="u-9",
            utm_source="google",
            utm_medium="cpc",
            utm_campaign="bf",
            referrer="https://google.com/",
            device="mobile",
            country="de",
            variant="B",
            page="/checkout/done",
            items=[
                {"sku": "A-1", "quantity": 2, "price": "9.95"},
                {"sku": "B", "quantity": 1, "price": 5},
            ],
            value="24.90",
            currency="eur",
            order_id="o-1",
            cart_id="c-1",
            extra_field={"kept": "in raw"},
        )
    )
    assert event.event_type is EventType.PURCHASE
    assert event.device is Device.MOBILE
    assert event.country == "DE"
    assert event.currency == "EUR"
    assert event.value == Decimal("24.90")
    assert event.items == (Item("A-1", 2, Decimal("9.95")), Item("B", 1, Decimal("5")))
    assert (event.user_id, event.utm_source, event.utm_medium, event.utm_campaign) == (
        "u-9",
        "google",
        "cpc",
        "bf",
    )
    assert (event.referrer, event.variant, event.page, event.order_id, event.cart_id) == (
        "https://google.com/",
        "B",
        "/checkout/done",
        "o-1",
        "c-1",
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("page_view", EventType.PAGE_VIEW),
        ("add_to_cart", EventType.ADD_TO_CART),
        ("remove_from_cart", EventType.REMOVE_FROM_CART),
        ("checkout", EventType.CHECKOUT),
        ("begin_checkout", EventType.CHECKOUT),
        ("Page Viewed", EventType.PAGE_VIEW),
        ("Product Added", EventType.ADD_TO_CART),
        ("Product Removed", EventType.REMOVE_FROM_CART),
        ("Checkout Started", EventType.CHECKOUT),
    ],
)
def test_event_type_aliases(name: str, expected: EventType) -> None:
    assert accepted(base(event_type=name)).event_type is expected


@pytest.mark.parametrize("name", ["purchase", "Order Completed"])
def test_purchase_aliases(name: str) -> None:
    event = accepted(base(event_type=name, order_id="o-1"))
    assert event.event_type is EventType.PURCHASE


def test_epoch_milliseconds_and_offsets_are_utc() -> None:
    assert accepted(base(occurred_at=NOW_MS - 5)).occurred_at_ms == NOW_MS - 5
    with_offset = accepted(base(occurred_at="2026-11-24T13:00:00+02:00"))
    assert with_offset.occurred_at_ms == NOW_MS - 3_600_000


def test_value_as_number_stays_exact() -> None:
    assert accepted(base(value=19.99, currency="USD")).value == Decimal("19.99")


@pytest.mark.parametrize(
    ("doc", "code", "detail"),
    [
        (base(session_id=...), "missing_field", "missing field session_id"),
        (base(event_id=...), "missing_field", "missing field event_id"),
        (base(site_id=None), "missing_field", "missing field site_id"),
        (base(occurred_at=...), "missing_field", "missing field occurred_at"),
        (base(event_type=...), "missing_field", "missing field event_type"),
        (base(event_id=7), "wrong_type", "event_id must be a string, got number"),
        (base(session_id=["x"]), "wrong_type", "session_id must be a string, got array"),
        (base(user_id=True), "wrong_type", "user_id must be a string, got boolean"),
        (base(event_id=""), "invalid_value", "event_id must not be empty"),
        (base(event_id="x" * 129), "invalid_value", "event_id is 129 chars, limit 128"),
        (base(event_type="refund"), "unknown_event_type", "unknown event_type 'refund'"),
        (base(occurred_at=1.5), "wrong_type", "occurred_at must be an RFC 3339 string or epoch milliseconds, got number"),
        (base(occurred_at=True), "wrong_type", "occurred_at must be an RFC 3339 string or epoch milliseconds, got boolean"),
        (base(occurred_at="yesterday"), "invalid_value", "occurred_at 'yesterday' is not an RFC 3339 timestamp"),
        (base(occurred_at="2026-11-24T11:00:00"), "invalid_value", "occurred_at '2026-11-24T11:00:00' has no UTC offset"),
        (base(occurred_at="2031-01-01T00:00:00Z"), "timestamp_future", "occurred_at 2031-01-01T00:00:00+00:00 is more than 24h in the future"),
        (base(occurred_at="2026-01-01T00:00:00Z"), "timestamp_past", "occurred_at 2026-01-01T00:00:00+00:00 is more than 30 days old"),
        (base(occurred_at=0), "timestamp_past", "occurred_at 1970-01-01T00:00:00+00:00 is more than 30 days old"),
        (base(occurred_at="0001-01-01T00:00:00+01:00"), "timestamp_past", "occurred_at -62135600400000 ms is more than 30 days old"),
        (base(occurred_at="9999-12-31T23:59:59-01:00"), "timestamp_future", "occurred_at 253402304399000 ms is more than 24h in the future"),
        (base(device="phone"), "invalid_value", "device 'phone' is not one of desktop, mobile, tablet, other"),
        (base(country="DEU"), "invalid_value", "country 'DEU' is not an ISO 3166-1 alpha-2 country code"),
        (base(value="12", currency="EURO"), "invalid_value", "currency 'EURO' is not an ISO 4217 currency code"),
        (base(value="12"), "currency_required", "currency required when value is set"),
        (base(value=-1, currency="EUR"), "invalid_value", "value -1 must be between 0 and 1000000000000000"),
        (base(value="NaN", currency="EUR"), "invalid_value", "value 'NaN' is not a decimal like 12.50 (digits, at most 6 places)"),
        (base(value="12,50", currency="EUR"), "invalid_value", "value '12,50' is not a decimal like 12.50 (digits, at most 6 places)"),
        (base(value=[1], currency="EUR"), "wrong_type", "value must be a number or numeric string, got array"),
        (base(value="1.1234567", currency="EUR"), "invalid_value", "value '1.1234567' is not a decimal like 12.50 (digits, at most 6 places)"),
        (base(event_type="purchase"), "order_id_required", "order_id required for purchase"),
        (base(items={"sku": "a"}), "wrong_type", "items must be a list, got object"),
        (base(items=["a"]), "wrong_type", "items[0] must be an object, got string"),
        (base(items=[{"sku": "a", "quantity": 1}]), "missing_field", "missing field items[0].price"),
        (base(items=[{"sku": "a", "quantity": 0, "price": 1}]), "invalid_value", "items[0].quantity 0 must be >= 1"),
        (base(items=[{"sku": "a", "quantity": "2", "price": 1}]), "wrong_type", "items[0].quantity must be an integer, got string"),
        (base(items=[{"sku": "a", "quantity": 1, "price": -2}]), "invalid_value", "items[0].price -2 must be between 0 and 1000000000000000"),
        (base(items=[{"sku": 5, "quantity": 1, "price": 1}]), "wrong_type", "items[0].sku must be a string, got number"),
        (base(items=[{"sku": "a", "quantity": 1, "price": 1}] * 501), "invalid_value", "items has 501 lines, limit 500"),
    ],
)  # fmt: skip
def test_rejection_reasons(doc: dict[str, Any], code: str, detail: str) -> None:
    assert rejected(doc) == Rejection(code, detail)


def test_not_json_not_object_and_oversize() -> None:
    bad_json = decode_event(b'{"event_id": ', now_ms=NOW_MS, limits=LIMITS)
    assert isinstance(bad_json, Rejection)
    assert bad_json.code == "not_json"
    assert bad_json.detail.startswith("not JSON: ")
    assert rejected([1, 2]) == Rejection("not_object", "not a JSON object but array")
    assert rejected("text") == Rejection("not_object", "not a JSON object but string")
    big = orjson.dumps(base(page="/" + "x" * 2_200_000))
    assert decode_event(big, now_ms=NOW_MS, limits=LIMITS) == Rejection(
        "oversize", "payload 2.1 MB over limit 1 MB"
    )
    assert decode_event(b"\xff\xfe", now_ms=NOW_MS, limits=LIMITS).code == "not_json"  # type: ignore[union-attr]


def test_limits_are_configurable() -> None:
    tight = DecodeLimits(max_payload_bytes=100, max_future_ms=1000, max_age_ms=60_000)
    raw = orjson.dumps(base(occurred_at=NOW_MS + 2000))
    assert decode_event(raw, now_ms=NOW_MS, limits=tight) == Rejection(
        "oversize", f"payload {len(raw) / 1024:.1f} KB over limit 0.1 KB"
    )
    small = orjson.dumps({"event_id": "e", "event_type": "page_view", "occurred_at": NOW_MS + 2000, "site_id": "s", "session_id": "x"})  # fmt: skip
    looser = DecodeLimits(max_payload_bytes=1000, max_future_ms=1000, max_age_ms=60_000)
    result = decode_event(small, now_ms=NOW_MS, limits=looser)
    assert isinstance(result, Rejection)
    assert result.code == "timestamp_future"


# No recursion and no free text: strings come from a pool of the values the decoder branches on,
# so generation stays fast on a loaded machine (Hypothesis' too_slow health check) while every
# container shape the decoder walks (items as lists of objects, objects as values) is drawn.
STRING_POOL = [
    "", "x", "page_view", "purchase", "add_to_cart", "Order Completed", "2026-11-20T10:15:02Z",
    "2026-11-20T10:15:02.123+01:00", "20261124T100000Z", "EUR", "eur", "XYZ", "1", "1.5", "-1",
    "1E+2", " 12 ", "1_000", "0.0000001", "desktop", "DE", "ß", "\x00", "é" * 3, "a" * 300,
]  # fmt: skip
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.sampled_from(STRING_POOL)
)
item_like = st.dictionaries(
    st.sampled_from(["sku", "quantity", "price", "x"]), json_scalars, max_size=3
)
json_values = (
    json_scalars
    | st.lists(json_scalars, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "sku", ""]), json_scalars, max_size=3)
    | st.lists(item_like, max_size=3)
)
field_names = st.sampled_from(
    ["event_id", "event_type", "occurred_at", "site_id", "session_id", "user_id", "device", "country",
     "items", "value", "currency", "order_id", "utm_source", "page"]
)  # fmt: skip


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(decode_event(raw, now_ms=NOW_MS, limits=LIMITS), Event | Rejection)


@settings(max_examples=400)
@given(st.dictionaries(field_names, json_values, max_size=6))
def test_arbitrary_json_objects_never_raise(doc: dict[str, Any]) -> None:
    raw = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    assert isinstance(decode_event(raw, now_ms=NOW_MS, limits=LIMITS), Event | Rejection)


@settings(max_examples=300)
@given(st.dictionaries(field_names, json_values, max_size=6))
def test_mutated_valid_events_never_raise(mutation: dict[str, Any]) -> None:
    doc = base(event_type="purchase", order_id="o", value="1", currency="EUR") | mutation
    assert isinstance(decode(doc), Event | Rejection)


def test_integers_beyond_64_bits_are_rejected_not_raised() -> None:
    raw = b'{"event_id":"e","event_type":"page_view","occurred_at":99999999999999999999999,'
    raw += b'"site_id":"s","session_id":"x"}'
    result = decode_event(raw, now_ms=NOW_MS, limits=LIMITS)
    assert isinstance(result, Rejection)
    # orjson reads integers past 64 bits as floats; an integral one is an integer (as in JSON
    # Schema), far in the future.
    assert result.code == "timestamp_future"
