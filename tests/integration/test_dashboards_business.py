"""The Marketing and Customers dashboards equal `funnel marketing` and `funnel customers`."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client

from deploy.grafana.dashgen import customers, marketing
from sinks.customer_queries import CustomersQuery, query_customers
from sinks.marketing_queries import MarketingQuery, Sold, Spend, query_marketing
from streams.report.customers import cohorts
from streams.report.segments import score
from tests.integration.grafana_panels import FULL, SITE, chdb, panel

pytestmark = pytest.mark.integration
__all__ = ["chdb"]  # the fixture (grafana_panels): pytest finds it by its name here


def test_marketing_numbers_equal_funnel_marketing(chdb: Client) -> None:
    counts = query_marketing(chdb, "funnel", MarketingQuery(SITE, FULL.start, FULL.end))
    rows = panel(chdb, marketing.per_channel())
    got = {
        (r["channel"], r["currency"]): (r["total_spend"], r["total_revenue"], r["customers"])
        for r in rows
    }
    expected = {
        key: (
            counts.spend.get(key, Spend(Decimal(0), 0)).cost,
            counts.sales.get(key, Sold(0, Decimal(0), 0, 0)).revenue,
            counts.sales.get(key, Sold(0, Decimal(0), 0, 0)).new_customers,
        )
        for key in counts.spend.keys() | counts.sales.keys()
    }
    assert got == expected
    assert any(spend > 0 for spend, _, _ in got.values())
    assert any(customers > 0 for _, _, customers in got.values())


def test_customer_cohorts_equal_funnel_customers(chdb: Client) -> None:
    facts = query_customers(chdb, "funnel", CustomersQuery(SITE, FULL.end))
    expected = {row["cohort"][:7]: row["size"] for row in cohorts(facts, FULL.end, "month", 1)}
    rows = panel(chdb, customers.retention_triangle())
    assert {r["cohort"]: r["customers"] for r in rows if r["months_after"] == 0} == expected
    assert all(r["retention"] == 1.0 for r in rows if r["months_after"] == 0)
    new = sum(r["new_customers"] for r in panel(chdb, customers.new_and_returning()))
    assert new == len(facts.customers) > 0


def test_segments_at_the_range_end_equal_funnel_customers(chdb: Client) -> None:
    facts = query_customers(chdb, "funnel", CustomersQuery(SITE, FULL.end))
    expected = Counter(s.segment for s in score(list(facts.customers.values()), FULL.end))
    rows = panel(chdb, customers.segments_over_time())
    last = max(r["time"] for r in rows)
    assert {r["segment"]: r["customers"] for r in rows if r["time"] == last} == expected
