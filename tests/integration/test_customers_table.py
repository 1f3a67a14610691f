"""Issue 14: the `customers` table (one row per customer, migration 0006) stays exact.

Orders written before the migration are backfilled into it; then every order row is inserted
twice more, shuffled, with merges stopped, and finally merged with OPTIMIZE FINAL. At every step
`funnel customers` (read from that table) equals the Python reference over the raw events, for
an `as_of` now and one in the past, and after the merge there is exactly one row per customer.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from sinks.clickhouse import ClickHouseConfig, connect, load_migrations, migrate
from sinks.customer_queries import CustomersQuery, query_customers
from sinks.tables import COLUMNS
from streams.funnel.rules import FunnelRules
from streams.report.customers import CustomersRequest
from streams.report.customers_view import customers_document, render_customers
from streams.report.segments import SEGMENTS, ScoreBounds
from streams.worker.sink_rows import fact_row
from tests.integration.customers_reference import (
    SUMMARY,
    expected_customers,
    monthly_cohorts,
    segment,
)
from tests.integration.kpi_events import BASE, SITE, simulated_events
from tests.unit.funnel.reference import reference

pytestmark = pytest.mark.integration

TABLE_VERSION = 6
CUTS = {"r": (3, 7, 14, 30), "f": (2, 3, 4, 6), "m": (50, 150, 300, 600), "l": (1, 2, 3, 5)}


def document(client: Client, as_of: datetime) -> dict[str, Any]:
    request = CustomersRequest(CustomersQuery(SITE, as_of), "month", 3, segments=True)
    found = query_customers(client, "funnel", request.query)
    got: dict[str, Any] = orjson.loads(orjson.dumps(customers_document(request, found)))
    return got


def assert_reference(client: Client, events: list[Any], as_of: datetime) -> dict[str, Any]:
    got = document(client, as_of)
    exp = expected_customers(events, as_of)
    assert {k: got[k] for k in SUMMARY} == {k: exp[k] for k in SUMMARY}, as_of
    assert got["cohorts"] == monthly_cohorts(exp, as_of), as_of
    counts = {row["segment"]: row["customers"] for row in got["segments"]}
    assert sum(counts.values()) == exp["customers"]
    assert counts == {name: Counter(exp["segments"].values())[name] for name in counts}
    return got


def test_the_customers_table_is_backfilled_and_exact_under_duplicates(tmp_path: Path) -> None:
    events = simulated_events(seed=23)
    facts = reference(events, FunnelRules())
    rows = [fact_row(f) for f in [*facts.stages, *facts.orders]]
    config = ClickHouseConfig(dsn=f"chdb:///{(tmp_path / 'chdb').resolve()}")
    client = connect(config)
    try:
        # The schema as it was before 0006, with orders already written.
        for migration in load_migrations(config):
            if migration.version < TABLE_VERSION:
                for statement in migration.statements:
                    client.command(statement)

        def insert(ordered: list[tuple[str, Any]]) -> None:
            for table in ("stage_entries", "orders"):
                data = [row for name, row in ordered if name == table]
                client.insert(f"funnel.{table}", data, column_names=COLUMNS[table])

        insert(rows)
        assert "0006_customers.sql" in migrate(client, config, now=datetime.now(UTC))
        now = BASE + timedelta(days=60)
        past = BASE + timedelta(days=21, hours=7, milliseconds=1)
        backfilled = [assert_reference(client, events, at) for at in (now, past)]
        assert backfilled[0]["customers"] > backfilled[1]["customers"] > 0
        assert backfilled[0]["repeat_customers"] > 0

        # Every row twice more (the view's path), shuffled, nothing merged: nothing changes.
        client.command("SYSTEM STOP MERGES funnel.customers")
        for seed in (1, 2):
            shuffled = rows[:]
            random.Random(seed).shuffle(shuffled)
            insert(shuffled)
        parts = client.query(
            "SELECT count() FROM funnel.customers WHERE site_id = {site:String}",
            parameters={"site": SITE},
        ).result_rows[0][0]
        assert parts > backfilled[0]["customers"]  # unmerged: several rows per customer
        assert [document(client, at) for at in (now, past)] == backfilled

        client.command("SYSTEM START MERGES funnel.customers")
        client.command("OPTIMIZE TABLE funnel.customers FINAL")
        assert [document(client, at) for at in (now, past)] == backfilled
        per_customer = client.query(
            "SELECT user_id, count() FROM funnel.customers WHERE site_id = {site:String}"
            " GROUP BY user_id",
            parameters={"site": SITE},
        ).result_rows
        assert len(per_customer) == backfilled[0]["customers"]
        assert {n for _, n in per_customer} == {1}
        # The state holds each distinct order row once: replays do not grow it.
        col = {name: i for i, name in enumerate(COLUMNS["orders"])}
        distinct_rows = {
            (row[col["order_id"]], row[col["occurred_at"]]) for name, row in rows
            if name == "orders" and row[col["site_id"]] == SITE and row[col["user_id"]]
        }  # fmt: skip
        held = client.query(
            "SELECT sum(length(held)) FROM (SELECT groupUniqArrayMerge(orders) AS held"
            " FROM funnel.customers WHERE site_id = {site:String} GROUP BY user_id)",
            parameters={"site": SITE},
        ).result_rows[0][0]
        assert held == len(distinct_rows) > backfilled[0]["customers"]
    finally:
        client.close()


def by_cuts(dim: str, value: Any) -> int:
    reached = sum(1 for cut in CUTS[dim] if value >= cut)
    return 5 - reached if dim == "r" else 1 + reached


def test_fixed_thresholds_score_and_segment_as_the_reference(tmp_path: Path) -> None:
    events = simulated_events(seed=29)
    facts = reference(events, FunnelRules())
    config = ClickHouseConfig(dsn=f"chdb:///{(tmp_path / 'chdb').resolve()}")
    client = connect(config)
    try:
        migrate(client, config, now=datetime.now(UTC))
        for table in ("stage_entries", "orders"):
            data = [row for name, row in map(fact_row, [*facts.stages, *facts.orders])
                    if name == table]  # fmt: skip
            client.insert(f"funnel.{table}", data, column_names=COLUMNS[table])
        as_of = BASE + timedelta(days=40, hours=2)
        bounds = ScoreBounds.parse(";".join(
            f"{dim}={','.join(map(str, cuts))}" for dim, cuts in CUTS.items()
        ))  # fmt: skip
        query = CustomersQuery(SITE, as_of)
        found = query_customers(client, "funnel", query)
        got: dict[str, tuple[str, tuple[int, ...]]] = {}
        for name in SEGMENTS:
            request = CustomersRequest(query, segment=name, as_csv=True, bounds=bounds)
            text = render_customers(request, found).decode()
            for line in csv.DictReader(io.StringIO(text)):
                got[line["user_id"]] = (name, tuple(int(line[k]) for k in ("r", "f", "m", "l")))
    finally:
        client.close()
    exp = expected_customers(events, as_of)
    want = {}
    for user, measures in exp["measures"].items():
        scores = tuple(by_cuts(dim, v) for dim, v in zip(CUTS, measures, strict=True))
        want[user] = (segment(scores[0], scores[1]), scores)
    assert got == want
    # Values on a cut exist (ties at the boundaries), and the cuts spread the scores.
    on_a_cut = [u for u, m in exp["measures"].items()
                if any(v in CUTS[d] for d, v in zip(CUTS, m, strict=True))]  # fmt: skip
    assert on_a_cut
    assert len({s[1][0] for s in want.values()}) >= 3
