"""`funnel marketing`: spend against what it brought, per channel and currency, and the KPIs.

Pure: the counts come from `sinks.marketing_queries`. Money stays exact (Decimal) until it is
shown, rounded once to the cent like the report. A ratio with a zero denominator is None (null):
CPO = spend / orders, CAC = spend / new customers, ROAS = revenue / spend,
ROMI = (revenue * margin - spend) / spend, conversion = orders / sessions. Spend and revenue in
different currencies are never mixed (no FX): a channel gets one row per currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from sinks.marketing_queries import (
    DEFAULT_LOOKBACK,
    Attribution,
    MarketingCounts,
    MarketingQuery,
    Sold,
    Spend,
)
from streams.report.numbers import money, parse_instant, ratio, require

DAY_RULE = "a day's spend counts when its start (00:00 UTC) lies in [from, to)"
FX_NOTE = "no FX rate is applied: spend and revenue in different currencies are separate rows"
_NO_SPEND = Spend(Decimal(0), 0)
_NO_SALES = Sold(0, Decimal(0), 0, 0)


def parse_margin(text: str) -> Decimal:
    try:
        margin = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"margin {text!r} is not a number") from None
    if not margin.is_finite() or not 0 <= margin <= 1:
        raise ValueError(f"margin {text!r} must be between 0 and 1")
    return margin


@dataclass(frozen=True, slots=True)
class MarketingRequest:
    query: MarketingQuery
    margin: Decimal = Decimal(1)
    as_json: bool = False

    def head(self) -> dict[str, Any]:
        """What was asked: the document's first keys and, as text, the endpoint's parameters."""
        q = self.query
        return {
            "site": q.site_id,
            "from": q.start.isoformat(),
            "to": q.end.isoformat(),
            "by": q.by,
            "attribution": q.attribution.value,
            "lookback_days": q.lookback.days,
            "margin": str(self.margin),
        }

    def as_params(self) -> dict[str, str]:
        """URL query parameters for the worker's /marketing endpoint."""
        params = {name: str(value) for name, value in self.head().items()}
        return params | {"format": "json" if self.as_json else "table"}

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> MarketingRequest:
        """The inverse of `as_params`; ValueError names what is missing or wrong."""
        require(params, "site", "from", "to")
        attribution = params.get("attribution", Attribution.FIRST_TOUCH.value)
        if attribution not in {a.value for a in Attribution}:
            raise ValueError(f"attribution must be one of {[a.value for a in Attribution]}")
        query = MarketingQuery(
            params["site"],
            parse_instant(params["from"]),
            parse_instant(params["to"]),
            params.get("by") or "utm_source",
            Attribution(attribution),
            timedelta(days=int(params.get("lookback_days", DEFAULT_LOOKBACK.days))),
        )
        output = params.get("format", "table")
        if output not in ("json", "table"):
            raise ValueError("format must be json or table")
        return cls(query, parse_margin(params.get("margin", "1")), as_json=output == "json")


@dataclass(frozen=True, slots=True)
class ChannelRow:
    key: str
    currency: str | None  # None: a channel with sessions but neither spend nor orders
    spend: Spend
    sessions: int
    sold: Sold


def channel_rows(counts: MarketingCounts) -> list[ChannelRow]:
    """One row per channel and currency; a channel's sessions appear on each of its rows.

    Sorted by spend (largest first), then channel and currency."""
    currencies: dict[str, set[str]] = {key: set() for key in counts.sessions}
    for key, currency in counts.spend.keys() | counts.sales.keys():
        currencies.setdefault(key, set()).add(currency)
    rows = [
        ChannelRow(
            key,
            currency,
            counts.spend.get((key, currency or ""), _NO_SPEND),
            counts.sessions.get(key, 0),
            counts.sales.get((key, currency or ""), _NO_SALES),
        )
        for key, found in currencies.items()
        for currency in (sorted(found) if found else [None])
    ]
    return sorted(rows, key=lambda r: (-r.spend.cost, r.key, r.currency or ""))


def total_rows(rows: list[ChannelRow], counts: MarketingCounts) -> list[ChannelRow]:
    """Per currency, all channels together; sessions are the site's."""
    sessions = sum(counts.sessions.values())
    totals: dict[str, ChannelRow] = {}
    for row in rows:
        if row.currency is None:
            continue
        seen = totals.get(row.currency)
        if seen is None:
            totals[row.currency] = ChannelRow("", row.currency, row.spend, sessions, row.sold)
        else:
            totals[row.currency] = ChannelRow(
                "", row.currency, _add_spend(seen.spend, row.spend), sessions,
                _add_sold(seen.sold, row.sold),
            )  # fmt: skip
    if not totals:
        return [ChannelRow("", None, _NO_SPEND, sessions, _NO_SALES)]
    return [totals[c] for c in sorted(totals)]


def _add_spend(a: Spend, b: Spend) -> Spend:
    return Spend(a.cost + b.cost, a.clicks + b.clicks)


def _add_sold(a: Sold, b: Sold) -> Sold:
    return Sold(
        a.orders + b.orders,
        a.revenue + b.revenue,
        a.guest_orders + b.guest_orders,
        a.new_customers + b.new_customers,
    )


def _divide(part: Decimal, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    with localcontext() as context:
        context.prec = 60
        return part / whole


def _money_or_none(amount: Decimal | None) -> str | None:
    return None if amount is None else money(amount)


def _float_or_none(amount: Decimal | None) -> float | None:
    return None if amount is None else float(amount)


def row_json(row: ChannelRow, margin: Decimal) -> dict[str, Any]:
    spend, sold = row.spend.cost, row.sold
    with localcontext() as context:
        context.prec = 60
        profit = sold.revenue * margin - spend
    return {
        "key": row.key,
        "currency": row.currency,
        "spend": money(spend),
        "clicks": row.spend.clicks,
        "sessions": row.sessions,
        "orders": sold.orders,
        "guest_orders": sold.guest_orders,
        "revenue": money(sold.revenue),
        "new_customers": sold.new_customers,
        "cpo": _money_or_none(_divide(spend, sold.orders)),
        "cac": _money_or_none(_divide(spend, sold.new_customers)),
        "roas": _float_or_none(_divide(sold.revenue, spend)),
        "romi": _float_or_none(_divide(profit, spend)),
        "conversion": ratio(sold.orders, row.sessions),
    }


def marketing_document(request: MarketingRequest, counts: MarketingCounts) -> dict[str, Any]:
    """The JSON document `funnel marketing --json` prints and the endpoint serves."""
    rows = channel_rows(counts)
    return request.head() | {
        "spend_days": DAY_RULE,
        "fx": FX_NOTE,
        "channels": [row_json(row, request.margin) for row in rows],
        "totals": [
            {k: v for k, v in row_json(row, request.margin).items() if k != "key"}
            for row in total_rows(rows, counts)
        ],
    }
