"""Issue 4 acceptance: `funnel report` equals the numbers recomputed from the raw events.

A real worker processes three sites' simulated traffic (duplicates, shuffling, broken messages)
and then some late events. The report is read over the worker's endpoint while it runs (it holds
chDB, so this is the only way in) and by the CLI after it stopped (opening chDB itself); both
must equal the reference, for ranges that cut through minutes and sessions, and per dimension.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Event
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from sinks.report_queries import BREAKDOWN_DIMENSIONS, ReportQuery, query_report
from sinks.tables import COLUMNS
from streams.funnel.facts import CartStatus, Fact
from streams.funnel.partition import Outcome
from streams.funnel.rules import FunnelRules
from streams.local.embedded_broker import EmbeddedBroker
from streams.local.ports import free_port
from streams.report.numbers import ReportRequest, build_report
from streams.report.view import report_json
from streams.sim.generator import SimulatedMessage, SimulationConfig, generate
from streams.worker.dead_letters import DeadLetter
from streams.worker.ingest import Accepted, RawMessage
from streams.worker.sink_rows import Row, dead_letter_row, fact_row, raw_event_row
from tests.integration.pipeline import PipelineConfig, WorkerProcess, produce, watermarks_past
from tests.integration.report_reference import World, comparable, expected_report
from tests.unit.funnel.reference import Expected, reference

pytestmark = pytest.mark.integration

SITES = ("shop-a", "shop-b", "shop-c")
LATE_EVENTS = 45
Case = tuple[str, datetime, datetime, str | None]


def simulate(start: datetime) -> list[SimulatedMessage]:
    config = SimulationConfig(
        start=start, seed=41, sites=SITES, sessions=None, session_rate=5.0,
        duplicate_rate=0.03, out_of_order_ms=20_000, invalid_rate=0.01,
    )  # fmt: skip
    return list(itertools.islice(generate(config), 15_000))


def decoded(messages: list[SimulatedMessage]) -> list[Event]:
    now_ms = time.time_ns() // 1_000_000
    events = [decode_event(m.value, now_ms=now_ms, limits=DecodeLimits()) for m in messages]
    return [e for e in events if isinstance(e, Event)]


def late_copies(messages: list[SimulatedMessage], count: int) -> list[SimulatedMessage]:
    """Page views of new sessions at old event times, spread over the run and the sites."""
    views = [m for m in messages if m.valid and b'"page_view"' in m.value]
    views = views[:: len(views) // count][:count]
    late = []
    for i, message in enumerate(views):
        event = orjson.loads(message.value) | {"session_id": f"late-{i}", "event_id": f"late-{i}"}
        late.append(SimulatedMessage(f"late-{i}".encode(), orjson.dumps(event)))
    assert len(late) == count
    return late


def cases(start: datetime, now: datetime) -> list[Case]:
    """Ranges not aligned to seconds, minutes or windows; the wide one sees the rejections."""

    def at(ms: int) -> datetime:
        return start + timedelta(milliseconds=ms)

    narrow = [
        ("shop-a", at(133_457), at(588_123)),
        ("shop-b", at(61_001), at(700_999)),
        # Sub-millisecond bounds: rows are whole ms, so 300250.5 behaves like 300251.
        ("shop-c", start + timedelta(microseconds=300_250_500), at(420_750)),
    ]
    wide = [(site, start - timedelta(hours=1), now + timedelta(hours=1)) for site in SITES]
    plain: list[Case] = [(s, lo, hi, None) for s, lo, hi in narrow + wide]
    by_dim: list[Case] = [("shop-a", *narrow[0][1:], by) for by in BREAKDOWN_DIMENSIONS]
    by_dim += [("shop-c", *wide[2][1:], by) for by in BREAKDOWN_DIMENSIONS]
    return plain + by_dim


def via_endpoint(port: int, case: Case) -> dict[str, Any]:
    site, lo, hi, by = case
    params = {"site": site, "from": lo.isoformat(), "to": hi.isoformat(), "format": "json"}
    url = f"http://127.0.0.1:{port}/report?{urlencode(params | ({'by': by} if by else {}))}"
    with urllib.request.urlopen(url, timeout=60) as response:
        result: dict[str, Any] = orjson.loads(response.read())
    return result


def via_cli(env: dict[str, str], case: Case, *, as_json: bool = True) -> str:
    site, lo, hi, by = case
    # Another offset than UTC on purpose: the CLI must read any ISO offset.
    cest = timezone(timedelta(hours=2))
    args = ["--site", site, "--from", lo.astimezone(cest).isoformat(), "--to", hi.isoformat()]
    args += ["--by", by] if by else []
    args += ["--json"] if as_json else []
    done = subprocess.run(
        [sys.executable, "-m", "streams", "report", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_report_equals_the_reference_from_the_endpoint_and_the_cli(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    messages = simulate(start)
    late = late_copies(messages, LATE_EVENTS)
    events = decoded(messages)
    world = World(
        facts=reference(events, FunnelRules()),
        late=tuple((e.site_id, e.event_id, e.occurred_at_ms) for e in decoded(late)),
        # Rejected while the test runs: inside the wide ranges, outside the narrow ones.
        rejected_at_ms=tuple(time.time_ns() // 1_000_000 for m in messages if not m.valid),
    )
    assert {site for site, _, _ in world.late} == set(SITES)

    query_port = free_port()
    config = PipelineConfig(
        broker.bootstrap, unique_topic("report"), tmp_path,
        extra_env={"FUNNEL_QUERY_PORT": str(query_port)},
    )  # fmt: skip
    config.create_topics()
    assert asyncio.run(produce(broker.bootstrap, config.events_topic, messages)) == len(messages)
    data_dir = tmp_path / "worker"
    cli_env = config.env(data_dir=data_dir, metrics_port=free_port())

    worker = WorkerProcess(config, data_dir)
    try:
        last_ms = max(e.occurred_at_ms for e in events)
        rules = FunnelRules()
        bound_s = (last_ms + rules.abandonment_ms + 2 * rules.lateness_ms) / 1000 + 1
        worker.wait_until(watermarks_past(worker, bound_s), timeout=300, what="all final")
        # Now every partition's watermark is the wall clock: these are hours behind it.
        asyncio.run(produce(broker.bootstrap, config.events_topic, late))
        worker.wait_until(
            lambda: worker.total("funnel_events_consumed_total", outcome="late") >= LATE_EVENTS,
            timeout=120, what="late events processed",
        )  # fmt: skip
        now = datetime.now(UTC)
        all_cases = cases(start, now)
        for case in all_cases:
            site, lo, hi, by = case
            expected = expected_report(world, site, lo, hi, by)
            assert comparable(via_endpoint(query_port, case)) == expected, case
        # The CLI finds chDB locked by the worker and takes the endpoint itself.
        case = all_cases[0]
        running = orjson.loads(via_cli(cli_env, case))
        assert comparable(running) == expected_report(world, *case)
    finally:
        assert worker.stop() == 0, worker.log_tail()

    # Stopped: the CLI opens chDB itself (one plain range per site, two breakdowns).
    for case in [*all_cases[:3], all_cases[7], all_cases[-1]]:
        stopped = orjson.loads(via_cli(cli_env, case))
        assert comparable(stopped) == expected_report(world, *case), case
    table = via_cli(cli_env, all_cases[3], as_json=False)
    assert "shop-a" in table
    assert max(len(line) for line in table.splitlines()) <= 80


def replay_rows(start: datetime) -> tuple[list[tuple[str, Row]], World, int]:
    """Rows of a simulated run plus the awkward cases short runs lack, and their world."""
    simulated = SimulationConfig(start=start, seed=43, sites=SITES[:2], sessions=800)
    events = decoded(list(generate(simulated)))
    simulated_facts = reference(events, FunnelRules())
    # An order id seen again in another session, later: the earliest one is the order.
    first = min(simulated_facts.orders, key=lambda o: o.occurred_at_ms)
    again = dataclasses.replace(first, session_id="other", occurred_at_ms=first.occurred_at_ms + 5)
    # Short runs recover no carts; one abandoned cart bought later gets a third version.
    lost = min(
        (c for c in simulated_facts.carts if c.status is CartStatus.ABANDONED),
        key=lambda c: c.opened_at_ms,
    )
    recovered = dataclasses.replace(
        lost, status=CartStatus.RECOVERED, recovered_at_ms=(lost.closed_at_ms or 0) + 60_000
    )
    facts = Expected(
        simulated_facts.stages,
        simulated_facts.orders | {again},
        simulated_facts.carts | {recovered},
    )
    all_facts: list[Fact] = [*facts.stages, *facts.orders, *facts.carts]
    rows = [fact_row(f) for f in all_facts]
    late = [dataclasses.replace(e, session_id=f"late-{i}") for i, e in enumerate(events[::97])]
    rows += [("events_raw", raw_event_row(accepted(e), Outcome.LATE)) for e in late]
    rejected_ms = time.time_ns() // 1_000_000
    world = World(
        facts=facts,
        late=tuple((e.site_id, e.event_id, e.occurred_at_ms) for e in late),
        rejected_at_ms=(rejected_ms,) * 3,
    )
    return rows, world, rejected_ms


def test_a_replayed_batch_leaves_the_report_unchanged_before_any_merge(tmp_path: Path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    rows, world, rejected_ms = replay_rows(start)
    now = datetime.now(UTC)
    queries = [
        ReportQuery(site, lo, hi, by)
        for site in SITES[:2]
        for lo, hi in [
            (start + timedelta(milliseconds=77_777), start + timedelta(milliseconds=111_111)),
            (start - timedelta(hours=1), now + timedelta(hours=1)),
        ]
        for by in (None, "device", "utm_source")
    ]
    ch = ClickHouseConfig(dsn=f"chdb:///{(tmp_path / 'chdb').resolve()}")
    client = connect(ch)
    try:
        migrate(client, ch, now=now)
        for table in COLUMNS:
            client.command(f"SYSTEM STOP MERGES funnel.{table}")

        def insert(batch: list[tuple[str, Row]], rejected_at_ms: int) -> None:
            by_table: dict[str, list[Row]] = {}
            for table, row in batch + dead_letters(3, rejected_at_ms):
                by_table.setdefault(table, []).append(row)
            for table, table_rows in by_table.items():
                client.insert(f"funnel.{table}", table_rows, column_names=COLUMNS[table])

        def report(query: ReportQuery) -> dict[str, Any]:
            counts = query_report(client, "funnel", query, retention_ms=FunnelRules().retention_ms)
            built = build_report(ReportRequest(query, as_json=True), counts)
            result: dict[str, Any] = orjson.loads(report_json(built))
            return result

        def row_counts() -> list[int]:
            return [
                client.query(f"SELECT count() FROM funnel.{t}").result_rows[0][0] for t in COLUMNS
            ]

        insert(rows, rejected_ms)
        once = [report(q) for q in queries]
        single = row_counts()
        assert any(answer["carts_recovered"] for answer in once)
        for q, answer in zip(queries, once, strict=True):
            assert comparable(answer) == expected_report(world, q.site_id, q.start, q.end, q.by)

        # The replay: the same rows again; a re-rejection happens later, as it would for real.
        insert(rows, rejected_ms + 1_000)
        assert row_counts() == [2 * n for n in single]  # nothing merged away
        assert [report(q) for q in queries] == once

        # And once merges have collapsed the copies, still the same answers.
        for table in COLUMNS:
            client.command(f"SYSTEM START MERGES funnel.{table}")
            client.command(f"OPTIMIZE TABLE funnel.{table} FINAL")
        assert row_counts() == single
        assert [report(q) for q in queries] == once
    finally:
        client.close()


def accepted(event: Event) -> Accepted:
    message = RawMessage("events", 0, 0, event.occurred_at_ms, None, b"{}")
    return Accepted(event, message)


def dead_letters(count: int, rejected_at_ms: int) -> list[tuple[str, Row]]:
    rejection = Rejection("not_json", "not JSON")
    return [
        (
            "dead_letters",
            dead_letter_row(
                RawMessage("events", 1, offset, rejected_at_ms, None, b"{"),
                DeadLetter(b"{", [], rejected_at_ms),
                rejection,
            ),
        )
        for offset in range(count)
    ]
