"""Issue 5: every ClickHouse query of the Grafana dashboards runs, and answers sensibly.

chDB is loaded with simulated traffic (duplicates, shuffling beyond the lateness bound, broken
messages) pushed through the real funnel engine and row builders. Each panel's SQL is expanded
the way Grafana and the ClickHouse plugin expand it, run, and checked against the columns the
dashboard code declares: names, types, value ranges, and the funnel shape (stage counts never
rise). The funnel numbers must also equal `funnel report`'s for the same range.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from deploy.grafana.dashgen import sql, sql_orders_carts
from deploy.grafana.dashgen.build import DASHBOARDS
from deploy.grafana.dashgen.model import Column, Kind, Sql, site_variable
from schemas.decode import DecodeLimits, Rejection, decode_event
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from sinks.report_queries import BREAKDOWN_DIMENSIONS, ReportQuery, query_report
from sinks.spend import spend_row
from sinks.tables import COLUMNS
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.rules import FunnelRules
from streams.funnel.store import DictStore
from streams.sim.generator import SimulationConfig, generate
from streams.sim.spend import simulated_spend
from streams.worker.dead_letters import SourcePosition, dead_letter
from streams.worker.ingest import Accepted, RawMessage
from streams.worker.sink_rows import Row, dead_letter_row, fact_row, raw_event_row
from tests.unit.funnel.builders import DAY_MS, flush

pytestmark = pytest.mark.integration

# Two days back at 09:00 UTC: recent enough for the tables' TTLs, whole seconds like Grafana's.
START = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=2)
SITES = ("shop-1", "shop-2")
SITE = "shop-1"
TOPIC = "funnel.events"
BATCH = 50
INTERVAL_S = 300  # what Grafana would pick for a day on a wide panel, roughly


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime


# From midnight: spend counts by the day it is for, when the day's start lies in the range.
FULL = TimeRange(START.replace(hour=0), START + timedelta(days=1))
EMPTY = TimeRange(START - timedelta(days=1, hours=1), START - timedelta(days=1))

# ---- Grafana + plugin expansion ------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)\}")
_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")


def expand(
    query: str, *, time_range: TimeRange, interval_s: int, variables: Mapping[str, str]
) -> str:
    """The SQL that Grafana and grafana-clickhouse-datasource v4 send for `query`.

    1. Grafana's frontend (the plugin's `applyTemplateVariables`) replaces `${name}` with the
       variable's value. The plugin's `format` leaves a single value as it is (queries quote it
       themselves: `'${site}'`) and would join a multi-value one as `'a','b'` (we have none).
    2. The plugin's backend (pkg/macros/macros.go) then expands its macros, with the range in
       whole epoch seconds and the panel interval at least 1 s:
         $__timeFilter(c)   -> c >= toDateTime(<from>) AND c <= toDateTime(<to>)
         $__fromTime        -> toDateTime(<from>)          $__toTime -> toDateTime(<to>)
         $__timeInterval(c) -> toStartOfInterval(toDateTime(c), INTERVAL <interval> second)
         $__interval_s      -> <interval>
       The plugin finds a macro's argument up to the first ')', so arguments are plain columns.
    Anything else starting with `$` is unknown here, so it fails the test instead of passing
    through untested.
    """
    start, end = int(time_range.start.timestamp()), int(time_range.end.timestamp())

    def variable(match: re.Match[str]) -> str:
        return variables[match.group(1)]

    def macro(match: re.Match[str]) -> str:
        name, argument = match.group(1), match.group(2)
        if name == "timeFilter" and argument:
            return f"{argument} >= toDateTime({start}) AND {argument} <= toDateTime({end})"
        if name == "fromTime" and argument is None:
            return f"toDateTime({start})"
        if name == "toTime" and argument is None:
            return f"toDateTime({end})"
        if name == "timeInterval" and argument:
            return f"toStartOfInterval(toDateTime({argument}), INTERVAL {interval_s} second)"
        if name == "interval_s" and argument is None:
            return str(interval_s)
        raise AssertionError(f"macro $__{name} is not one this test expands: {match.group(0)}")

    expanded = _MACRO.sub(macro, _VARIABLE.sub(variable, query))
    assert "$" not in expanded, f"unexpanded variable or macro left in:\n{expanded}"
    return expanded


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


# ---- Simulated data, loaded once -----------------------------------------------------------


def simulated_rows() -> dict[str, list[Row]]:
    """Rows as the worker writes them, for traffic with every kind of input it must handle."""
    config = SimulationConfig(
        start=START, seed=1, sites=SITES, sessions=300, session_rate=0.1,
        duplicate_rate=0.03, out_of_order_ms=420_000, invalid_rate=0.03,
    )  # fmt: skip
    now_ms = int((START + timedelta(days=1)).timestamp() * 1000)
    rules = FunnelRules()
    funnel = PartitionFunnel(DictStore(), rules)
    rows: dict[str, list[Row]] = {table: [] for table in COLUMNS}
    batch: list[Accepted] = []
    kafka_ms = int(START.timestamp() * 1000)

    def process() -> None:
        result = funnel.process_batch([(a.event, a.message.timestamp_ms) for a in batch])
        for item, outcome in zip(batch, result.outcomes, strict=True):
            if outcome is not Outcome.DUPLICATE:  # as the processor does
                rows["events_raw"].append(raw_event_row(item, outcome))
        for fact in result.facts:
            table, row = fact_row(fact)
            rows[table].append(row)
        batch.clear()

    for offset, simulated in enumerate(generate(config)):
        decoded = decode_event(simulated.value, now_ms=now_ms, limits=DecodeLimits())
        if not isinstance(decoded, Rejection):
            # Delivery time: the simulator delivers in order of occurred_at + a random delay.
            kafka_ms = max(kafka_ms, decoded.occurred_at_ms)
        message = RawMessage(TOPIC, 0, offset, kafka_ms, simulated.key, simulated.value)
        if isinstance(decoded, Rejection):
            letter = dead_letter(
                message.value, decoded, SourcePosition(TOPIC, 0, offset), rejected_at_ms=kafka_ms
            )
            rows["dead_letters"].append(dead_letter_row(message, letter, decoded))
            continue
        batch.append(Accepted(decoded, message))
        if len(batch) == BATCH:
            process()
    process()
    for fact in flush(funnel, kafka_ms + rules.retention_ms + DAY_MS, rules):
        table, row = fact_row(fact)
        rows[table].append(row)
    rows["ad_spend"] = [spend_row(spend) for spend in simulated_spend(config)]
    return rows


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """One chDB for the module; closed at the end, since a process may hold one path only."""
    path = Path(tmp_path_factory.mktemp("dashboards")) / "chdb"
    config = ClickHouseConfig(dsn=f"chdb:///{path.resolve()}", database="funnel")
    client = connect(config)
    try:
        migrate(client, config, now=START)
        for table, rows in simulated_rows().items():
            assert rows, f"the simulation produced no {table} rows"
            client.insert(f"funnel.{table}", rows, column_names=COLUMNS[table])
        yield client
    finally:
        client.close()


# ---- Every ClickHouse query of every dashboard ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    where: str
    query: Sql
    breakdown: str


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
        for panel in build().panels():
            for ref, query in enumerate(panel.queries):
                if not isinstance(query, Sql):
                    continue
                where = f"{name} / {panel.title} / {chr(ord('A') + ref)}"
                if "${breakdown}" in query.sql:
                    found += [Case(f"{where} by {b}", query, b) for b in breakdown_values()]
                else:
                    found.append(Case(where, query, ""))
    return found


CASES = cases()


def run(
    client: Client, case: Case, time_range: TimeRange
) -> tuple[list[str], list[Any], list[str]]:
    sent = expand(
        case.query.sql,
        time_range=time_range,
        interval_s=INTERVAL_S,
        variables={"site": SITE, "breakdown": case.breakdown},
    )
    result = client.query(sent)
    types = [t.name for t in result.column_types]
    return list(result.column_names), [list(r) for r in result.result_rows], types


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


def panel(client: Client, query: Sql, breakdown: str = "") -> list[dict[str, Any]]:
    names, rows, _ = run(client, Case("", query, breakdown), FULL)
    return [dict(zip(names, row, strict=True)) for row in rows]


def test_funnel_numbers_equal_the_report(chdb: Client) -> None:
    report = query_report(chdb, "funnel", ReportQuery(SITE, FULL.start, FULL.end))
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
    report = query_report(chdb, "funnel", ReportQuery(SITE, FULL.start, FULL.end, dimension))
    expected = {
        segment.key or "(none)": segment.counts.sessions
        for segment in report.breakdown
        if segment.counts.sessions[0]
    }
    rows = panel(chdb, sql.funnel_by(dimension))
    got = {r["segment"]: tuple(r[stage] for stage in sql.STAGES) for r in rows}
    assert got == expected
