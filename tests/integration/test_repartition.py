"""Issue 11 acceptance: an event's effect does not depend on its Kafka key, even in a backlog.

Every message is produced before a worker starts (a backlog of > 3 h of event time), with keys
mixed as real producers do: none (round-robin HTTP collectors), a user id, or the session. The
workers' tables must equal the reference computed from the deduplicated raw events, with no
event judged late, through kill -9 and across two workers.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.decode import DecodeLimits, decode_event
from schemas.event import Event
from sinks.report_queries import ReportQuery, query_report
from streams.funnel.facts import CartStatus
from streams.funnel.rules import FunnelRules
from streams.kafka.producer import EventProducer
from streams.local.embedded_broker import EmbeddedBroker
from streams.sim.generator import SimulatedMessage, SimulationConfig, generate
from streams.sim.traffic import MESSAGES_PER_SESSION
from streams.worker.repartition import partition_for
from tests.integration.exactness import (
    RULES,
    assert_same,
    expected_answer,
    final_bound_s,
    finalised,
    stored_answer,
    two_workers_until_final,
)
from tests.integration.pipeline import PipelineConfig, WorkerProcess, clickhouse, query
from tests.integration.report_reference import earliest_orders, final_carts, instant
from tests.unit.funnel.reference import reference

pytestmark = pytest.mark.integration

PARTITIONS = 4
BACKLOG_MESSAGES = 52_000
EVENT_HOURS = 3.2


def backlog(seed: int, count: int) -> list[SimulatedMessage]:
    """`count` messages spread over EVENT_HOURS of event time, ending ~1 h ago, so the idle
    wall clock finalises everything (abandonments included) once the backlog is read."""
    span_s = EVENT_HOURS * 3600
    config = SimulationConfig(
        start=datetime.now(UTC) - timedelta(hours=EVENT_HOURS + 1), seed=seed, sessions=None,
        session_rate=count / MESSAGES_PER_SESSION / span_s, duplicate_rate=0.05,
        out_of_order_ms=60_000, invalid_rate=0.01,
    )  # fmt: skip
    return list(itertools.islice(generate(config), count))


def mix_keys(
    messages: Iterable[SimulatedMessage], *, unkeyed: float, by_user: float, seed: int
) -> list[SimulatedMessage]:
    """Re-key a share of the messages: none, or the user id (a random id when anonymous)."""
    rng = random.Random(seed)
    mixed = []
    for m in messages:
        draw = rng.random()
        if draw < unkeyed:
            m = m._replace(key=None)
        elif draw < unkeyed + by_user:
            user = orjson.loads(m.value).get("user_id") if m.valid else None
            m = m._replace(key=(user or f"anon-{rng.randrange(10**9)}").encode())
        mixed.append(m)
    return mixed


def forwarded_count(messages: Iterable[SimulatedMessage]) -> int:
    """Valid messages that land outside their session's partition, placed as EventProducer
    places them (keys by murmur2, unkeyed round-robin from partition 0)."""
    count, unkeyed = 0, 0
    for m in messages:
        if m.key is None:
            partition, unkeyed = unkeyed % PARTITIONS, unkeyed + 1
        else:
            partition = partition_for(m.key.decode(), PARTITIONS)
        if m.valid and partition != partition_for(orjson.loads(m.value)["session_id"], PARTITIONS):
            count += 1
    return count


def prepare(
    broker: EmbeddedBroker, name: str, tmp_path: Path, messages: list[SimulatedMessage]
) -> PipelineConfig:
    config = PipelineConfig(broker.bootstrap, name, tmp_path, partitions=PARTITIONS)
    config.create_topics()
    assert asyncio.run(send(broker.bootstrap, config.events_topic, messages)) == len(messages)
    return config


async def send(bootstrap: str, topic: str, messages: Iterable[SimulatedMessage]) -> int:
    async with EventProducer(bootstrap, topic) as producer:
        return await producer.send_raw_many((m.key, m.value) for m in messages)


Totals = defaultdict[tuple[object, ...], Decimal]


def expected_totals(messages: Iterable[SimulatedMessage]) -> Totals:
    """Stage sessions, orders, revenue and carts by status, per site and device."""
    now_ms = time.time_ns() // 1_000_000
    decoded = [decode_event(m.value, now_ms=now_ms, limits=DecodeLimits()) for m in messages]
    facts = reference([e for e in decoded if isinstance(e, Event)], RULES)
    totals: Totals = defaultdict(Decimal)
    for s in facts.stages:
        totals["stage", s.site_id, s.dims.device or "", int(s.stage)] += 1
    for o in earliest_orders(facts.orders):
        totals["orders", o.site_id, o.dims.device or "", o.currency or ""] += 1
        totals["revenue", o.site_id, o.dims.device or "", o.currency or ""] += o.value
    for c in final_carts(facts.carts):
        device = c.dims.device or ""
        totals["carts opened", c.site_id, device] += 1
        if c.status in (CartStatus.ABANDONED, CartStatus.RECOVERED):
            totals["carts abandoned", c.site_id, device] += 1
        if c.status is CartStatus.RECOVERED:
            totals["carts recovered", c.site_id, device] += 1
    return totals


def stored_totals(data_dirs: Iterable[Path]) -> Totals:
    """The same totals from the workers' tables (union: a moved partition wrote both)."""
    stages: set[tuple[Any, ...]] = set()
    orders: dict[tuple[str, str], tuple[Any, ...]] = {}
    carts: dict[tuple[str, str, int], tuple[Any, ...]] = {}
    for d in data_dirs:
        stages |= set(
            query(d, "SELECT site_id, session_id, device, stage FROM funnel.stage_entries")
        )
        for site, order, device, currency, value, at in query(
            d, "SELECT site_id, order_id, device, currency, toString(value), occurred_at "
            "FROM funnel.orders",
        ):  # fmt: skip
            if (site, order) not in orders or at < orders[site, order][2]:
                orders[site, order] = (device, currency, at, Decimal(value))
        for site, session, seq, version, device, status in query(
            d, "SELECT site_id, session_id, cart_seq, version, device, status FROM funnel.carts"
        ):
            if carts.get((site, session, seq), (-1,))[0] < version:
                carts[site, session, seq] = (version, site, device, status)
    totals: Totals = defaultdict(Decimal)
    for site, _session, device, stage in stages:
        totals["stage", site, device, stage] += 1
    for (site, _order), (device, currency, _at, value) in orders.items():
        totals["orders", site, device, currency] += 1
        totals["revenue", site, device, currency] += value
    for _version, site, device, status in carts.values():
        totals["carts opened", site, device] += 1
        if status in ("abandoned", "recovered"):
            totals["carts abandoned", site, device] += 1
        if status == "recovered":
            totals["carts recovered", site, device] += 1
    return totals


