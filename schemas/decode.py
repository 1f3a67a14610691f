"""Bytes in, `Event` or `Rejection` out. Never raises on input: bad input is data."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from schemas.contract import (
    DEVICES,
    EVENT_TYPE_ALIASES,
    FIELDS,
    MAX_DECIMAL_PLACES,
    MAX_ITEMS,
    MAX_MONEY,
    MAX_QUANTITY,
    FieldSpec,
    Kind,
)
from schemas.event import Device, Event, EventType, Item

_HOUR_MS = 3_600_000
_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")


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
    if values["event_type"] is EventType.PURCHASE and "order_id" not in values:
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


def _check_event_type(spec: FieldSpec, value: Any) -> EventType:
    if not isinstance(value, str):
        raise _InvalidError("wrong_type", f"{spec.name} must be a string, got {_json_type(value)}")
    name = value
    event_type = EVENT_TYPE_ALIASES.get(name)
    if event_type is None:
        raise _InvalidError("unknown_event_type", f"unknown event_type {name[:64]!r}")
    return event_type


def _check_timestamp(spec: FieldSpec, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _InvalidError(
            "wrong_type",
            f"{spec.name} must be an RFC 3339 string or epoch milliseconds, "
            f"got {_json_type(value)}",
        )
    if isinstance(value, int):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _InvalidError(
            "invalid_value", f"{spec.name} {value[:64]!r} is not an RFC 3339 timestamp"
        ) from None
    if parsed.tzinfo is None:
        raise _InvalidError("invalid_value", f"{spec.name} {value[:64]!r} has no UTC offset")
    return int(parsed.timestamp() * 1000)


def _check_device(spec: FieldSpec, value: Any) -> Device:
    name = _check_string(spec, value)
    if name not in DEVICES:
        raise _InvalidError(
            "invalid_value", f"{spec.name} {name[:32]!r} is not one of {', '.join(DEVICES)}"
        )
    return Device(name)


def _check_code(pattern: re.Pattern[str], what: str) -> Callable[[FieldSpec, Any], str]:
    def check(spec: FieldSpec, value: Any) -> str:
        code = _check_string(spec, value).upper()
        if not pattern.fullmatch(code):
            raise _InvalidError("invalid_value", f"{spec.name} {value[:16]!r} is not {what}")
        return code

    return check


def _check_decimal(spec: FieldSpec, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _InvalidError(
            "wrong_type", f"{spec.name} must be a number or numeric string, got {_json_type(value)}"
        )
    try:
        # str() of a float is its shortest round-trip form, so 19.99 stays 19.99.
        amount = Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise _InvalidError("invalid_value", f"{spec.name} {value!r:.32} is not a number") from None
    if not amount.is_finite() or amount < 0 or amount >= MAX_MONEY:
        raise _InvalidError(
            "invalid_value", f"{spec.name} {value!r:.32} must be between 0 and {MAX_MONEY}"
        )
    if -amount.as_tuple().exponent > MAX_DECIMAL_PLACES:  # type: ignore[operator]
        raise _InvalidError(
            "invalid_value",
            f"{spec.name} {value!r:.32} has more than {MAX_DECIMAL_PLACES} decimal places",
        )
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
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise _InvalidError(
            "wrong_type", f"{where}.quantity must be an integer, got {_json_type(quantity)}"
        )
    if not 1 <= quantity <= MAX_QUANTITY:
        raise _InvalidError("invalid_value", f"{where}.quantity {quantity} must be >= 1")
    try:
        return Item(
            _check_string(_SKU, line["sku"]), quantity, _check_decimal(_PRICE, line["price"])
        )
    except _InvalidError as invalid:
        raise _InvalidError(invalid.rejection.code, f"{where}.{invalid.rejection.detail}") from None


_CHECKS: dict[Kind, Callable[[FieldSpec, Any], Any]] = {
    Kind.ID: _check_string,
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
