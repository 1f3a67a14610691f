"""Issue 5: every ClickHouse query of the Grafana dashboards runs, and answers sensibly.

chDB is loaded with simulated traffic (duplicates, shuffling beyond the lateness bound, broken
messages) pushed through the real funnel engine and row builders. Each panel's SQL is expanded
the way Grafana and the ClickHouse plugin expand it, run, and checked against the columns the
dashboard code declares: names, types, value ranges, and the funnel shape (stage counts never
rise). The funnel numbers must also equal `funnel report`'s for the same range.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from deploy.grafana.dashgen import sql, sql_orders_carts
from deploy.grafana.dashgen.build import DASHBOARDS
from deploy.grafana.dashgen.model import Column, Kind, Sql, site_variable
from sinks.report_queries import BREAKDOWN_DIMENSIONS, ReportQuery, query_report
from streams.funnel.rules import FunnelRules
from tests.integration.grafana_panels import (
    FULL,
    INTERVAL_S,
    SITE,
    START,
    Case,
    TimeRange,
    chdb,
    expand,
    panel,
    run,
)

pytestmark = pytest.mark.integration
__all__ = ["chdb"]  # the fixture (grafana_panels): pytest finds it by its name here

EMPTY = TimeRange(START - timedelta(days=1, hours=1), START - timedelta(days=1))
RETENTION_MS = FunnelRules().retention_ms


def test_expand_matches_the_plugin_documentation() -> None:
    got = expand(
        "SELECT $__timeInterval(t) AS time FROM x WHERE $__timeFilter(t) AND s = '${site}' "
        "AND t < $__toTime AND t > $__fromTime GROUP BY time LIMIT $__interval_s",
        time_range=TimeRange(
            datetime.fromtimestamp(1415792726, UTC), datetime.fromtimestamp(1447328726, UTC)
        ),
        interval_s=20,
        variables={"site": "a"},
    )
    assert got == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 20 second) AS time FROM x "
        "WHERE t >= toDateTime(1415792726) AND t <= toDateTime(1447328726) AND s = 'a' "
        "AND t < toDateTime(1447328726) AND t > toDateTime(1415792726) GROUP BY time LIMIT 20"
    )
    with pytest.raises(AssertionError, match="dateFilter"):
        expand("$__dateFilter(d)", time_range=FULL, interval_s=1, variables={})
    with pytest.raises(KeyError):
        expand("'${nope}'", time_range=FULL, interval_s=1, variables={})


# ---- Every ClickHouse query of every dashboard ---------------------------------------------


def breakdown_values() -> list[str]:
    """The breakdown variable's options, as the JSON offers them (`Text : value` pairs)."""
    variable = next(
        v
        for v in DASHBOARDS["funnel-overview"]().variables
        if v["name"] == "breakdown"  # the same options on every dashboard
    )
    return [pair.split(" : ")[1] for pair in variable["query"].split(",")]


def cases() -> list[Case]:
    variable_sql = site_variable()["query"]
    found = [Case("variable site", Sql(variable_sql, (Column("site_id", Kind.LABEL),)), "")]
    for name, build in DASHBOARDS.items():
        for shown in build().panels():
            for ref, query in enumerate(shown.queries):
                if not isinstance(query, Sql):
                    continue
                where = f"{name} / {shown.title} / {chr(ord('A') + ref)}"
                if "${breakdown}" in query.sql:
                    found += [Case(f"{where} by {b}", query, b) for b in breakdown_values()]
                else:
                    found.append(Case(where, query, ""))
    return found


CASES = cases()


_TYPES = {
    Kind.TIME: re.compile(r"DateTime(64)?(\(.*\))?"),
    Kind.LABEL: re.compile(r"(LowCardinality\()?String\)?"),
    Kind.COUNT: re.compile(r"UInt(8|16|32|64)"),
    Kind.RATIO: re.compile(r"(Nullable\()?Float64\)?"),
    Kind.MONEY: re.compile(r"Decimal(\(38, ?6\)|128\(6\))"),
    Kind.SECONDS: re.compile(r"(Nullable\()?Float64\)?"),
    Kind.QUOTIENT: re.compile(r"(Nullable\()?Float64\)?"),
}


def check_value(column: Column, value: Any, time_range: TimeRange) -> None:
    name = column.name
    match column.kind:
        case Kind.TIME:
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
            # Interval buckets start at or before `from`, never more than an interval before.
            lowest = time_range.start - timedelta(seconds=INTERVAL_S)
            assert lowest <= moment <= time_range.end, (name, value)
        case Kind.LABEL:
            assert isinstance(value, str), (name, value)
            assert value, name
        case Kind.COUNT:
            assert isinstance(value, int), (name, value)
            assert value >= 0, (name, value)
        case Kind.RATIO:
            assert value is None or 0.0 <= value <= 1.0, (name, value)
        case Kind.MONEY:
            assert isinstance(value, Decimal), (name, value)
            assert value >= 0, (name, value)
        case Kind.SECONDS | Kind.QUOTIENT:
            assert value is None or value >= 0, (name, value)  # NaN fails too


