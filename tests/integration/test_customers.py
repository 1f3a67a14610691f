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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinks.clickhouse import ClickHouseConfig, connect, migrate
from sinks.customer_queries import CustomersQuery, query_customers
from sinks.tables import COLUMNS
from streams.funnel.rules import FunnelRules
from streams.report.customers import CustomersRequest
from streams.report.customers_view import customers_document, render_customers
from streams.worker.sink_rows import fact_row
from tests.integration.customers_reference import (
    DAY,
    SUMMARY,
    expected_customers,
    monthly_cohorts,
    orders_before,
    weekly_cohorts,
)
from tests.integration.kpi_events import BASE, SITE, simulated_events
from tests.integration.marketing_reference import ms
from tests.unit.funnel.reference import reference

pytestmark = pytest.mark.integration


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
        exp = expected_customers(events, as_of)
        for key in SUMMARY:
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
