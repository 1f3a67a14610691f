"""The decoder's fast path: the common shape of a valid event, parsed and checked in C by msgspec.

It only ever accepts what the precise path (schemas/decode.py) accepts, with the same `Event`;
anything else - a rule broken, or a shape it was not built for - it declines (None), and the
precise path decides and words the rejection. Its types and constraints come from
schemas/contract.py, read the way the precise path reads them (msgspec matches a `pattern` with
`re.search` and counts lengths in code points, as Python does). It declines:
- unknown fields: msgspec would skip their values without checking them as orjson does (it
  takes invalid UTF-8 and 1e999 there);
- JSON numbers for money: a float's Decimal depends on its shortest repr, best left in one place;
- floats for integers (1.7e12, 2.0), integers beyond 64 bits (orjson reads those as floats);
- times outside the accepted window, and every cross-field rule broken.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import fields, make_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec.structs import astuple

from schemas.contract import (
    COUNTRY_PATTERN,
    CURRENCY_PATTERN,
    EVENT_TYPE_ALIASES,
    FIELDS,
    MAX_ITEMS,
    MAX_QUANTITY,
    MONEY_PATTERN,
    PLAIN_TEXT_PATTERN,
    TIMESTAMP_PATTERN,
    FieldSpec,
    Kind,
)
from schemas.event import Device, Event, EventType, Item

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = msgspec.Meta(ge=-(2**63), le=2**63 - 1)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_SKU = FieldSpec("sku", Kind.ID, True, "")
# PLAIN_TEXT_PATTERN refuses C0 controls and DEL (a test holds the two together). Raw in a JSON
# string only DEL is legal, the others come from escapes: without a backslash or a DEL byte in
# the message, no string in it has one, and ids need no regex search (0.4 µs each).
_BACKSLASH = ord("\\")
_DEL = 0x7F


def rfc3339_ms(value: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp with offset; ValueError if `value` does not
    match TIMESTAMP_PATTERN or names no real instant (30 February, 24:00, a leap second)."""
    # Searched here, not by msgspec: its call of the regex costs twice as much.
    if _TIMESTAMP.search(value) is None:
        raise ValueError(value)
    # Exact and overflow-free for any year, unlike .timestamp(); a timedelta is normalised
    # (0 <= seconds < 86400, 0 <= microseconds < 10**6), so this is its floor in milliseconds,
    # in half the time of `// timedelta(milliseconds=1)`.
    since = datetime.fromisoformat(value) - _EPOCH
    return since.days * 86_400_000 + since.seconds * 1000 + since.microseconds // 1000


class _Codes:
    """A code field's pattern verdicts, upper-cased, for the few distinct values it takes
    (a regex search costs more than the rest of the field's decoding); bounded in size."""

    _LIMIT = 4096

    def __init__(self, pattern: str) -> None:
        self._search = re.compile(pattern).search
        self._seen: dict[str, str | None] = {}

    def normal(self, value: str) -> str | None:
        """`value` upper-cased if the pattern accepts it (matched before upper-casing: "ß"
        becomes "SS"), else None."""
        seen = self._seen
        if value in seen:
            return seen[value]
        verdict = value.upper() if self._search(value) else None
        if len(seen) < self._LIMIT:
            seen[value] = verdict
        return verdict


def _text(spec: FieldSpec, pattern: str | None = None) -> Any:
    """A non-empty string of at most max_length code points, as _check_string wants."""
    return Annotated[str, msgspec.Meta(min_length=1, max_length=spec.max_length, pattern=pattern)]


