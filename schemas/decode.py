"""Bytes in, `Event` or `Rejection` out. Never raises on input: bad input is data."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson

from schemas.contract import (
    COUNTRY_PATTERN,
    CURRENCY_PATTERN,
    DEVICES,
    EVENT_TYPE_ALIASES,
    FIELDS,
    MAX_DECIMAL_PLACES,
    MAX_ITEMS,
    MAX_MONEY,
    MAX_QUANTITY,
    MONEY_PATTERN,
    PLAIN_TEXT_PATTERN,
    TIMESTAMP_PATTERN,
    FieldSpec,
    Kind,
)
from schemas.event import Device, Event, EventType, Item
from schemas.fast_decode import decode_common, rfc3339_ms

_HOUR_MS = 3_600_000
# The JSON Schema's patterns, searched the way jsonschema searches them.
_COUNTRY = re.compile(COUNTRY_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)
_MONEY = re.compile(MONEY_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_PLAIN_TEXT = re.compile(PLAIN_TEXT_PATTERN)
# JSON numbers are binary floats: 3.3000000000000003 means 3.3, so they are rounded to the
# places money has; decimal strings are exact and must fit them.
_PLACES = Decimal(1).scaleb(-MAX_DECIMAL_PLACES)


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_payload_bytes: int = 1_048_576
    max_future_ms: int = 24 * _HOUR_MS
    max_age_ms: int = 30 * 24 * _HOUR_MS


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused. `code` is a bounded metric label; `detail` is for humans."""

    code: str
    detail: str


class _InvalidError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(code, detail)


def decode_event(raw: bytes, *, now_ms: int, limits: DecodeLimits) -> Event | Rejection:
    """Validate one message value against contract v1. `now_ms` is injected for the time checks."""
    event = decode_common(
        raw,
        earliest_ms=now_ms - limits.max_age_ms,
        latest_ms=now_ms + limits.max_future_ms,
        max_bytes=limits.max_payload_bytes,
    )
    # Declined: the precise path decides, and says why.
    return event if event is not None else decode_precisely(raw, now_ms=now_ms, limits=limits)