@pytest.mark.parametrize("case", CASES, ids=[c.where for c in CASES])
def test_panel_query_answers_sensibly(chdb: Client, case: Case) -> None:
    names, rows, types = run(chdb, case, FULL)
    declared = case.query.columns
    assert names == [c.name for c in declared]
    for column, type_name in zip(declared, types, strict=True):
        assert _TYPES[column.kind].fullmatch(type_name), (column, type_name)
    assert rows, "no rows for a range holding all the data"
    for row in rows:
        for column, value in zip(declared, row, strict=True):
            check_value(column, value, FULL)
    for column in declared:
        if column.kind in (Kind.RATIO, Kind.SECONDS, Kind.QUOTIENT):
            assert any(row[names.index(column.name)] is not None for row in rows), column
    funnel = [names.index(c) for c in case.query.funnel_columns]
    for row in rows:
        counts = [row[i] for i in funnel]
        assert counts == sorted(counts, reverse=True), (case.query.funnel_columns, row)
    if case.query.funnel_rows is not None:
        counts = [row[names.index(case.query.funnel_rows)] for row in rows]
        assert counts == sorted(counts, reverse=True), counts
    if case.query.time_series:
        assert declared[0].kind is Kind.TIME, "Grafana needs the time column first"


@pytest.mark.parametrize("case", CASES, ids=[c.where for c in CASES])
def test_panel_query_survives_an_empty_range(chdb: Client, case: Case) -> None:
    names, rows, _ = run(chdb, case, EMPTY)
    # chDB answers an empty result without its column names; a non-empty one must have them.
    assert not rows or names == [c.name for c in case.query.columns]
    for row in rows:
        for column, value in zip(case.query.columns, row, strict=True):
            check_value(column, value, EMPTY)


# ---- The same numbers as `funnel report` ---------------------------------------------------


def test_funnel_numbers_equal_the_report(chdb: Client) -> None:
    report = query_report(
        chdb, "funnel", ReportQuery(SITE, FULL.start, FULL.end), retention_ms=RETENTION_MS
    )
    total = report.total

    stages = panel(chdb, sql.stage_sessions())
    assert tuple(r["sessions"] for r in stages) == total.sessions
    assert total.sessions[3] > 0, "the simulation should sell something"

    overall = panel(chdb, sql.overall_conversion())[0]
    assert overall["overall_conversion"] == total.sessions[3] / total.sessions[0]

    orders = {
        r["currency"]: (r["orders"], r["revenue"])
        for r in panel(chdb, sql_orders_carts.orders_by_currency())
    }
    assert orders == {s.currency: (s.orders, s.revenue) for s in total.sales}

    carts = panel(chdb, sql_orders_carts.carts_by_status())
    assert sum(r["carts"] for r in carts) == total.carts_opened
    abandoned = sum(r["carts"] for r in carts if r["status"] in ("abandoned", "recovered"))
    assert abandoned == total.carts_abandoned
    recovered = sum(r["carts"] for r in carts if r["status"] == "recovered")
    assert recovered == total.carts_recovered

    rate = panel(chdb, sql_orders_carts.cart_abandonment())[0]
    closed = total.carts_opened - sum(r["carts"] for r in carts if r["status"] == "open")
    assert rate["closed_carts"] == closed
    assert rate["abandonment_rate"] == total.carts_abandoned / closed

    dead = sum(r["dead_letters"] for r in panel(chdb, sql.dead_letters_by_reason()))
    assert dead == report.invalid_events > 0


@pytest.mark.parametrize("dimension", BREAKDOWN_DIMENSIONS)
def test_breakdown_numbers_equal_the_report(chdb: Client, dimension: str) -> None:
    assert dimension in breakdown_values()
    report = query_report(
        chdb,
        "funnel",
        ReportQuery(SITE, FULL.start, FULL.end, dimension),
        retention_ms=RETENTION_MS,
    )
    expected = {
        segment.key or "(none)": segment.counts.sessions
        for segment in report.breakdown
        if segment.counts.sessions[0]
    }
    rows = panel(chdb, sql.funnel_by(dimension))
    got = {r["segment"]: tuple(r[stage] for stage in sql.STAGES) for r in rows}
    assert got == expected
