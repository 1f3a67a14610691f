"""Issue 14: bounce rate and pages per session in the report equal a raw-event reference.

A bounced session has exactly one page view and no other event, placed by its first page view.
A session id reused more than the retention after its latest event is another session.
Rows are what the worker writes to `events_raw`: an event that arrived late but within the
lateness bound is stored as counted (late = false) and keeps its session from bouncing; one
beyond the bound is stored late and changes nothing. Replayed rows change nothing.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.event import Device, Event, EventType
from sinks.clickhouse import ClickHouseConfig, connect, migrate
from sinks.report_queries import ReportQuery, query_report
from sinks.tables import COLUMNS
from streams.funnel.facts import StageReached
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.rules import FunnelRules
from streams.funnel.store import DictStore
from streams.report.numbers import ReportRequest, build_report
from streams.report.view import report_json
from streams.worker.ingest import Accepted, RawMessage
from streams.worker.sink_rows import raw_event_row
from tests.integration.marketing_reference import ms

pytestmark = pytest.mark.integration

START = datetime(2026, 6, 1, 10, tzinfo=UTC)
SITE = "shop-b"
RULES = FunnelRules()


def world() -> list[tuple[Event, bool]]:
    """(event, stored late?) in arrival order, duplicates included."""
    rng = random.Random(5)
    rows: list[tuple[Event, bool]] = []
    for n in range(400):
        sid = f"s{n}"
        t = ms(START) + rng.randrange(-600_000, 3_600_000)
        device = rng.choice(list(Device))
        pv = Event(f"{sid}-1", EventType.PAGE_VIEW, t, SITE, sid, device=device)
        rows.append((pv, False))
        kind = rng.random()
        if kind < 0.3:  # a second page view
            rows.append((Event(f"{sid}-2", EventType.PAGE_VIEW, t + 5_000, SITE, sid,
                               device=device), False))  # fmt: skip
        elif kind < 0.4:  # an add_to_cart that came late, within the bound: it counts
            rows.append((Event(f"{sid}-2", EventType.ADD_TO_CART, t + 1_000, SITE, sid,
                               device=device), False))  # fmt: skip
        elif kind < 0.5:  # beyond the bound: stored late, changes nothing
            rows.append((Event(f"{sid}-2", EventType.ADD_TO_CART, t + 2_000, SITE, sid,
                               device=device), True))  # fmt: skip
        if rng.random() < 0.1:  # delivered twice
            rows.append((pv, False))
    return rows


def expected(rows: list[tuple[Event, bool]], lo: datetime, hi: datetime, by_device: bool
             ) -> dict[str, dict[str, Any]]:  # fmt: skip
    sessions: dict[str, dict[str, Event]] = {}
    for event, late in rows:
        if not late:
            sessions.setdefault(event.session_id, {})[event.event_id] = event
    out: dict[str, dict[str, Any]] = {}
    for events in sessions.values():
        views = [e for e in events.values() if e.event_type is EventType.PAGE_VIEW]
        first = min(e.occurred_at_ms for e in views)
        if not ms(lo) <= first < ms(hi):
            continue
        key = (views[0].device.value if views[0].device else "") if by_device else ""
        cell = out.setdefault(key, {"viewed": 0, "bounced": 0, "views": 0})
        cell["viewed"] += 1
        cell["views"] += len(views)
        cell["bounced"] += len(events) == 1
    return {
        key: {"bounced_sessions": c["bounced"], "bounce_rate": c["bounced"] / c["viewed"],
              "pages_per_session": c["views"] / c["viewed"]}
        for key, c in out.items()
    }  # fmt: skip


def bounce_keys(part: dict[str, Any]) -> dict[str, Any]:
    return {k: part[k] for k in ("bounced_sessions", "bounce_rate", "pages_per_session")}


def bounce_report(client: Any, query: ReportQuery) -> dict[str, Any]:
    counts = query_report(client, "funnel", query, retention_ms=RULES.retention_ms)
    report: dict[str, Any] = orjson.loads(report_json(build_report(ReportRequest(query), counts)))
    return report


def test_bounce_rate_equals_the_reference(tmp_path: Path) -> None:
    rows = world()
    data = [
        raw_event_row(Accepted(e, RawMessage("events", 0, i, e.occurred_at_ms, None, b"{}")),
                      Outcome.LATE if late else Outcome.ACCEPTED)
        for i, (e, late) in enumerate(rows)
    ]  # fmt: skip
    config = ClickHouseConfig(dsn=f"chdb:///{(tmp_path / 'chdb').resolve()}")
    client = connect(config)
    lo = START + timedelta(minutes=3, milliseconds=17)
    hi = START + timedelta(minutes=47)
    try:
        migrate(client, config, now=datetime.now(UTC))
        client.command("SYSTEM STOP MERGES funnel.events_raw")
        for _ in range(2):  # the second time: a replay
            client.insert("funnel.events_raw", data, column_names=COLUMNS["events_raw"])
            report = bounce_report(client, ReportQuery(SITE, lo, hi, "device"))
            assert bounce_keys(report) == expected(rows, lo, hi, by_device=False)[""]
            by_device = {s["key"]: bounce_keys(s) for s in report["breakdown"]}
            assert by_device == expected(rows, lo, hi, by_device=True)
        assert 0 < report["bounce_rate"] < 1
    finally:
        client.close()


@pytest.mark.parametrize(
    ("gap_ms", "sessions", "bounced"),
    [
        (RULES.retention_ms, 1, 0),  # one session with two page views
        (RULES.retention_ms + 1, 2, 2),  # the id reused: two sessions, one page view each
    ],
)
def test_a_session_id_reused_after_the_retention_is_another_session(
    tmp_path: Path, gap_ms: int, sessions: int, bounced: int
) -> None:
    """The second page view is `gap_ms` after the first: the engine accepts both (rows as the
    worker writes them) and puts the second in a new session only past the retention."""
    first = ms(START)
    events = [Event("r-1", EventType.PAGE_VIEW, first, SITE, "r"),
              Event("r-2", EventType.PAGE_VIEW, first + gap_ms, SITE, "r")]  # fmt: skip
    engine = PartitionFunnel(DictStore(), RULES)
    result = engine.process_batch([(e, e.occurred_at_ms) for e in events])
    assert result.outcomes == (Outcome.ACCEPTED, Outcome.ACCEPTED)
    idle = first + gap_ms + 2 * RULES.retention_ms  # the wall clock closes every session
    facts = [
        *result.facts,
        *engine.tick(idle).facts,
        *engine.tick(idle + RULES.idle_after_ms).facts,
    ]
    starts = {f.session_start_ms for f in facts if isinstance(f, StageReached)}
    assert len(starts) == sessions  # the engine's own split
    data = [raw_event_row(Accepted(e, RawMessage("events", 0, i, e.occurred_at_ms, None, b"{}")),
                          Outcome.ACCEPTED) for i, e in enumerate(events)]  # fmt: skip
    config = ClickHouseConfig(dsn=f"chdb:///{(tmp_path / 'chdb').resolve()}")
    client = connect(config)
    span = ReportQuery(SITE, START, START + timedelta(milliseconds=gap_ms + 1))
    try:
        migrate(client, config, now=datetime.now(UTC))
        client.command("SYSTEM STOP MERGES funnel.events_raw")
        for _ in range(2):  # the second time: a replay
            client.insert("funnel.events_raw", data, column_names=COLUMNS["events_raw"])
            report = bounce_report(client, span)
            assert report["bounced_sessions"] == bounced
            assert report["bounce_rate"] == bounced / sessions
            assert report["pages_per_session"] == len(events) / sessions
    finally:
        client.close()


def test_a_reused_ids_session_without_a_page_view_is_not_viewed_from_the_epoch(
    tmp_path: Path,
) -> None:
    """Two page views, then an add_to_cart past the retention: that second session has no page
    view, so it is no viewed session whatever the range, even one starting at 1970."""
    first = ms(START)
    events = [Event("v-1", EventType.PAGE_VIEW, first, SITE, "v"),
              Event("v-2", EventType.PAGE_VIEW, first + 5_000, SITE, "v"),
              Event("v-3", EventType.ADD_TO_CART, first + 5_000 + RULES.retention_ms + 1,
                    SITE, "v")]  # fmt: skip
    data = [raw_event_row(Accepted(e, RawMessage("events", 0, i, e.occurred_at_ms, None, b"{}")),
                          Outcome.ACCEPTED) for i, e in enumerate(events)]  # fmt: skip
    config = ClickHouseConfig(dsn=f"chdb:///{(tmp_path / 'chdb').resolve()}")
    client = connect(config)
    try:
        migrate(client, config, now=datetime.now(UTC))
        client.command("SYSTEM STOP MERGES funnel.events_raw")  # June is past the raw TTL
        client.insert("funnel.events_raw", data, column_names=COLUMNS["events_raw"])
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        report = bounce_report(client, ReportQuery(SITE, epoch, START + timedelta(days=3)))
        assert report["bounced_sessions"] == 0
        assert report["pages_per_session"] == 2  # one viewed session, two page views
    finally:
        client.close()
