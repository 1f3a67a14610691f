"""Issue 13: `funnel marketing` equals a reference computed from raw events and spend rows.

The funnel facts of simulated sessions (the reference funnel's, written as the worker writes
them) and spend CSVs go into a real chDB; every KPI of both attribution models and both
groupings must equal the Python reference, for ranges that cut through days, with customers
whose first order lies before the range, guest orders, two currencies, zero spend and spend
imported three times with one row rewritten. Replayed rows, before and after merges, change
nothing.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from schemas.spend import SpendRow
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from sinks.marketing_queries import Attribution, MarketingQuery, query_marketing
from sinks.spend import read_spend_csv, write_spend
from sinks.tables import COLUMNS
from streams.funnel.rules import FunnelRules
from streams.report.marketing import MarketingRequest, marketing_document
from streams.report.marketing_view import marketing_table
from streams.worker.sink_rows import fact_row
from tests.integration.kpi_events import BASE, DAYS, SITE, simulated_events
from tests.integration.marketing_reference import comparable, expected_marketing
from tests.unit.funnel.reference import reference

pytestmark = pytest.mark.integration


def spend_csv(cost_of: dict[tuple[date, str, str], str] | None = None) -> str:
    """One line per day and campaign: google EUR, facebook USD, newsletter free (zero)."""
    lines = ["date,site_id,utm_source,utm_campaign,cost,currency,clicks"]
    for d in range(DAYS):
        day = (BASE + timedelta(days=d)).date()
        for source, campaign, currency in [
            (" Google", "BF", "EUR"), ("google", "spring", "EUR"), ("FACEBOOK", "bf", "USD"),
            ("newsletter", "", "EUR"), ("google", "", "USD"),
        ]:  # fmt: skip
            cost = (cost_of or {}).get((day, source, campaign), f"{(d * 7 + len(source)) % 90}.35")
            if source == "newsletter":
                cost = "0"
            lines.append(f"{day},{SITE},{source},{campaign},{cost},{currency},{d + 3}")
        lines.append(f"{day},shop-other,google,bf,999.99,EUR,1")
    return "\n".join(lines) + "\n"


def import_csv(client: Client, text: str, at_ms: int) -> list[SpendRow]:
    spend = read_spend_csv(io.StringIO(text), ingested_at_ms=at_ms)
    assert spend.errors == ()
    write_spend(client, "funnel", spend.rows)
    return list(spend.rows)


def cases() -> list[tuple[datetime, datetime, str, Attribution, Decimal]]:
    cut_lo = BASE + timedelta(days=20, hours=7, minutes=13, microseconds=500)
    cut_hi = BASE + timedelta(days=41, hours=3)
    inside_a_day = (BASE + timedelta(days=30, hours=1), BASE + timedelta(days=30, hours=23))
    wide = (BASE - timedelta(days=1), BASE + timedelta(days=DAYS + 1))
    return [
        (cut_lo, cut_hi, "utm_source", Attribution.FIRST_TOUCH, Decimal(1)),
        (cut_lo, cut_hi, "utm_source", Attribution.LAST_NON_DIRECT, Decimal("0.35")),
        (cut_lo, cut_hi, "utm_campaign", Attribution.FIRST_TOUCH, Decimal(1)),
        (cut_lo, cut_hi, "utm_campaign", Attribution.LAST_NON_DIRECT, Decimal(1)),
        (*inside_a_day, "utm_source", Attribution.LAST_NON_DIRECT, Decimal(1)),
        (*wide, "utm_campaign", Attribution.LAST_NON_DIRECT, Decimal("0.5")),
        (*wide, "utm_source", Attribution.FIRST_TOUCH, Decimal(1)),
    ]


def answer(client: Client, case: tuple[Any, ...]) -> dict[str, Any]:
    lo, hi, by, attribution, margin = case
    request = MarketingRequest(MarketingQuery(SITE, lo, hi, by, attribution), margin, True)
    document = marketing_document(request, query_marketing(client, "funnel", request.query))
    # Through JSON, as the CLI and endpoint serve it.
    result: dict[str, Any] = orjson.loads(orjson.dumps(document))
    return result


def test_every_kpi_equals_the_reference_and_replays_change_nothing(tmp_path: Path) -> None:
    events = simulated_events()
    facts = reference(events, FunnelRules())
    rows = [fact_row(f) for f in [*facts.stages, *facts.orders]]
    config = ClickHouseConfig(dsn=f"chdb:///{(tmp_path / 'chdb').resolve()}")
    client = connect(config)
    try:
        migrate(client, config, now=datetime.now(UTC))
        for table in COLUMNS:
            client.command(f"SYSTEM STOP MERGES funnel.{table}")
        client.command("SYSTEM STOP MERGES funnel.customer_first_orders")

        def insert() -> None:
            for table in ("stage_entries", "orders"):
                data = [row for name, row in rows if name == table]
                client.insert(f"funnel.{table}", data, column_names=COLUMNS[table])

        insert()
        text = spend_csv()
        spend = import_csv(client, text, 1_000)
        day = (BASE + timedelta(days=25)).date()
        changed = spend_csv({(day, " Google", "BF"): "1234.5"})
        spend += import_csv(client, changed, 2_000)  # the day's google row rewritten
        once = [answer(client, case) for case in cases()]
        for case, got in zip(cases(), once, strict=True):
            lo, hi, by, attribution, margin = case
            expected = expected_marketing(
                events, spend, site=SITE, start=lo, end=hi, by=by,
                attribution=attribution.value, margin=margin,
            )  # fmt: skip
            assert comparable(got) == expected, case
        _assert_the_cases_are_not_trivial(once)

        # The same file twice more and every row replayed: nothing merged, nothing changes.
        import_csv(client, changed, 2_000)
        import_csv(client, changed, 2_000)
        insert()
        assert [answer(client, case) for case in cases()] == once
        for table in ("stage_entries", "orders", "ad_spend", "customer_first_orders"):
            client.command(f"SYSTEM START MERGES funnel.{table}")
            client.command(f"OPTIMIZE TABLE funnel.{table} FINAL")
        assert [answer(client, case) for case in cases()] == once
        table = marketing_table(once[0])
        assert "google" in table
        assert "no FX rate" in table
    finally:
        client.close()


def _assert_the_cases_are_not_trivial(answers: list[dict[str, Any]]) -> None:
    cut = answers[0]["channels"]
    currencies = {(r["key"], r["currency"]) for r in cut}
    assert {("google", "EUR"), ("google", "USD")} <= currencies  # two currencies, one channel
    assert any(r["spend"] == "0.00" and r["roas"] is None and r["orders"] for r in cut)
    assert any(r["guest_orders"] for r in cut)
    # Customers who bought before the range: their orders are not new customers.
    assert sum(r["new_customers"] for r in cut) < sum(r["orders"] - r["guest_orders"] for r in cut)
    assert any(r["key"] == "(direct)" for r in cut)
    first, last = answers[0]["channels"], answers[1]["channels"]
    assert [(r["key"], r["orders"]) for r in first] != [(r["key"], r["orders"]) for r in last]
    assert all(r["spend"] == "0.00" for r in answers[4]["channels"])  # no day starts inside
    assert any(r["key"] == "(none)" for r in answers[2]["channels"])
