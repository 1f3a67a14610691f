"""Ad spend contract: one row of spend per (site, UTC day, source, campaign, currency).

The same rules for a CSV line and a `funnel.ad_spend` message; a bad row is a `Rejection`.
Channels are normalised with `normalise_channel` here and with the same rule in SQL for events
(`sinks.marketing_queries.CHANNEL_SQL`): surrounding spaces and tabs trimmed, lower case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from schemas.contract import CURRENCIES, MAX_DECIMAL_PLACES, MAX_MONEY
from schemas.decode import Rejection

TRIMMED = " \t"  # what `normalise_channel` strips; CHANNEL_SQL trims the same characters
REQUIRED = ("date", "site_id", "utm_source", "cost", "currency")
OPTIONAL = ("utm_campaign", "clicks", "impressions", "updated_at")


def normalise_channel(text: str) -> str:
    """How utm_source and utm_campaign are matched: trimmed of spaces and tabs, lower case."""
    return text.strip(TRIMMED).lower()


@dataclass(frozen=True, slots=True)
class SpendRow:
    site_id: str
    day: date  # a UTC day
    utm_source: str  # normalised, never empty
    utm_campaign: str  # normalised, may be empty
    currency: str
    cost: Decimal
    clicks: int
    impressions: int
    updated_at_ms: int  # last write wins by this

    @property
    def identity(self) -> tuple[str, date, str, str, str]:
        return (self.site_id, self.day, self.utm_source, self.utm_campaign, self.currency)


class _BadRowError(Exception):
    pass


def decode_spend(
    fields: Mapping[str, Any], *, ingested_at_ms: int, default_site: str | None = None
) -> SpendRow | Rejection:
    """One spend row from a CSV line's or a JSON message's fields; never raises on input.

    `updated_at` (RFC 3339 or epoch ms) orders rewrites; without it, `ingested_at_ms` does."""
    try:
        return _build(fields, ingested_at_ms, default_site)
    except _BadRowError as exc:
        return Rejection("invalid_spend", str(exc))


def decode_spend_message(raw: bytes, *, ingested_at_ms: int) -> SpendRow | Rejection:
    """A `funnel.ad_spend` message: one JSON object with the CSV's fields."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("not_json", f"not JSON: {str(exc)[:120]}")
    if not isinstance(doc, dict):
        return Rejection("not_object", "a spend message must be a JSON object")
    return decode_spend(doc, ingested_at_ms=ingested_at_ms)


def _build(fields: Mapping[str, Any], ingested_at_ms: int, default_site: str | None) -> SpendRow:
    site = _text(fields, "site_id") or (default_site or "")
    if not site:
        raise _BadRowError("missing site_id (a column, or --site)")
    source = normalise_channel(_text(fields, "utm_source"))
    if not source:
        raise _BadRowError("missing utm_source")
    currency = _text(fields, "currency").strip().upper()
    if currency not in CURRENCIES:
        raise _BadRowError(f"unknown currency {currency[:16]!r} (ISO 4217 expected)")
    return SpendRow(
        site_id=site,
        day=_day(_text(fields, "date")),
        utm_source=source,
        utm_campaign=normalise_channel(_text(fields, "utm_campaign")),
        currency=currency,
        cost=_cost(fields.get("cost")),
        clicks=_count(fields, "clicks"),
        impressions=_count(fields, "impressions"),
        updated_at_ms=_updated_at(fields.get("updated_at"), ingested_at_ms),
    )


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _BadRowError(f"{name} must be a string")
    if len(value) > 256:
        raise _BadRowError(f"{name} is {len(value)} chars, limit 256")
    return value


def _day(text: str) -> date:
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise _BadRowError(f"bad date {text[:32]!r} (YYYY-MM-DD expected)") from None


def _cost(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _BadRowError("missing cost" if value is None else "cost must be a number")
    try:
        cost = Decimal(str(value).strip())
    except InvalidOperation:
        raise _BadRowError(f"cost {str(value)[:32]!r} is not a number") from None
    if not cost.is_finite():
        raise _BadRowError(f"cost {value!r} is not a number")
    if cost < 0:
        raise _BadRowError(f"negative cost {value}")
    if cost >= MAX_MONEY or -cost.as_tuple().exponent > MAX_DECIMAL_PLACES:  # type: ignore[operator]
        raise _BadRowError(f"cost {value} has more than {MAX_DECIMAL_PLACES} decimals or is huge")
    return cost


def _count(fields: Mapping[str, Any], name: str) -> int:
    value = fields.get(name)
    if value is None or value == "":
        return 0
    try:
        count = int(value) if not isinstance(value, bool | float) else -1
    except ValueError:
        count = -1
    if count < 0:
        raise _BadRowError(f"{name} {str(value)[:32]!r} is not a whole number >= 0")
    return count


def _updated_at(value: Any, ingested_at_ms: int) -> int:
    if value is None or value == "":
        return ingested_at_ms
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _BadRowError(f"updated_at {str(value)[:40]!r} is not RFC 3339 with an offset")
    return int(moment.timestamp() * 1000)
