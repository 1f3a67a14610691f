"""`funnel marketing` computed the obvious way, in Python, from raw events and spend rows.

Independent of the SQL: it reads the events themselves (not the funnel facts), deduplicates
orders by (site, order_id) keeping the earliest, finds first orders over every order ever, and
walks each user's sessions for last-non-direct attribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from schemas.event import Event, EventType
from schemas.spend import SpendRow
from streams.report.numbers import money

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1) + (
        1 if (moment - EPOCH) % timedelta(milliseconds=1) else 0
    )


def norm(text: str | None) -> str:
    return (text or "").strip(" \t").lower()


@dataclass
class _Session:
    site: str
    session_id: str
    started_ms: int | None = None  # first page view
    first_ms: int | None = None
    source: str = ""
    campaign: str = ""
    users: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Order:
    order_id: str
    at_ms: int
    session: _Session
    user: str
    value: Decimal
    currency: str


def _sessions(events: list[Event]) -> dict[tuple[str, str], _Session]:
    sessions: dict[tuple[str, str], _Session] = {}
    for e in sorted(events, key=lambda e: e.occurred_at_ms):
        s = sessions.setdefault((e.site_id, e.session_id), _Session(e.site_id, e.session_id))
        if s.first_ms is None:
            s.first_ms, s.source, s.campaign = (
                e.occurred_at_ms,
                norm(e.utm_source),
                norm(e.utm_campaign),
            )
        if e.event_type is EventType.PAGE_VIEW and s.started_ms is None:
            s.started_ms = e.occurred_at_ms
        if e.user_id:
            s.users.add(e.user_id)
    return sessions


def _orders(events: list[Event], sessions: dict[tuple[str, str], _Session]) -> list[_Order]:
    first: dict[tuple[str, str], Event] = {}
    for e in events:
        if e.event_type is EventType.PURCHASE and e.order_id:
            seen = first.get((e.site_id, e.order_id))
            if seen is None or e.occurred_at_ms < seen.occurred_at_ms:
                first[(e.site_id, e.order_id)] = e
    return [
        _Order(
            e.order_id or "",
            e.occurred_at_ms,
            sessions[(e.site_id, e.session_id)],
            e.user_id or "",
            e.value or Decimal(0),
            e.currency or "",
        )
        for e in first.values()
    ]


def _channel(by: str, source: str, campaign: str) -> str:
    if not source:
        return "(direct)"
    if by == "utm_source":
        return source
    return campaign or "(none)"


def expected_marketing(
    events: list[Event],
    spend: list[SpendRow],
    *,
    site: str,
    start: datetime,
    end: datetime,
    by: str,
    attribution: str,
    margin: Decimal = Decimal(1),
    lookback: timedelta = timedelta(days=30),
) -> dict[str, Any]:
    lo, hi = ms(start), ms(end)
    sessions = {k: s for k, s in _sessions(events).items() if s.site == site}
    orders = _orders([e for e in events if e.site_id == site], sessions)
    first_order: dict[str, tuple[int, str]] = {}
    for o in orders:
        if o.user:
            first_order[o.user] = min(first_order.get(o.user, (o.at_ms, o.order_id)),
                                      (o.at_ms, o.order_id))  # fmt: skip
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    session_counts: dict[str, int] = {}
    for s in sessions.values():
        if s.started_ms is not None and lo <= s.started_ms < hi:
            key = _channel(by, s.source, s.campaign)
            session_counts[key] = session_counts.get(key, 0) + 1

    def cell(key: str, currency: str) -> dict[str, Any]:
        return cells.setdefault((key, currency), _zero())

    for o in orders:
        if not lo <= o.at_ms < hi:
            continue
        source, campaign = o.session.source, o.session.campaign
        if attribution == "last_non_direct" and o.user:
            touches = [
                s for s in sessions.values()
                if o.user in s.users and s.source and s.started_ms is not None
                and o.at_ms - lookback // timedelta(milliseconds=1) <= s.started_ms <= o.at_ms
            ]  # fmt: skip
            if touches:
                latest = max(touches, key=lambda s: (s.started_ms or 0, s.session_id))
                source, campaign = latest.source, latest.campaign
        c = cell(_channel(by, source, campaign), o.currency)
        c["orders"] += 1
        c["revenue"] += o.value
        c["guest_orders"] += 0 if o.user else 1
        c["new_customers"] += 1 if o.user and first_order[o.user] == (o.at_ms, o.order_id) else 0
    for key, currency, cost, clicks in _spend(spend, site, lo, hi, by):
        c = cell(key, currency)
        c["spend"] += cost
        c["clicks"] += clicks
    channels = []
    for (key, currency), c in cells.items():
        channels.append(_row(key, currency, c, session_counts.get(key, 0), margin))
    for key, n in session_counts.items():
        if not any(k == key for k, _ in cells):
            channels.append(_row(key, None, _zero(), n, margin))
    channels.sort(key=lambda r: (-Decimal(r["spend"]), r["key"], r["currency"] or ""))
    total_sessions = sum(session_counts.values())
    totals = []
    for currency in sorted({cur for _, cur in cells}):
        summed = {
            name: sum((c[name] for (_, cur), c in cells.items() if cur == currency),
                      Decimal(0) if name in ("spend", "revenue") else 0)
            for name in ("spend", "clicks", "orders", "guest_orders", "revenue", "new_customers")
        }  # fmt: skip
        totals.append(_row("", currency, summed, total_sessions, margin))
    if not totals:
        totals.append(_row("", None, _zero(), total_sessions, margin))
    for t in totals:
        del t["key"]
    return {"channels": channels, "totals": totals, "margin": str(margin)}


def _spend(
    spend: list[SpendRow], site: str, lo: int, hi: int, by: str
) -> list[tuple[str, str, Decimal, int]]:
    """(channel, currency, cost, clicks) of the latest row per identity, days starting in range."""
    latest: dict[tuple[Any, ...], SpendRow] = {}
    for row in spend:
        if row.site_id == site:
            kept = latest.get(row.identity)
            if kept is None or row.updated_at_ms >= kept.updated_at_ms:
                latest[row.identity] = row
    return [
        (_channel(by, row.utm_source, row.utm_campaign), row.currency, row.cost, row.clicks)
        for row in latest.values()
        if lo <= ms(datetime(row.day.year, row.day.month, row.day.day, tzinfo=UTC)) < hi
    ]


def _zero() -> dict[str, Any]:
    return {
        "spend": Decimal(0), "clicks": 0, "orders": 0, "guest_orders": 0, "revenue": Decimal(0),
        "new_customers": 0,
    }  # fmt: skip


def _row(
    key: str, currency: str | None, c: dict[str, Any], sessions: int, margin: Decimal
) -> dict[str, Any]:
    with localcontext() as context:
        context.prec = 60
        spend, revenue = c["spend"], c["revenue"]
        return {
            "key": key,
            "currency": currency,
            "spend": money(spend),
            "clicks": c["clicks"],
            "sessions": sessions,
            "orders": c["orders"],
            "guest_orders": c["guest_orders"],
            "revenue": money(revenue),
            "new_customers": c["new_customers"],
            "cpo": money(spend / c["orders"]) if c["orders"] else None,
            "cac": money(spend / c["new_customers"]) if c["new_customers"] else None,
            "roas": float(revenue / spend) if spend else None,
            "romi": float((revenue * margin - spend) / spend) if spend else None,
            "conversion": c["orders"] / sessions if sessions else None,
        }


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    return {name: document[name] for name in ("channels", "totals", "margin")}
