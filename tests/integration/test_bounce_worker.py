"""Issue 14 on the embedded stack: a second event late but within the bound ends a bounce.

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
        assert worker.total("funnel_events_consumed_total", outcome="late") == 1
        params = {"site": SITE, "from": (t0 - timedelta(minutes=1)).isoformat(),
                  "to": (t0 + timedelta(hours=1)).isoformat(), "format": "json"}  # fmt: skip
        url = f"http://127.0.0.1:{query_port}/report?{urlencode(params)}"
        with urllib.request.urlopen(url, timeout=60) as response:
            report: dict[str, Any] = orjson.loads(response.read())
    finally:
        assert worker.stop() == 0, worker.log_tail()
    viewed = 2 + len(fillers) + len(far)
    assert report["bounced_sessions"] == viewed - 1  # all but A
    assert report["bounce_rate"] == (viewed - 1) / viewed
    assert report["pages_per_session"] == 1.0
    assert report["late_events"] == 1
