"""Issue 14 across a worker crash: segments and figures do not depend on how delivery went.

Simulated customers' events (duplicates and retried orders included) go through tansu into a
real worker that is killed with SIGKILL part-way and restarted on the same data. The customers
document it then serves, and every customer's segment (from the CSV export), must equal the
reference computed from the raw events.
"""

from __future__ import annotations

import asyncio
import csv
import io
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from streams.funnel.rules import FunnelRules
from streams.kafka.topics import create_topics
from streams.local.embedded_broker import EmbeddedBroker
from streams.local.ports import free_port
from streams.report.segments import SEGMENTS
from streams.sim.generator import SimulatedMessage
from tests.integration.customers_reference import SUMMARY, expected_customers
from tests.integration.kpi_events import BASE, SITE, event_json, simulated_events
from tests.integration.pipeline import PipelineConfig, WorkerProcess, produce, watermarks_past

pytestmark = pytest.mark.integration


def get(port: int, params: dict[str, str]) -> bytes:
    url = f"http://127.0.0.1:{port}/customers?{urlencode(params)}"
    with urllib.request.urlopen(url, timeout=60) as response:
        body: bytes = response.read()
    return body


def test_segments_survive_a_killed_worker(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    events = sorted(
        (e for e in simulated_events(seed=17) if e.site_id == SITE),
        key=lambda e: e.occurred_at_ms,
    )
    messages = [SimulatedMessage(e.session_id.encode(), event_json(e)) for e in events]
    port = free_port()
    name = unique_topic("customers")
    config = PipelineConfig(
        broker.bootstrap, name, tmp_path,
        extra_env={"FUNNEL_QUERY_PORT": str(port), "FUNNEL_SPEND_TOPIC": f"{name}.spend",
                   "FUNNEL_MAX_EVENT_AGE_S": str(400 * 86_400), "FUNNEL_BATCH_MAX": "50"},
    )  # fmt: skip
    topics = {config.events_topic: 4, config.dlq_topic: 4, config.abandoned_topic: 4}
    asyncio.run(create_topics(broker.bootstrap, topics | {f"{name}.spend": 4}))
    asyncio.run(produce(broker.bootstrap, config.events_topic, messages))
    data_dir = tmp_path / "worker"
    first = WorkerProcess(config, data_dir)
    try:
        first.wait_until(
            lambda: first.total("funnel_events_consumed_total") >= len(messages) // 3,
            timeout=300, what="a third consumed",
        )  # fmt: skip
    finally:
        first.kill()
    worker = WorkerProcess(config, data_dir)
    as_of = BASE + timedelta(days=38, hours=3)
    params = {"site": SITE, "as_of": as_of.isoformat()}
    try:
        rules = FunnelRules()
        last_ms = events[-1].occurred_at_ms
        bound_s = (last_ms + rules.abandonment_ms + 2 * rules.lateness_ms) / 1000 + 1
        worker.wait_until(watermarks_past(worker, bound_s), timeout=300, what="events final")
        document: dict[str, Any] = orjson.loads(get(port, params | {"format": "json"}))
        segments: dict[str, str] = {}
        for segment in SEGMENTS:
            text = get(port, params | {"segment": segment, "format": "csv"}).decode()
            segments |= {row["user_id"]: segment for row in csv.DictReader(io.StringIO(text))}
    finally:
        assert worker.stop() == 0, worker.log_tail()
    reference = expected_customers(events, as_of)
    assert {key: document[key] for key in SUMMARY} == {key: reference[key] for key in SUMMARY}
    assert segments == reference["segments"]