def late_count(data_dirs: Iterable[Path]) -> int:
    return sum(
        query(d, "SELECT countIf(late) FROM funnel.events_raw FINAL")[0][0] for d in data_dirs
    )


def check(messages: list[SimulatedMessage], data_dirs: list[Path]) -> None:
    expected, _ = expected_answer(messages)
    assert late_count(data_dirs) == 0
    assert stored_totals(data_dirs) == expected_totals(messages)
    assert_same(stored_answer(data_dirs), expected)


def wait_final(worker: WorkerProcess, messages: list[SimulatedMessage]) -> None:
    _, last_event_ms = expected_answer(messages)
    worker.wait_until(
        finalised(worker, PARTITIONS, final_bound_s(last_event_ms)), timeout=900,
        what="all partitions final",
    )  # fmt: skip


@pytest.mark.parametrize(("unkeyed", "by_user"), [(0.3, 0.1), (1.0, 0.0)], ids=["mixed", "null"])
def test_backlog_counts_exactly_whatever_the_keys(
    broker: EmbeddedBroker,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
    unkeyed: float,
    by_user: float,
) -> None:
    messages = mix_keys(backlog(21, BACKLOG_MESSAGES), unkeyed=unkeyed, by_user=by_user, seed=21)
    config = prepare(broker, unique_topic("backlog"), tmp_path, messages)
    worker = WorkerProcess(config, tmp_path / "worker")
    try:
        wait_final(worker, messages)
        forwarded = worker.total("funnel_repartitioned_total")
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert forwarded == forwarded_count(messages)
    check(messages, [worker.data_dir])


