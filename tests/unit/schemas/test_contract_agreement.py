"""The JSON Schema we publish and the decoder we run agree on one corpus of edge cases.

Whatever either one becomes (a faster decoder, a regenerated schema), this corpus must get the
same yes/no from both: the schema with its formats checked (jsonschema + rfc3339-validator), the
decoder at a fixed clock, with every time inside its window. The cases the issue reported as
accepted beyond the contract are asserted rejected on top of agreeing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jsonschema
import orjson
import pytest

from schemas.contract import EVENT_TYPE_ALIASES, MAX_ITEMS, MAX_QUANTITY
from schemas.decode import decode_event
from schemas.event import Event
from schemas.jsonschema import build_schema
from tests.unit.schemas.documents import LIMITS, NOW_MS, base

VALIDATOR = jsonschema.Draft202012Validator(
    build_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
T = "2026-11-24T11:00:00"  # an hour before NOW_MS: inside the decoder's time window


def money(value: Any, **more: Any) -> dict[str, Any]:
    return base(**({"value": value, "currency": "EUR"} | more))


def line(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"sku": "a", "quantity": 1, "price": "9.90"}
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not ...}


def buy(**fields: Any) -> dict[str, Any]:
    return base(event_type="purchase", **fields)


VALUES = [
    "12", "12.5", "12.50", "0", "0.000001", "0.0000001", "00012.5", "999999999999999",
    "999999999999999.999999", "1000000000000000", "1_000", " 12 ", "12 ", "12\n", "1E+2", "1e2",
    "+1", "-1", "1.", ".5", "12,50", "NaN", "Infinity", "0x10", "\u0661\u0662", "",
    0, 12, 12.5, 3.3000000000000003, 1e-7, 0.1234565, 999999999999999.9, 1e15, -0.0, -1, 1e300,
    True, [1], {"a": 1},
]  # fmt: skip
TIMES = [
    f"{T}Z", f"{T}.1Z", f"{T}.123456789Z", f"{T}+01:00", f"{T}-09:30", "2026-11-24t11:00:00z",
    "2026-11-24 11:00:00Z", "20261124T110000Z", T, f"{T}+0100", f"{T}+01", "2026-11-24T24:00:00Z",
    "2026-11-24T11:00:60Z", "2026-11-24T11:00Z", "2026-11-24", "2026-11-31T11:00:00Z",
    f"{T}+24:00", f"{T}Z\n", "\uff12\uff10\uff12\uff16-11-24T11:00:00Z", "", "now",
    NOW_MS - 1, float(NOW_MS), NOW_MS + 0.5, True, [NOW_MS],
]  # fmt: skip
CURRENCIES = ["EUR", "eur", "Eur", "usd", "XYZ", "XTS", "XXX", "EURO", "EU", "\u20ac",
              "\u00c9UR", "US D", "usd\n", "", 5]  # fmt: skip
COUNTRIES = ["DE", "de", "dE", "DEU", "D", "\u00df", "\u00dfs", "1A", "D\u00c9", "", 7]
IDS = [
    "e-1", "x" * 128, "x" * 129, "\U0001f600" * 128, "\U0001f600" * 129, " ", "e\x00",
    "e\t1", "e\n", "e\x1f", "e\x7f", "e\u2028", "e\x85", "", 5, None,
]  # fmt: skip

CORPUS: list[tuple[str, dict[str, Any]]] = [
    *((f"value={v!r}", money(v)) for v in VALUES),
    *((f"price={v!r}", base(items=[line(price=v)])) for v in VALUES),
    *((f"occurred_at={v!r}", base(occurred_at=v)) for v in TIMES),
    *((f"currency={c!r}", money("1", currency=c)) for c in CURRENCIES),
    *((f"country={c!r}", base(country=c)) for c in COUNTRIES),
    *((f"event_id={v!r}", base(event_id=v)) for v in IDS),
    *((f"user_id={v!r}", base(user_id=v)) for v in IDS),
    *((f"sku={v!r}", base(items=[line(sku=v)])) for v in IDS),
    *((f"utm_source={v!r}", base(utm_source=v))
      for v in ("x" * 256, "x" * 257, "a\x00", "Facebook\t")),
    *((f"event_type={t!r}", base(event_type=t, order_id="o")) for t in EVENT_TYPE_ALIASES),
    *((f"event_type={t!r}", base(event_type=t)) for t in ("Purchase", "refund", "", 5, None)),
    *((f"device={d!r}", base(device=d)) for d in ("mobile", "other", "Mobile", "phone", "", None)),
    ("quantity=2.0", base(items=[line(quantity=2.0)])),
    ("quantity=2.5", base(items=[line(quantity=2.5)])),
    ("quantity='2'", base(items=[line(quantity="2")])),
    ("quantity=0", base(items=[line(quantity=0)])),
    ("quantity=max", base(items=[line(quantity=MAX_QUANTITY)])),
    ("quantity=max+1", base(items=[line(quantity=MAX_QUANTITY + 1)])),
    ("quantity=true", base(items=[line(quantity=True)])),
    ("quantity=null", base(items=[line(quantity=None)])),
    ("line without price", base(items=[line(price=...)])),
    ("line not an object", base(items=["a"])),
    ("items=[]", base(items=[])),
    ("items=null", base(items=None)),
    ("items={}", base(items={})),
    ("items at limit", base(items=[line()] * MAX_ITEMS)),
    ("items over limit", base(items=[line()] * (MAX_ITEMS + 1))),
    ("purchase", buy(order_id="o")),
    ("purchase without order_id", buy()),
    ("purchase with null order_id", buy(order_id=None)),
    ("purchase with items and currency", buy(order_id="o", items=[line()], currency="EUR")),
    ("purchase with items, no currency", buy(order_id="o", items=[line()])),
    ("purchase with items, null currency", buy(order_id="o", items=[line()], currency=None)),
    ("purchase with null items, no currency", buy(order_id="o", items=None)),
    ("alias purchase, items, no currency", base(event_type="Order Completed", order_id="o",
                                                items=[line()])),
    ("add_to_cart with items, no currency", base(event_type="add_to_cart", items=[line()])),
    ("value without currency", base(value="1")),
    ("value with null currency", base(value="1", currency=None)),
    ("null value, no currency", base(value=None)),
    ("currency without value", base(currency="EUR")),
    ("null required field", base(session_id=None)),
    ("missing required field", base(site_id=...)),
    ("unknown extra field", base(extra={"kept": [1, 2]})),
    ("every optional field null", base(**{k: None for k in (
        "user_id", "utm_source", "utm_medium", "utm_campaign", "referrer", "device", "country",
        "variant", "page", "items", "value", "currency", "order_id", "cart_id")})),
]  # fmt: skip


@pytest.mark.parametrize(("case", "doc"), CORPUS, ids=[case for case, _ in CORPUS])
def test_schema_and_decoder_agree(case: str, doc: dict[str, Any]) -> None:
    raw = orjson.dumps(doc)
    decoded = decode_event(raw, now_ms=NOW_MS, limits=LIMITS)
    errors = [e.message for e in VALIDATOR.iter_errors(orjson.loads(raw))]
    assert isinstance(decoded, Event) is (not errors), (case, decoded, errors[:3])


def test_the_corpus_has_both_answers_and_formats_are_checked() -> None:
    answers = [
        isinstance(decode_event(orjson.dumps(d), now_ms=NOW_MS, limits=LIMITS), Event)
        for _, d in CORPUS
    ]
    assert 50 < sum(answers) < len(answers) - 50
    # Without a date-time checker the schema would take 30 November... 31st.
    assert not VALIDATOR.is_valid(base(occurred_at="2026-11-31T11:00:00Z"))


@pytest.mark.parametrize(
    "doc",
    [
        money("1_000"), money(" 12 "), money("1E+2"), base(occurred_at="20261124T100000Z"),
        money("1", currency="XYZ"), base(country="\u00dfs"), base(event_id="e\x00"),
        base(session_id="s\x00"), buy(order_id="o", items=[line()]),
    ],
    ids=["1_000", "spaces", "1E+2", "basic-format time", "XYZ", "ß", "NUL id", "NUL session",
         "purchase items without currency"],
)  # fmt: skip
def test_what_the_contract_never_promised_is_rejected(doc: dict[str, Any]) -> None:
    assert not isinstance(decode_event(orjson.dumps(doc), now_ms=NOW_MS, limits=LIMITS), Event)


def test_json_numbers_are_rounded_to_six_places_and_strings_are_exact() -> None:
    def value(v: Any) -> Decimal | None:
        event = decode_event(orjson.dumps(money(v)), now_ms=NOW_MS, limits=LIMITS)
        assert isinstance(event, Event), event
        return event.value

    assert value(3.3000000000000003) == Decimal("3.3")
    assert value(0.1234565) == Decimal("0.123456")  # half to even
    assert value(19.99) == Decimal("19.99")
    assert value("19.990") == Decimal("19.990")
