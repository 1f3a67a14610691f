"""Issue 14 on the embedded stack: a second event late but within the bound ends a bounce, and
a session id reused past the retention is another session.

One partition, so one watermark: session A's second event arrives after later traffic moved
the watermark ~3 minutes on (within the 5-minute lateness) and counts, so A did not bounce;
session B's second event arrives ~11 minutes behind, is stored as late and changes nothing, so
B bounced. The worker's report endpoint must say exactly that.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from streams.funnel.rules import FunnelRules
from streams.kafka.topics import create_topics
from streams.local.embedded_broker import EmbeddedBroker
from streams.local.ports import free_port
from streams.sim.generator import SimulatedMessage
from tests.integration.pipeline import PipelineConfig, WorkerProcess, produce

pytestmark = pytest.mark.integration

SITE = "shop-late"


def event(sid: str, eid: str, kind: str, at: datetime) -> SimulatedMessage:
    doc = {"event_id": eid, "event_type": kind, "occurred_at": at.isoformat(),
           "site_id": SITE, "session_id": sid}  # fmt: skip
    return SimulatedMessage(sid.encode(), orjson.dumps(doc))


def run_report(
    broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
    messages: list[SimulatedMessage],
    start: datetime,
    end: datetime,
) -> tuple[dict[str, Any], float]:
    """The worker's report on SITE for [start, end) once it has consumed ``messages``, and how
    many it judged late."""
    query_port = free_port()
    config = PipelineConfig(
        broker.bootstrap, unique_topic("bounce"), tmp_path, partitions=1,
        extra_env={"FUNNEL_QUERY_PORT": str(query_port), "FUNNEL_SPEND_TOPIC":
                   unique_topic("bounce-spend")},
    )  # fmt: skip
    topics = {config.events_topic: 1, config.dlq_topic: 1, config.abandoned_topic: 1}
    asyncio.run(
        create_topics(broker.bootstrap, topics | {config.extra_env["FUNNEL_SPEND_TOPIC"]: 1})
    )
    asyncio.run(produce(broker.bootstrap, config.events_topic, messages))
    worker = WorkerProcess(config, tmp_path / "worker")
    try:
        worker.wait_until(
            lambda: worker.total("funnel_events_consumed_total") >= len(messages),
            timeout=300, what="all events consumed",
        )  # fmt: skip
        late = worker.total("funnel_events_consumed_total", outcome="late")
        params = {"site": SITE, "from": start.isoformat(), "to": end.isoformat(),
                  "format": "json"}  # fmt: skip
        url = f"http://127.0.0.1:{query_port}/report?{urlencode(params)}"
        with urllib.request.urlopen(url, timeout=60) as response:
            report: dict[str, Any] = orjson.loads(response.read())
    finally:
        assert worker.stop() == 0, worker.log_tail()
    return report, late


def test_a_late_second_event_within_the_bound_is_not_a_bounce(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    fillers = [
        event(f"f{i}", f"f{i}", "page_view", t0 + timedelta(seconds=60 + i)) for i in range(140)
    ]
    far = [
        event(f"g{i}", f"g{i}", "page_view", t0 + timedelta(seconds=600 + i)) for i in range(100)
    ]
    messages = [
        event("A", "A1", "page_view", t0),
        event("B", "B1", "page_view", t0 + timedelta(seconds=1)),
        *fillers,  # watermark at t0 + 199 s
        event("A", "A2", "add_to_cart", t0 + timedelta(seconds=2)),  # 197 s behind: counts
        *far,  # watermark at t0 + 699 s
        event("B", "B2", "add_to_cart", t0 + timedelta(seconds=5)),  # 694 s behind: late
    ]  # fmt: skip
    start, end = t0 - timedelta(minutes=1), t0 + timedelta(hours=1)
    report, late = run_report(broker, unique_topic, tmp_path, messages, start, end)
    assert late == 1
    viewed = 2 + len(fillers) + len(far)
    assert report["bounced_sessions"] == viewed - 1  # all but A
    assert report["bounce_rate"] == (viewed - 1) / viewed
    assert report["pages_per_session"] == 1.0
    assert report["late_events"] == 1


def test_a_session_id_reused_after_the_retention_is_another_session(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    """R's second page view comes an hour past the retention after its first: the worker counts
    it in another session of the same id, and both bounced. S's two page views are within the
    retention: one session, not bounced."""
    retention = timedelta(milliseconds=FunnelRules().retention_ms)  # the worker's defaults
    t0 = datetime.now(UTC).replace(microsecond=0) - retention - timedelta(hours=3)
    reuse = t0 + retention + timedelta(hours=1)
    messages = [
        event("R", "R1", "page_view", t0),
        event("S", "S1", "page_view", t0 + timedelta(seconds=1)),
        event("S", "S2", "page_view", t0 + timedelta(hours=1)),
        event("R", "R2", "page_view", reuse),
    ]
    end = reuse + timedelta(seconds=1)
    report, late = run_report(broker, unique_topic, tmp_path, messages, t0, end)
    assert late == 0
    assert (report["bounced_sessions"], report["bounce_rate"]) == (2, 2 / 3)
    assert report["pages_per_session"] == 4 / 3
