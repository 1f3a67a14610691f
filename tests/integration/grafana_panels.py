"""The Grafana dashboards' SQL, run as Grafana sends it, on a chDB of simulated traffic.

`chdb` (a module-scoped fixture: import it into the test module) loads the rows the worker would
write for two sites' simulated traffic: duplicates, shuffling beyond the lateness bound, broken
messages, and the simulator's ad spend. `run` and `panel` expand a panel's query the way Grafana
and the ClickHouse plugin do and answer its rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from deploy.grafana.dashgen.model import Sql
from schemas.decode import DecodeLimits, Rejection, decode_event
from sinks.clickhouse import ClickHouseConfig, connect, migrate
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


# ---- One panel's query, as Grafana sends it ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    where: str
    query: Sql
    breakdown: str


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


def panel(client: Client, query: Sql, breakdown: str = "") -> list[dict[str, Any]]:
    names, rows, _ = run(client, Case("", query, breakdown), FULL)
    return [dict(zip(names, row, strict=True)) for row in rows]
