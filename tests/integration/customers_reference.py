"""`funnel customers` computed the obvious way, in Python, from the raw events of `kpi_events`.

Orders are deduplicated by order id keeping the earliest; scores are quintiles over the
customers, ties broken by user id; cohorts group customers by their first order.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from schemas.event import Event, EventType
from streams.report.numbers import money
from tests.integration.kpi_events import SITE
from tests.integration.marketing_reference import ms

# The customers document's summary figures, each compared with the reference's.
SUMMARY = ("customers", "guest_orders", "repeat_customers", "repeat_purchase_rate",
           "orders_per_customer", "aov", "historical_clv", "clv_to_aov")  # fmt: skip
DAY = 86_400_000


def orders_before(events: list[Event], as_of_ms: int) -> dict[str, Event]:
    first: dict[str, Event] = {}
    for e in events:
        if e.site_id == SITE and e.event_type is EventType.PURCHASE and e.order_id:
            seen = first.get(e.order_id)
            if seen is None or e.occurred_at_ms < seen.occurred_at_ms:
                first[e.order_id] = e
    return {oid: e for oid, e in first.items() if e.occurred_at_ms < as_of_ms}


def quintile(values: dict[str, Any]) -> dict[str, int]:
    ranked = sorted(values, key=lambda u: (values[u], u))
    return {u: 1 + 5 * i // len(ranked) for i, u in enumerate(ranked)}


def segment(r: int, f: int) -> str:
    if r >= 4 and f >= 4:
        return "champions"
    if r >= 3 and f >= 3:
        return "loyal"
    if r >= 4 and f == 1:
        return "new"
    if r >= 3:
        return "potential_loyalists"
    if f >= 4:
        return "cant_lose"
    if r == 2 and f >= 2:
        return "at_risk"
    if r == 2 or f >= 2:
        return "hibernating"
    return "lost"


def expected_customers(events: list[Event], as_of: datetime) -> dict[str, Any]:
    end = ms(as_of)
    orders = orders_before(events, end)
    by_user: dict[str, list[Event]] = {}
    guests = 0
    for e in orders.values():
        if e.user_id:
            by_user.setdefault(e.user_id, []).append(e)
        else:
            guests += 1
    n = len(by_user)
    revenue: dict[str, Decimal] = {}
    count: dict[str, int] = {}
    buyers: dict[str, set[str]] = {}
    for user, placed in by_user.items():
        for e in placed:
            cur = e.currency or ""
            revenue[cur] = revenue.get(cur, Decimal(0)) + (e.value or Decimal(0))
            count[cur] = count.get(cur, 0) + 1
            buyers.setdefault(cur, set()).add(user)
    repeat = sum(1 for placed in by_user.values() if len(placed) >= 2)
    aov = {c: revenue[c] / count[c] for c in revenue}
    clv = {c: revenue[c] / len(buyers[c]) for c in revenue}
    sessions_in_window = {
        (e.user_id, e.session_id) for e in events
        if e.site_id == SITE and e.user_id and e.event_type is EventType.PAGE_VIEW
        and end - 90 * DAY <= e.occurred_at_ms < end
    }  # fmt: skip
    loyalty = {u: sum(1 for user, _ in sessions_in_window if user == u) for u in by_user}
    last = {u: max(e.occurred_at_ms for e in p) for u, p in by_user.items()}
    recency = {u: (end - t) // DAY for u, t in last.items()}
    r = quintile({u: -d for u, d in recency.items()})
    f = quintile({u: len(p) for u, p in by_user.items()})
    m_value = {u: sum((e.value or Decimal(0) for e in p), Decimal(0)) for u, p in by_user.items()}
    m = quintile(dict(m_value))
    loyal = quintile(loyalty)
    return {
        "customers": n,
        "guest_orders": guests,
        "repeat_customers": repeat,
        "repeat_purchase_rate": repeat / n,
        "orders_per_customer": sum(len(p) for p in by_user.values()) / n,
        "aov": {c: money(v) for c, v in sorted(aov.items())},
        "historical_clv": {c: money(v) for c, v in sorted(clv.items())},
        "clv_to_aov": {c: float(clv[c] / aov[c]) for c in sorted(revenue)},
        "segments": {u: segment(r[u], f[u]) for u in by_user},
        "scores": {u: (r[u], f[u], m[u], loyal[u]) for u in by_user},
        "measures": {u: (recency[u], len(p), m_value[u], loyalty[u]) for u, p in by_user.items()},
        "first_months": {u: min(e.occurred_at_ms for e in p) for u, p in by_user.items()},
        "by_user": by_user,
    }


def monthly_cohorts(exp: dict[str, Any], as_of: datetime) -> list[dict[str, Any]]:
    def month(at_ms: int) -> tuple[int, int]:
        d = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
        return d.year, d.month

    groups: dict[tuple[int, int], list[str]] = {}
    for u, first in exp["first_months"].items():
        groups.setdefault(month(first), []).append(u)
    rows = []
    for (y, m), users in sorted(groups.items()):
        shares: list[float | None] = []
        for k in (1, 2, 3):
            ky, km = y + (m - 1 + k) // 12, (m - 1 + k) % 12 + 1
            if datetime(ky, km, 1, tzinfo=UTC) >= as_of:
                shares.append(None)
                continue
            back = sum(
                1 for u in users
                if any(month(e.occurred_at_ms) == (ky, km) for e in exp["by_user"][u])
            )  # fmt: skip
            shares.append(back / len(users))
        rows.append({"cohort": f"{y:04d}-{m:02d}", "size": len(users), "retention": shares})
    return rows


def weekly_cohorts(exp: dict[str, Any], as_of: datetime, periods: int) -> list[dict[str, Any]]:
    def monday(at_ms: int) -> date:
        d = datetime.fromtimestamp(at_ms / 1000, tz=UTC).date()
        return d - timedelta(days=d.weekday())

    groups: dict[date, list[str]] = {}
    for u, first in exp["first_months"].items():
        groups.setdefault(monday(first), []).append(u)
    rows = []
    for week, users in sorted(groups.items()):
        shares: list[float | None] = []
        for k in range(1, periods + 1):
            lo = week + timedelta(weeks=k)
            if datetime(lo.year, lo.month, lo.day, tzinfo=UTC) >= as_of:
                shares.append(None)
                continue
            back = sum(
                1 for u in users if any(monday(e.occurred_at_ms) == lo for e in exp["by_user"][u])
            )
            shares.append(back / len(users))
        rows.append({"cohort": week.isoformat(), "size": len(users), "retention": shares})
    return rows
