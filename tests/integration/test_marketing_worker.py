"""Issue 13 on the embedded stack: events and spend messages through tansu and a real worker.

Spend arrives on its own topic: a row rewritten by a newer `updated_at`, a stale rewrite that
must lose, the whole stream replayed, and bad messages that must reach the dead letters. The
worker's /marketing endpoint (while it runs) and `funnel marketing` (after it stopped) must
both equal the reference from the raw events and the spend rows; its /customers document equals
`funnel customers --json` run after it stopped.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from schemas.spend import SpendRow, decode_spend
from streams.funnel.rules import FunnelRules
from streams.kafka.topics import create_topics
from streams.local.embedded_broker import EmbeddedBroker
from streams.local.ports import free_port
from streams.sim.generator import SimulatedMessage
from tests.integration.kpi_events import BASE, DAYS, SITE, event_json, simulated_events
from tests.integration.marketing_reference import comparable, expected_marketing
from tests.integration.pipeline import (
    PipelineConfig,
    WorkerProcess,
    produce,
    query,
    watermarks_past,
)

pytestmark = pytest.mark.integration

BAD_SPEND = [b"{not json", b'{"date":"2026-03-05","site_id":"shop-m","utm_source":"google",'
             b'"cost":"-4","currency":"EUR"}', b'{"date":"2026-03-05","site_id":"shop-m",'
             b'"utm_source":"google","cost":"4","currency":"ABC"}']  # fmt: skip


CUSTOMERS = {
    "site": SITE, "as_of": (BASE + timedelta(days=40)).isoformat(), "cohorts": "month",
    "segments": "1",
}  # fmt: skip


def spend_messages() -> list[dict[str, Any]]:
    """A day per channel, each with an explicit version; day 25's google row is rewritten
    (newer version wins) and then sent a stale value (older version, must lose)."""
    docs = []
    for d in range(DAYS):
        day = (BASE + timedelta(days=d)).date().isoformat()
        for source, campaign, currency, cost in [
            ("Google ", "bf", "EUR", f"{d % 13}.10"), ("facebook", "bf", "USD", f"{d % 7}.5"),
            ("newsletter", "", "EUR", "0"),
        ]:  # fmt: skip
            docs.append({"date": day, "site_id": SITE, "utm_source": source,
                         "utm_campaign": campaign, "cost": cost, "currency": currency,
                         "clicks": d, "updated_at": "2026-05-01T00:00:00Z"})  # fmt: skip
    rewritten = docs[25 * 3] | {"cost": "777.77", "updated_at": "2026-05-02T00:00:00Z"}
    stale = docs[25 * 3] | {"cost": "1.00", "updated_at": "2026-04-30T00:00:00Z"}
    return [*docs, rewritten, stale]


def as_rows(docs: list[dict[str, Any]]) -> list[SpendRow]:
    rows = [decode_spend(doc, ingested_at_ms=0) for doc in docs]
    return [row for row in rows if isinstance(row, SpendRow)]


def via_endpoint(port: int, params: dict[str, str], route: str = "marketing") -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/{route}?{urlencode(params | {'format': 'json'})}"
    with urllib.request.urlopen(url, timeout=60) as response:
        result: dict[str, Any] = orjson.loads(response.read())
    return result


def via_cli(
    env: dict[str, str],
    params: dict[str, str],
    *,
    command: str = "marketing",
    args: list[str] | None = None,
) -> dict[str, Any]:
    args = args or [f"--{name.replace('_', '-')}={value}" for name, value in params.items()]
    done = subprocess.run(
        [sys.executable, "-m", "streams", command, *args, "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def test_spend_topic_and_endpoint_equal_the_reference(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    events = sorted(
        (e for e in simulated_events() if e.site_id == SITE), key=lambda e: e.occurred_at_ms
    )
    docs = spend_messages()
    query_port = free_port()
    name = unique_topic("marketing")
    config = PipelineConfig(
        broker.bootstrap, name, tmp_path,
        extra_env={
            "FUNNEL_QUERY_PORT": str(query_port), "FUNNEL_SPEND_TOPIC": f"{name}.spend",
            "FUNNEL_MAX_EVENT_AGE_S": str(400 * 86_400),
        },
    )  # fmt: skip
    topics = {config.events_topic: 4, config.dlq_topic: 4, config.abandoned_topic: 4}
    asyncio.run(create_topics(broker.bootstrap, topics | {f"{name}.spend": 4}))
    event_messages = [SimulatedMessage(e.session_id.encode(), event_json(e)) for e in events]
    spend = [SimulatedMessage(b"spend", orjson.dumps(doc)) for doc in docs]
    bad = [SimulatedMessage(None, raw) for raw in BAD_SPEND]
    asyncio.run(produce(broker.bootstrap, config.events_topic, event_messages))
    asyncio.run(produce(broker.bootstrap, f"{name}.spend", [*spend, *bad, *spend]))
    data_dir = tmp_path / "worker"
    cases = [
        {"site": SITE, "from": (BASE + timedelta(days=20, hours=5)).isoformat(),
         "to": (BASE + timedelta(days=40, hours=1)).isoformat(), "by": "utm_source",
         "attribution": "last_non_direct", "margin": "0.4"},
        {"site": SITE, "from": (BASE - timedelta(days=1)).isoformat(),
         "to": (BASE + timedelta(days=DAYS)).isoformat(), "by": "utm_campaign",
         "attribution": "first_touch", "margin": "1"},
    ]  # fmt: skip

    def expected(case: dict[str, str]) -> dict[str, Any]:
        return expected_marketing(
            events, as_rows(docs), site=SITE, start=datetime.fromisoformat(case["from"]),
            end=datetime.fromisoformat(case["to"]), by=case["by"],
            attribution=case["attribution"], margin=Decimal(case["margin"]),
        )  # fmt: skip

    worker = WorkerProcess(config, data_dir)
    try:
        worker.wait_until(
            lambda: worker.total("funnel_spend_messages_total", outcome="written")
            >= 2 * len(spend)
            and worker.total("funnel_spend_messages_total", outcome="invalid") >= len(bad),
            timeout=300, what="spend consumed",
        )  # fmt: skip
        rules = FunnelRules()
        last_ms = max(e.occurred_at_ms for e in events)
        bound_s = (last_ms + rules.abandonment_ms + 2 * rules.lateness_ms) / 1000 + 1
        worker.wait_until(watermarks_past(worker, bound_s), timeout=300, what="events final")
        for case in cases:
            assert comparable(via_endpoint(query_port, case)) == expected(case), case
        customers = via_endpoint(query_port, CUSTOMERS, route="customers")
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert worker_total_invalid(data_dir, f"{name}.spend") == [
        ("invalid_spend", "negative cost -4"),
        ("invalid_spend", "unknown currency 'ABC' (ISO 4217 expected)"),
        ("not_json", "not JSON"),
    ]
    env = config.env(data_dir=data_dir, metrics_port=free_port())
    for case in cases:
        assert comparable(via_cli(env, case)) == expected(case), case
    # The customers document: the same from the running worker and from the CLI.
    assert customers["customers"] > 0
    assert customers["cohorts"]
    assert sum(s["customers"] for s in customers["segments"]) == customers["customers"]
    cli = ["--site", SITE, "--as-of", CUSTOMERS["as_of"], "--cohorts", "month", "--segments"]
    assert via_cli(env, {}, command="customers", args=cli) == customers


def worker_total_invalid(data_dir: Path, topic: str) -> list[tuple[Any, ...]]:
    rows = query(
        data_dir,
        "SELECT DISTINCT reason_code, reason FROM funnel.dead_letters"
        " WHERE source_topic = {t:String} ORDER BY reason_code, reason",
        {"t": topic},
    )
    return [(code, reason.split(":")[0] if code == "not_json" else reason) for code, reason in rows]