def decode_precisely(raw: bytes, *, now_ms: int, limits: DecodeLimits) -> Event | Rejection:
    """decode_event without its fast path: every rule checked here, every rejection worded."""
    if len(raw) > limits.max_payload_bytes:
        return Rejection(
            "oversize",
            f"payload {_human_bytes(len(raw))} over limit {_human_bytes(limits.max_payload_bytes)}",
        )
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("not_json", f"not JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejection("not_object", f"not a JSON object but {_json_type(doc)}")
    try:
        return _build(doc, now_ms, limits)
    except _InvalidError as invalid:
        return invalid.rejection


def _build(doc: dict[str, Any], now_ms: int, limits: DecodeLimits) -> Event:
    values: dict[str, Any] = {}
    for spec in FIELDS:
        raw_value = doc.get(spec.name)
        if raw_value is None:
            if spec.required:
                raise _InvalidError("missing_field", f"missing field {spec.name}")
            continue
        values[spec.name] = _CHECKS[spec.kind](spec, raw_value)

    occurred_at_ms: int = values.pop("occurred_at")
    if occurred_at_ms > now_ms + limits.max_future_ms:
        raise _InvalidError(
            "timestamp_future",
            f"occurred_at {_iso(occurred_at_ms)} is more than "
            f"{limits.max_future_ms // _HOUR_MS}h in the future",
        )
    if occurred_at_ms < now_ms - limits.max_age_ms:
        raise _InvalidError(
            "timestamp_past",
            f"occurred_at {_iso(occurred_at_ms)} is more than "
            f"{limits.max_age_ms // (24 * _HOUR_MS)} days old",
        )
    if "value" in values and "currency" not in values:
        raise _InvalidError("currency_required", "currency required when value is set")
    purchase = values["event_type"] is EventType.PURCHASE
    if purchase and "items" in values and "currency" not in values:
        raise _InvalidError("currency_required", "currency required for a purchase with items")
    if purchase and "order_id" not in values:
        raise _InvalidError("order_id_required", "order_id required for purchase")
    if "items" in values:
        values["items"] = tuple(values["items"])
    return Event(occurred_at_ms=occurred_at_ms, **values)


def _check_string(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise _InvalidError("wrong_type", f"{spec.name} must be a string, got {_json_type(value)}")
    if not value:
        raise _InvalidError("invalid_value", f"{spec.name} must not be empty")
    if len(value) > spec.max_length:
        raise _InvalidError(
            "invalid_value", f"{spec.name} is {len(value)} chars, limit {spec.max_length}"
        )
    return value


def _check_id(spec: FieldSpec, value: Any) -> str:
    """An identifier: a string without control characters (a NUL byte in an id is never meant;
    free text such as a campaign name may carry a stray tab)."""
    if not _PLAIN_TEXT.search(_check_string(spec, value)):
        raise _InvalidError("invalid_value", f"{spec.name} contains control characters")
    return str(value)


def _check_event_type(spec: FieldSpec, value: Any) -> EventType:
    if not isinstance(value, str):
        raise _InvalidError("wrong_type", f"{spec.name} must be a string, got {_json_type(value)}")
    name = value
    event_type = EVENT_TYPE_ALIASES.get(name)
    if event_type is None:
        raise _InvalidError("unknown_event_type", f"unknown event_type {name[:64]!r}")
    return event_type


def _check_timestamp(spec: FieldSpec, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1.7e12 is an integer to JSON Schema too
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _InvalidError(
            "wrong_type",
            f"{spec.name} must be an RFC 3339 string or epoch milliseconds, "
            f"got {_json_type(value)}",
        )
    if isinstance(value, int):
        return value
    if _TIMESTAMP.search(value) is None and _TIMESTAMP.search(value + "Z") is not None:
        raise _InvalidError("invalid_value", f"{spec.name} {value[:64]!r} has no UTC offset")
    try:
        return rfc3339_ms(value)
    except ValueError:
        raise _InvalidError(
            "invalid_value", f"{spec.name} {value[:64]!r} is not an RFC 3339 timestamp"
        ) from None


def _check_device(spec: FieldSpec, value: Any) -> Device:
    name = _check_string(spec, value)
    if name not in DEVICES:
        raise _InvalidError(
            "invalid_value", f"{spec.name} {name[:32]!r} is not one of {', '.join(DEVICES)}"
        )
    return Device(name)


def _check_code(pattern: re.Pattern[str], what: str) -> Callable[[FieldSpec, Any], str]:
    def check(spec: FieldSpec, value: Any) -> str:
        # Matched before upper-casing: "ß".upper() is "SS".
        if not pattern.search(_check_string(spec, value)):
            raise _InvalidError("invalid_value", f"{spec.name} {value[:16]!r} is not {what}")
        return str(value).upper()

    return check


def _check_decimal(spec: FieldSpec, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _InvalidError(
            "wrong_type", f"{spec.name} must be a number or numeric string, got {_json_type(value)}"
        )
    if isinstance(value, str):
        if not _MONEY.search(value):
            raise _InvalidError(
                "invalid_value",
                f"{spec.name} {value!r:.32} is not a decimal like 12.50 "
                f"(digits, at most {MAX_DECIMAL_PLACES} places)",
            )
        return Decimal(value)
    if value < 0 or value >= MAX_MONEY:  # floats are finite: orjson refuses NaN and Infinity
        raise _InvalidError(
            "invalid_value", f"{spec.name} {value!r:.32} must be between 0 and {MAX_MONEY}"
        )
    # str() of a float is its shortest round-trip form, so 19.99 stays 19.99.
    amount = Decimal(str(value))
    if -amount.as_tuple().exponent > MAX_DECIMAL_PLACES:  # type: ignore[operator]
        amount = amount.quantize(_PLACES, rounding=ROUND_HALF_EVEN)
    return amount


def _check_items(spec: FieldSpec, value: Any) -> list[Item]:
    if not isinstance(value, list):
        raise _InvalidError("wrong_type", f"items must be a list, got {_json_type(value)}")
    if len(value) > MAX_ITEMS:
        raise _InvalidError("invalid_value", f"items has {len(value)} lines, limit {MAX_ITEMS}")
    return [_check_item(index, line) for index, line in enumerate(value)]


_SKU = FieldSpec("sku", Kind.ID, True, "")
_PRICE = FieldSpec("price", Kind.DECIMAL, True, "")


def _check_item(index: int, line: Any) -> Item:
    where = f"items[{index}]"
    if not isinstance(line, dict):
        raise _InvalidError("wrong_type", f"{where} must be an object, got {_json_type(line)}")
    for name in ("sku", "quantity", "price"):
        if line.get(name) is None:
            raise _InvalidError("missing_field", f"missing field {where}.{name}")
    quantity = line["quantity"]
    if isinstance(quantity, float) and quantity.is_integer():
        quantity = int(quantity)  # 2.0 is an integer to JSON Schema too
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise _InvalidError(
            "wrong_type", f"{where}.quantity must be an integer, got {_json_type(quantity)}"
        )
    if not 1 <= quantity <= MAX_QUANTITY:
        raise _InvalidError("invalid_value", f"{where}.quantity {quantity} must be >= 1")
    try:
        return Item(_check_id(_SKU, line["sku"]), quantity, _check_decimal(_PRICE, line["price"]))
    except _InvalidError as invalid:
        raise _InvalidError(invalid.rejection.code, f"{where}.{invalid.rejection.detail}") from None


_CHECKS: dict[Kind, Callable[[FieldSpec, Any], Any]] = {
    Kind.ID: _check_id,
    Kind.TEXT: _check_string,
    Kind.EVENT_TYPE: _check_event_type,
    Kind.TIMESTAMP: _check_timestamp,
    Kind.DEVICE: _check_device,
    Kind.COUNTRY: _check_code(_COUNTRY, "an ISO 3166-1 alpha-2 country code"),
    Kind.CURRENCY: _check_code(_CURRENCY, "an ISO 4217 currency code"),
    Kind.DECIMAL: _check_decimal,
    Kind.ITEMS: _check_items,
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _human_bytes(size: int) -> str:
    if size >= 1_048_576:
        return f"{size / 1_048_576:.1f} MB".replace(".0 MB", " MB")
    return f"{size / 1024:.1f} KB".replace(".0 KB", " KB")


def _iso(epoch_ms: int) -> str:
    try:
        return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="seconds")
    except (OverflowError, ValueError, OSError):
        return f"{epoch_ms} ms"