def _decoder(*, check_ids: bool) -> msgspec.json.Decoder[Any]:
    """The contract as msgspec types; ids are searched with PLAIN_TEXT_PATTERN if `check_ids`."""
    id_pattern = PLAIN_TEXT_PATTERN if check_ids else None
    money = Annotated[str, msgspec.Meta(pattern=MONEY_PATTERN)]
    line = msgspec.defstruct(
        "Line",
        [
            ("sku", _text(_SKU, id_pattern)),
            ("quantity", Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]),
            ("price", money),
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    types: dict[Kind, Any] = {
        Kind.EVENT_TYPE: str,  # an alias, looked up after decoding
        Kind.TIMESTAMP: Annotated[int, _INT64] | str,  # a string goes to rfc3339_ms
        Kind.DEVICE: Device,  # by value: exactly the contract's DEVICES
        Kind.DECIMAL: money,
        Kind.ITEMS: Annotated[list[line], msgspec.Meta(max_length=MAX_ITEMS)],  # type: ignore[valid-type]
    }

    def wire_type(spec: FieldSpec) -> Any:
        if spec.kind in types:
            return types[spec.kind]
        # Country and currency codes are matched after decoding, by _Codes.
        return _text(spec, id_pattern if spec.kind is Kind.ID else None)

    # Field for field in FIELDS order, which is also Event's (a test holds them together); a
    # null is an absent optional field, and a null required field fails to decode.
    wire = msgspec.defstruct(
        "Wire",
        [
            (s.name, wire_type(s)) if s.required else (s.name, wire_type(s) | None, None)
            for s in FIELDS
        ],
        forbid_unknown_fields=True,
        gc=False,
    )
    return msgspec.json.Decoder(wire)


def _twin(cls: type) -> type:
    """A mutable class with `cls`'s slots, whose instances can become `cls` instances."""
    return make_dataclass(f"_{cls.__name__}Twin", [f.name for f in fields(cls)], slots=True)


# Event's frozen __init__ stores each of its 19 fields through object.__setattr__, which costs
# as much as all the rest of this path; its twin stores them plainly, then becomes an Event.
_EVENT_TWIN = _twin(Event)
_ITEM_TWIN = _twin(Item)
_PLAIN = _decoder(check_ids=False)
_CHECKED = _decoder(check_ids=True)
_COUNTRIES = _Codes(COUNTRY_PATTERN)
_CURRENCIES = _Codes(CURRENCY_PATTERN)


def decode_common(raw: bytes, *, earliest_ms: int, latest_ms: int, max_bytes: int) -> Event | None:
    """The event in `raw` if it has the common shape and keeps every rule, else None."""
    if len(raw) > max_bytes:
        return None
    decoder = _CHECKED if _BACKSLASH in raw or _DEL in raw else _PLAIN
    try:
        # Wire fields come in Event's order; occurred_at lands in occurred_at_ms.
        event = _EVENT_TWIN(*astuple(decoder.decode(raw)))
        occurred_at = event.occurred_at_ms
        if occurred_at.__class__ is str:
            occurred_at = rfc3339_ms(occurred_at)
    except (msgspec.DecodeError, ValueError):  # UnicodeDecodeError is a ValueError too
        return None
    event_type = EVENT_TYPE_ALIASES.get(event.event_type)
    if event_type is None or not earliest_ms <= occurred_at <= latest_ms:
        return None
    purchase = event_type is EventType.PURCHASE
    if purchase and event.order_id is None:
        return None
    if event.currency is None:
        # Present, even as [], items need a currency on a purchase; a value always does.
        if event.value is not None or (purchase and event.items is not None):
            return None
    elif (currency := _CURRENCIES.normal(event.currency)) is None:
        return None
    else:
        event.currency = currency
    if event.country is not None:
        if (country := _COUNTRIES.normal(event.country)) is None:
            return None
        event.country = country
    if event.value is not None:
        event.value = Decimal(event.value)
    event.event_type = event_type
    event.occurred_at_ms = occurred_at
    event.items = _items(event.items) if event.items else ()
    event.__class__ = Event
    return event  # type: ignore[no-any-return]


def _items(lines: Sequence[Any]) -> tuple[Item, ...]:
    items = []
    for line in lines:
        item = _ITEM_TWIN(line.sku, line.quantity, Decimal(line.price))
        item.__class__ = Item
        items.append(item)
    return tuple(items)
