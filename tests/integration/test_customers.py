"""Issue 14: `funnel customers` equals a reference computed from the raw events.

The facts of simulated sessions (40 users over 45 days, guest orders, two currencies, orders
delivered twice and retried from another session with a new event id) go into a real chDB. The
summary, the monthly and weekly cohorts, RFM/LFRM scores and segments must equal a Python
reference over the raw events, for an `as_of` with orders on both sides; rows inserted in
another order, or twice, change no segment.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.event import Event, EventType
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from sinks.customer_queries import CustomersQuery, query_customers
from sinks.tables import COLUMNS
from streams.funnel.rules import FunnelRules
from streams.report.customers import CustomersRequest
from streams.report.customers_view import customers_document, render_customers
from streams.report.numbers import money
from streams.worker.sink_rows import fact_row
from tests.integration.marketing_reference import ms
from tests.integration.test_marketing import BASE, SITE, simulated_events
from tests.unit.funnel.reference import reference

pytestmark = pytest.mark.integration

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


def expected(events: list[Event], as_of: datetime) -> dict[str, Any]:
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


def test_customers_equal_the_reference_whatever_the_row_order(tmp_path: Path) -> None:
    events = simulated_events(seed=11)
    facts = reference(events, FunnelRules())
    rows = [fact_row(f) for f in [*facts.stages, *facts.orders]]
    as_of = BASE + timedelta(days=33, hours=5, milliseconds=250)
    config = ClickHouseConfig(dsn=f"chdb:///{(tmp_path / 'chdb').resolve()}")
    client = connect(config)
    try:
        migrate(client, config, now=datetime.now(UTC))

        def insert(ordered: list[tuple[str, Any]]) -> None:
            for table in ("stage_entries", "orders"):
                data = [row for name, row in ordered if name == table]
                client.insert(f"funnel.{table}", data, column_names=COLUMNS[table])

        insert(rows)
        request = CustomersRequest(CustomersQuery(SITE, as_of), "month", 3, segments=True)
        found = query_customers(client, "funnel", request.query)
        got = orjson.loads(orjson.dumps(customers_document(request, found)))
        exp = expected(events, as_of)
        for key in ("customers", "guest_orders", "repeat_customers", "repeat_purchase_rate",
                    "orders_per_customer", "aov", "historical_clv", "clv_to_aov"):  # fmt: skip
            assert got[key] == exp[key], key
        assert got["cohorts"] == monthly_cohorts(exp, as_of)
        weekly = CustomersRequest(request.query, "week", 6)
        assert orjson.loads(orjson.dumps(customers_document(weekly, found)))["cohorts"] == (
            weekly_cohorts(exp, as_of, 6)
        )
        assert exp["guest_orders"] > 0
        assert set(exp["aov"]) == {"EUR", "USD"}
        # Orders after as_of exist and did not count.
        assert (
            len(orders_before(events, ms(as_of) + 30 * DAY))
            > sum(len(p) for p in exp["by_user"].values()) + exp["guest_orders"]
        )

        exported: dict[str, str] = {}
        for name in {s["segment"] for s in got["segments"]}:
            text = render_customers(
                CustomersRequest(request.query, segment=name, as_csv=True), found
            ).decode()
            for line in csv.DictReader(io.StringIO(text)):
                exported[line["user_id"]] = line["segment"]
                scores = tuple(int(line[k]) for k in ("r", "f", "m", "l"))
                assert scores == exp["scores"][line["user_id"]], line
        assert exported == exp["segments"]  # every customer in exactly one segment
        counts = {s["segment"]: s["customers"] for s in got["segments"]}
        assert sum(counts.values()) == exp["customers"]
        assert len([c for c in counts.values() if c]) >= 4

        # Shuffled and inserted again: the same segments and figures.
        shuffled = rows[:]
        random.Random(3).shuffle(shuffled)
        insert(shuffled)
        again = orjson.loads(
            orjson.dumps(customers_document(request, query_customers(client, "funnel",
                                                                     request.query)))
        )  # fmt: skip
        assert again == got
    finally:
        client.close()