def test_backlog_killed_mid_stream_and_with_forwards_in_flight(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    messages = mix_keys(backlog(22, BACKLOG_MESSAGES), unkeyed=0.3, by_user=0.1, seed=22)
    config = prepare(broker, unique_topic("killed"), tmp_path, messages)
    data_dir = tmp_path / "worker"

    worker = WorkerProcess(config, data_dir)
    worker.wait_until(lambda: worker.total("funnel_events_consumed_total") >= 20_000,
                      timeout=600, what="20,000 events consumed")  # fmt: skip
    worker.kill()
    # Killed the moment it has forwarded events that the repartition topic still holds unread.
    worker = WorkerProcess(config, data_dir)
    worker.wait_until(
        lambda: worker.total("funnel_repartitioned_total") >= 1_000
        and worker.total("funnel_repartition_lag_messages") > 0,
        timeout=600, what="forwarded events in flight",
    )  # fmt: skip
    worker.kill()

    worker = WorkerProcess(config, data_dir)
    try:
        wait_final(worker, messages)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    check(messages, [data_dir])


def test_two_workers_with_mixed_keys(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    messages = mix_keys(backlog(23, 20_000), unkeyed=0.3, by_user=0.1, seed=23)
    config = prepare(broker, unique_topic("pair"), tmp_path, messages)
    _, last_event_ms = expected_answer(messages)
    check(messages, two_workers_until_final(config, last_event_ms))


def test_an_event_hours_old_stays_late_and_changes_nothing(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    messages = mix_keys(backlog(24, 6_000), unkeyed=0.3, by_user=0.1, seed=24)
    config = prepare(broker, unique_topic("late"), tmp_path, messages)
    now_ms = time.time_ns() // 1_000_000
    decoded = [decode_event(m.value, now_ms=now_ms, limits=DecodeLimits()) for m in messages]
    newest_ms = max(e.occurred_at_ms for e in decoded if isinstance(e, Event))
    # A purchase of a real session, sent at the end, 3 h older than the newest event: once
    # unkeyed (round-robin puts it in partition 0, not its session's: it is forwarded) and
    # once keyed by its session (processed where it lands).
    session = next(
        e for e in decoded if isinstance(e, Event) and partition_for(e.session_id, PARTITIONS)
    )
    old_ms = newest_ms - 3 * 3600 * 1000
    late = [
        SimulatedMessage(key, orjson.dumps({
            "event_id": f"late-{i}", "event_type": "purchase", "occurred_at": old_ms,
            "site_id": session.site_id, "session_id": session.session_id,
            "order_id": f"late-order-{i}", "value": "99.00", "currency": "EUR",
        }))
        for i, key in enumerate([None, session.session_id.encode()])
    ]  # fmt: skip
    worker = WorkerProcess(config, tmp_path / "worker")
    try:
        wait_final(worker, messages)
        forwarded = worker.total("funnel_repartitioned_total")
        assert asyncio.run(send(broker.bootstrap, config.events_topic, late)) == 2
        worker.wait_until(lambda: worker.total("funnel_events_consumed_total", outcome="late") == 2,
                          timeout=300, what="both old events judged late")  # fmt: skip
        assert worker.total("funnel_repartitioned_total") == forwarded + 1
    finally:
        assert worker.stop() == 0, worker.log_tail()
    stored = query(worker.data_dir, "SELECT event_id FROM funnel.events_raw FINAL WHERE late")
    assert sorted(stored) == [("late-0",), ("late-1",)]
    with clickhouse(worker.data_dir) as client:
        span = ReportQuery(session.site_id, instant(old_ms), instant(newest_ms + 1))
        counts = query_report(client, "funnel", span, retention_ms=FunnelRules().retention_ms)
        assert counts.late_events == 2
    expected, _ = expected_answer(messages)
    assert_same(stored_answer([worker.data_dir]), expected)
