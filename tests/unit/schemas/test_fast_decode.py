"""The fast path never decides differently: it accepts only what the precise path accepts, with
the identical Event, and declines the rest - generated documents and the known traps alike."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.contract import EVENT_TYPE_ALIASES, FIELDS, PLAIN_TEXT_PATTERN
from schemas.decode import DecodeLimits, Rejection, decode_event, decode_precisely
from schemas.event import Event, Item
from schemas.fast_decode import decode_common, rfc3339_ms
from streams.bench.dataset import throughput_messages
from tests.unit.schemas.documents import LIMITS, NOW_MS, base

T = "2026-11-24T11:00:00"  # an hour before NOW_MS


def fast(raw: bytes, limits: DecodeLimits = LIMITS) -> Event | None:
    return decode_common(
        raw,
        earliest_ms=NOW_MS - limits.max_age_ms,
        latest_ms=NOW_MS + limits.max_future_ms,
        max_bytes=limits.max_payload_bytes,
    )


def agreed(raw: bytes, limits: DecodeLimits = LIMITS) -> Event | None:
    """The fast path's answer, after checking it against the precise path's."""
    precise = decode_precisely(raw, now_ms=NOW_MS, limits=limits)
    quick = fast(raw, limits)
    if quick is not None:
        assert type(quick) is Event, quick
        assert quick == precise, (raw, quick, precise)
        # Identical, not just equal: Decimal("5") == Decimal("5.0"), their reprs differ.
        assert repr(quick) == repr(precise)
    assert decode_event(raw, now_ms=NOW_MS, limits=limits) == precise
    return quick


def pairs(*items: tuple[str, Any]) -> bytes:
    """A JSON object from key/value pairs, keys repeated as given (orjson keeps the last)."""
    return ("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in items) + "}").encode()


def test_event_fields_follow_the_contract_fields() -> None:
    # The fast path hands its fields to Event in FIELDS order.
    names = [spec.name for spec in FIELDS]
    assert [f.name for f in dataclasses.fields(Event)] == [
        "occurred_at_ms" if n == "occurred_at" else n for n in names
    ]


def test_ids_need_no_search_without_a_backslash_or_del_byte() -> None:
    # What PLAIN_TEXT_PATTERN refuses is exactly what only escapes or a DEL byte can spell.
    refused = [
        c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and not re.search(PLAIN_TEXT_PATTERN, chr(c))
    ]  # fmt: skip
    assert refused == [*range(0x20), 0x7F]


@pytest.mark.parametrize(
    "value",
    ["1969-12-31T23:59:59.9995Z", "1970-01-01T00:00:00.0005+00:01", "0001-01-01T00:00:00.999999+23:59",
     "9999-12-31T23:59:59.999999-23:59", f"{T}.123456789Z", f"{T}Z"],
)  # fmt: skip
def test_rfc3339_ms_is_the_floor_in_milliseconds(value: str) -> None:
    since = datetime.fromisoformat(value) - datetime(1970, 1, 1, tzinfo=UTC)
    assert rfc3339_ms(value) == since // timedelta(milliseconds=1)


def test_fast_events_are_true_frozen_events() -> None:
    raw = orjson.dumps(base(event_type="add_to_cart", items=[{"sku": "a", "quantity": 2, "price": "1.50"}]))  # fmt: skip
    event = agreed(raw)
    assert event is not None
    assert type(event.items[0]) is Item
    assert event.items == (Item("a", 2, Decimal("1.50")),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.event_id = "x"  # type: ignore[misc]
    assert hash(event) == hash(dataclasses.replace(event))


FULL = base(
    event_type="Order Completed", user_id="u-9", utm_source="google", utm_medium="cpc",
    utm_campaign="bf", referrer="https://google.com/", device="mobile", country="de",
    variant="B", page="/checkout/done", value="24.90", currency="eur", order_id="o-1",
    cart_id="c-1", items=[{"sku": "A-1", "quantity": 2, "price": "9.95"},
                          {"sku": "B", "quantity": 1, "price": "5"}],
)  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps(base()),
        orjson.dumps(FULL),
        json.dumps(FULL, ensure_ascii=True, indent=1).encode(),  # escapes: ids are searched
        orjson.dumps(base(occurred_at=NOW_MS - 5, country="nl")),
        orjson.dumps(base(occurred_at=f"{T}+01:00", event_id="\U0001f600" * 128)),
        orjson.dumps(base(event_id="caf\u00e9 \x85\u2028", utm_source="Facebook\t", items=[])),
        orjson.dumps(base(**{k: None for k in FULL if k not in base()})),  # null is absent
        pairs(*base().items(), ("event_id", "last"), ("user_id", "u"), ("user_id", None)),
        orjson.dumps(base(occurred_at=f"{T}.123456789Z")),
        orjson.dumps(base(occurred_at=f"{T}-00:00")),
        orjson.dumps(base(occurred_at=NOW_MS + LIMITS.max_future_ms)),
        orjson.dumps(base(occurred_at=NOW_MS - LIMITS.max_age_ms)),
    ],
    ids=["minimal", "full", "escaped", "epoch ms", "offset, 128 code points", "odd but plain",
         "nulls", "duplicate keys", "nanoseconds", "-00:00", "newest", "oldest"],
)  # fmt: skip
def test_common_shapes_take_the_fast_path(raw: bytes) -> None:
    assert agreed(raw) is not None


def test_every_valid_simulated_message_takes_the_fast_path() -> None:
    # The benchmark's traffic: what is accepted at all is accepted fast.
    messages = throughput_messages(1500, now=datetime.fromtimestamp(NOW_MS / 1000, UTC), seed=3)
    valid = [m.value for m in messages if m.valid]
    assert len(valid) > 1400
    assert all(agreed(raw) is not None for raw in valid)


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps(base(extra={"kept": [1, 2]})),  # unknown fields
        orjson.dumps(base(occurred_at=1.7955e12)),  # an integral float
        orjson.dumps(base(items=[{"sku": "a", "quantity": 2.0, "price": "1"}])),
        orjson.dumps(base(value=19.99, currency="EUR")),  # money as a JSON number
        orjson.dumps(base(value=5, currency="EUR")),
        pairs(*base().items(), ("event_id", 5), ("event_id", "e")),  # a bad first duplicate
        orjson.dumps(base(event_type="purchase", order_id="o", currency="EUR", items=[])),
    ],
    ids=["unknown field", "float time", "float quantity", "float value", "int value",
         "bad first duplicate", "purchase, items [] with currency"],
)  # fmt: skip
def test_accepted_shapes_the_fast_path_may_leave_to_the_precise_one(raw: bytes) -> None:
    assert isinstance(decode_precisely(raw, now_ms=NOW_MS, limits=LIMITS), Event)
    agreed(raw)


@pytest.mark.parametrize(
    "raw",
    [
        orjson.dumps(base(event_id="e\x00")),  # an escaped control character
        orjson.dumps(base(session_id="s\x7f")),  # a raw DEL byte
        orjson.dumps(base(event_id="\U0001f600" * 129)),  # 129 code points
        orjson.dumps(base(country="\u00df")),  # "ß".upper() == "SS"
        orjson.dumps(base(country="DE\n")),  # "$" would match before the newline
        orjson.dumps(base(value="12\n", currency="EUR")),
        orjson.dumps(base(value="1", currency="usd\n")),
        orjson.dumps(base(occurred_at=f"{T[:-2]}60Z")),  # a leap second
        orjson.dumps(base(occurred_at="2026-11-24t11:00:00z")),
        orjson.dumps(base(occurred_at=T)),  # no offset
        orjson.dumps(base(occurred_at=f"{T}+24:00")),
        orjson.dumps(base(occurred_at=2**63)),  # beyond int64: orjson still reads an int
        orjson.dumps(base(occurred_at=True)),
        orjson.dumps(base(items=[{"sku": "a", "quantity": True, "price": "1"}])),
        orjson.dumps(base(value="1e300", currency="EUR")),
        orjson.dumps(base(value=1e300, currency="EUR")),
        orjson.dumps(base(occurred_at=NOW_MS + LIMITS.max_future_ms + 1)),
        orjson.dumps(base(occurred_at=NOW_MS - LIMITS.max_age_ms - 1)),
        orjson.dumps(base(event_type="purchase", order_id="o", items=[])),  # no currency
        orjson.dumps(base(event_type="purchase", items=[])),
        orjson.dumps(base(value="1")),
        orjson.dumps(base(site_id=None)),
        orjson.dumps(base(device="")),
        pairs(*base().items(), ("user_id", "u"), ("user_id", 5)),  # a bad last duplicate
        # orjson refuses what msgspec would skip or read: big numbers, bad UTF-8, NaN.
        pairs(*base().items())[:-1] + b',"occurred_at":1' + b"0" * 400 + b"}",
        pairs(*base().items())[:-1] + b',"occurred_at":' + b"9" * 400 + b',"occurred_at":0}',
        pairs(*base().items())[:-1] + b',"x":1e999}',
        pairs(*base().items())[:-1] + b',"x":"\xff"}',
        pairs(*base().items())[:-1] + b',"user_id":"\xed\xa0\x80"}',
        pairs(*base().items())[:-1] + b',"user_id":"\\ud800"}',
        pairs(*base().items())[:-1] + b',"value":NaN,"currency":"EUR"}',
        pairs(*base().items())[:-1] + b',"user_id":"u\t1"}',  # a raw tab: not JSON
        pairs(*base().items()) + b" x",
        b"\xef\xbb\xbf" + pairs(*base().items()),
    ],
)
def test_what_the_precise_path_refuses_the_fast_path_declines(raw: bytes) -> None:
    assert isinstance(decode_precisely(raw, now_ms=NOW_MS, limits=LIMITS), Rejection)
    assert agreed(raw) is None


def test_oversize_is_declined_before_anything_else() -> None:
    raw = orjson.dumps(base())
    tight = DecodeLimits(max_payload_bytes=len(raw) - 1)
    assert agreed(raw, tight) is None
    assert decode_event(raw, now_ms=NOW_MS, limits=tight).code == "oversize"  # type: ignore[union-attr]
    assert agreed(raw, DecodeLimits(max_payload_bytes=len(raw))) is not None


# Generated documents: a valid event (optional fields absent, null or set), then a few fields
# overridden or repeated with values valid, null or near misses, keys escaped or not - so that
# both paths see both answers, and the traps above in combination.
TIMES = [
    NOW_MS, NOW_MS - 1, float(NOW_MS), NOW_MS + 0.5, NOW_MS + 2 * LIMITS.max_future_ms, 2**63,
    -(2**63) - 1, True, f"{T}Z", f"{T}.5Z", f"{T}.123456789+05:30", f"{T}-00:00", f"{T}+24:00",
    f"{T[:-2]}60Z", "2026-11-24t11:00:00z", "2026-11-24 11:00:00Z", T, f"{T}+0100", "",
    "2026-11-31T11:00:00Z", f"{T}Z\n",
]  # fmt: skip
IDS = ["e", "x" * 128, "x" * 129, "\U0001f600" * 128, "\U0001f600" * 129, "e\x00", "e\t",
       "e\x7f", "e\u2028", "", " ", 5, True, ["e"]]  # fmt: skip
CODES = ["EUR", "eur", "Eur", "XYZ", "XTS", "DE", "de", "\u00df", "\u00dfs", "DE\n", "", "D", 7]
MONEY = ["12", "12.50", "0.0000001", "1e2", " 1", "12\n", "999999999999999.999999", "-1",
         "1000000000000000", "", 0, 5, 19.99, -1, 1e300]  # fmt: skip
LINES = st.fixed_dictionaries(
    {"sku": st.sampled_from(["a", "A-1"]), "quantity": st.sampled_from([1, 2, 10**6]),
     "price": st.sampled_from(["9.90", "0", "12.345678"])},
    optional={"x": st.sampled_from(["a", 1, None])},
)  # fmt: skip
ANY_LINES = st.lists(
    st.dictionaries(
        st.sampled_from(["sku", "quantity", "price", "x"]),
        st.sampled_from(["a", "", "e\x00", 1, 2.0, 0, True, 10**6 + 1, "1", "9.90", None]),
    ),
    max_size=3,
) | st.sampled_from([{}, "a", ["a"]])
NEAR: dict[str, st.SearchStrategy[Any]] = {
    "event_type": st.sampled_from([*EVENT_TYPE_ALIASES, "Purchase", "", 5]),
    "occurred_at": st.sampled_from(TIMES),
    "device": st.sampled_from(["mobile", "other", "Mobile", "", 1]),
    "country": st.sampled_from(CODES),
    "currency": st.sampled_from(CODES),
    "value": st.sampled_from(MONEY),
    "items": st.lists(LINES, max_size=2) | ANY_LINES,
}
VALID: dict[str, st.SearchStrategy[Any]] = {
    "event_type": st.sampled_from(list(EVENT_TYPE_ALIASES)),
    "occurred_at": st.sampled_from([NOW_MS, f"{T}Z", f"{T}.25+01:00", f"{T}.123456789-09:30"]),
    "device": st.sampled_from(["mobile", "desktop"]),
    "country": st.sampled_from(["DE", "gb"]),
    "currency": st.sampled_from(["EUR", "usd"]),
    "value": st.sampled_from(["12", "0.5", "999999999999999.999999"]),
    "items": st.lists(LINES, max_size=2),
}
valid_events = st.fixed_dictionaries(
    {spec.name: VALID.get(spec.name, st.sampled_from(["e", "x" * 128, "\U0001f600", "a\u2028"]))
     for spec in FIELDS if spec.required},
    optional={spec.name: st.none() | VALID.get(spec.name, st.sampled_from(["u", "\xe9" * 128]))
              for spec in FIELDS if not spec.required},
)  # fmt: skip
changes = st.lists(
    st.sampled_from([spec.name for spec in FIELDS] + ["extra"]).flatmap(
        lambda name: st.tuples(st.just(name), st.none() | NEAR.get(name, st.sampled_from(IDS)))
    ),
    max_size=3,
)


@settings(max_examples=600)
@given(valid_events, changes, st.booleans(), st.booleans())
def test_the_fast_path_agrees_with_the_precise_one(
    event: dict[str, Any], more: list[tuple[str, Any]], repeat: bool, ascii_only: bool
) -> None:
    if repeat:  # repeated keys: the last one counts
        raw = pairs(*event.items(), *more)
    else:
        raw = json.dumps(event | dict(more), ensure_ascii=ascii_only).encode()
    agreed(raw)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_declined_or_agreed(raw: bytes) -> None:
    agreed(raw)


SENT = [
    orjson.dumps(FULL),
    orjson.dumps(base(occurred_at=NOW_MS, country="NL", user_id="u-1", device="tablet")),
    json.dumps(FULL, ensure_ascii=True).encode(),
]
edits = st.lists(
    st.tuples(
        st.sampled_from(["set", "insert", "delete"]),
        st.integers(min_value=0, max_value=10_000),
        st.sampled_from(list(b'\\"{}[],:019.eE+-nt \x7f\x00\t\xff\xc3')) | st.integers(0, 255),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=400)
@given(st.sampled_from(SENT), edits)
def test_valid_messages_with_bytes_changed_are_declined_or_agreed(
    sent: bytes, changes: list[tuple[str, int, int]]
) -> None:
    raw = bytearray(sent)
    for how, where, byte in changes:
        at = where % len(raw)
        if how == "set":
            raw[at] = byte
        elif how == "insert":
            raw.insert(at, byte)
        else:
            del raw[at]
    agreed(bytes(raw))
