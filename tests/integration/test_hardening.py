"""Issue 10 on the real stack (tansu, `funnel worker` processes, chDB): one bad producer, one
huge session or one full disk must not stop or skew the pipeline.

Every test compares against the reference (tests/unit/funnel/reference.py) computed from the
deduplicated events the test itself sent. The worker runs with a short abandonment timeout and
lateness so that everything becomes final within the test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas.decode import DecodeLimits, decode_event
from schemas.event import Event
from sinks.report_queries import ReportQuery, query_report
from streams.funnel.facts import CartStatus
from streams.funnel.rules import FunnelRules, SessionLimits
from streams.kafka.topics import create_topics
from streams.local.embedded_broker import EmbeddedBroker
from streams.sim.generator import SimulatedMessage, SimulationConfig, generate
from streams.worker.fatal import EXIT_FATAL
from tests.integration.exactness import Answer, answer_of, assert_same, stored_answer
from tests.integration.pipeline import (
    PipelineConfig,
    WorkerProcess,
    clickhouse,
    produce,
    query,
    read_all,
)
from tests.unit.funnel.reference import reference

pytestmark = pytest.mark.integration

RULES = FunnelRules(lateness_ms=60_000, abandonment_ms=120_000)
ENV = {"FUNNEL_LATENESS_S": "60", "FUNNEL_ABANDONMENT_TIMEOUT_S": "120"}
HOUR_MS = 3_600_000
ABUSE_SITE = "abuse-shop"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def honest(seed: int, count: int, *, end_ms: int) -> list[SimulatedMessage]:
    """Valid simulator traffic of the last half hour up to `end_ms`, in delivery order."""
    start = datetime.fromtimestamp((end_ms - 30 * 60_000) / 1000, tz=UTC)
    config = SimulationConfig(
        start=start, seed=seed, sessions=None, session_rate=5.0, duplicate_rate=0.05,
        out_of_order_ms=20_000,
    )  # fmt: skip
    kept = []
    for message in generate(config):
        if occurred_at(message.value) <= end_ms:
            kept.append(message)
        if len(kept) == count:
            return kept
    raise AssertionError("simulator ended early")


def occurred_at(value: bytes) -> int:
    event = decode_event(value, now_ms=now_ms(), limits=DecodeLimits())
    assert isinstance(event, Event), event
    return event.occurred_at_ms


def events_of(values: Iterable[bytes]) -> list[Event]:
    now = now_ms()
    events = [decode_event(v, now_ms=now, limits=DecodeLimits()) for v in values]
    assert all(isinstance(e, Event) for e in events)
    return [e for e in events if isinstance(e, Event)]


def expected(events: Sequence[Event]) -> Answer:
    return answer_of(reference(events, RULES))


def abandoned_count(events: Sequence[Event]) -> int:
    return sum(1 for c in reference(events, RULES).carts if c.status is CartStatus.ABANDONED)


def without_site(answer: Answer, site: str) -> Answer:
    return Answer(
        frozenset(r for r in answer.stages if r[0] != site),
        frozenset(r for r in answer.orders if r[0] != site),
        frozenset(r for r in answer.carts if r[0] != site),
    )


def event_json(
    site: str, session: str, event_id: str, kind: str, at_ms: int, **extra: Any
) -> bytes:
    doc = {"event_id": event_id, "event_type": kind, "occurred_at": at_ms, "site_id": site,
           "session_id": session, **extra}  # fmt: skip
    return orjson.dumps(doc)


async def produce_stamped(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes, int]]
) -> None:
    """Messages with the Kafka timestamp a producer with its own (wrong) clock would set."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value, timestamp_ms in records:
            await producer.send_and_wait(topic, value, key=key, timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()


def pipeline(
    broker: EmbeddedBroker, name: str, tmp_path: Path, partitions: int = 4, **env: str
) -> PipelineConfig:
    config = PipelineConfig(broker.bootstrap, name, tmp_path, partitions=partitions,
                            extra_env={**ENV, **env})  # fmt: skip
    n = partitions
    topics = {config.events_topic: n, config.dlq_topic: n, config.abandoned_topic: n}
    asyncio.run(create_topics(broker.bootstrap, topics))
    return config


def final(worker: WorkerProcess, last_event_ms: int) -> Callable[[], bool]:
    bound_s = (last_event_ms + RULES.abandonment_ms + 2 * RULES.lateness_ms) / 1000 + 1

    def check() -> bool:
        marks = [
            v for (name, _), v in worker.metrics().items() if name == "funnel_watermark_seconds"
        ]
        return len(marks) == 4 and min(marks) >= bound_s

    return check


def test_fast_and_slow_producer_clocks_leave_the_honest_numbers_exact(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    end = now_ms() - 5 * 60_000
    traffic = honest(seed=31, count=3_000, end_ms=end)
    config = pipeline(broker, unique_topic("skew"), tmp_path)
    assert asyncio.run(produce(broker.bootstrap, config.events_topic, traffic)) == len(traffic)
    # Three storefronts whose clocks are off: both the event time and the Kafka timestamp.
    skewed: list[tuple[bytes, bytes, int]] = []
    for offset_ms, name in (
        (23 * HOUR_MS, "fast23h"),
        (HOUR_MS, "fast1h"),
        (-2 * HOUR_MS, "slow2h"),
    ):
        clock = now_ms() + offset_ms
        for n in range(8):
            session = f"{name}-{n}"
            for i, kind in enumerate(("page_view", "add_to_cart", "checkout")):
                extra = {"items": [{"sku": "a", "quantity": 1, "price": "9.90"}]} if i == 1 else {}
                value = event_json(
                    "skewed-shop", session, f"{session}-{i}", kind, clock + i, **extra
                )
                skewed.append((session.encode(), value, clock + i))
    asyncio.run(produce_stamped(broker.bootstrap, config.events_topic, skewed))
    honest_events = events_of(m.value for m in traffic)

    worker = WorkerProcess(config, tmp_path / "worker")
    try:
        worker.wait_until(final(worker, end), timeout=600, what="all partitions final")
        future = worker.total("funnel_events_future_total")
        assert future == 2 * 8 * 3
        assert worker.total("funnel_events_consumed_total", outcome="late") == 8 * 3
    finally:
        assert worker.stop() == 0, worker.log_tail()

    assert_same(stored_answer([worker.data_dir]), expected(honest_events))
    flags = query(
        worker.data_dir,
        "SELECT site_id = 'skewed-shop', countIf(late), countIf(future) FROM funnel.events_raw "
        "GROUP BY 1 ORDER BY 1",
    )
    # No honest event late; the slow clock's events are 2 h old: late; the fast ones flagged.
    assert flags == [(False, 0, 0), (True, 8 * 3, 2 * 8 * 3)]
    # Not one false abandonment: the abandoned-cart topic holds the reference's and no more.
    published = asyncio.run(
        read_all(broker.bootstrap, config.abandoned_topic, abandoned_count(honest_events))
    )
    assert len(published) == abandoned_count(honest_events)


def test_a_cart_bomb_and_a_100k_event_session_are_capped_and_the_rest_stays_exact(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    end = now_ms() - 5 * 60_000
    traffic = honest(seed=32, count=4_000, end_ms=end)
    first, second = traffic[:2_000], traffic[2_000:]
    at = max(occurred_at(m.value) for m in first) - 10_000  # inside the lateness: not late
    bomb = [
        SimulatedMessage(b"bomb", event_json(ABUSE_SITE, "bomb", f"bomb-{n}", "add_to_cart", at,
                         items=[{"sku": f"bomb-sku-{n}-{i:03d}", "quantity": 1, "price": "1"}
                                for i in range(500)]))
        for n in range(16)
    ]  # fmt: skip
    bot = (
        SimulatedMessage(b"bot", event_json(ABUSE_SITE, "bot", f"bot-{n:06d}", "page_view", at))
        for n in range(100_000)
    )
    config = pipeline(broker, unique_topic("bomb"), tmp_path, FUNNEL_SESSION_MAX_PENDING="200000")
    limits = SessionLimits()
    # All in the topic before the worker starts (no idle pause between waves); the second
    # honest wave comes after the bomb and the bot in offset order: the worker must go on.
    for wave in (first, bomb, bot, second):
        asyncio.run(produce(broker.bootstrap, config.events_topic, wave))
    worker = WorkerProcess(config, tmp_path / "worker")
    try:
        worker.wait_until(final(worker, end), timeout=900, what="all partitions final")
        capped = (16 - limits.max_item_lines // 500) + (100_000 - limits.max_events)
        assert worker.total("funnel_session_capped_total") == capped
        assert worker.total("funnel_events_consumed_total", outcome="capped") == capped
    finally:
        assert worker.stop() == 0, worker.log_tail()

    stored = without_site(stored_answer([worker.data_dir]), ABUSE_SITE)
    assert_same(stored, expected(events_of(m.value for m in traffic)))
    assert query(worker.data_dir, "SELECT countIf(capped) FROM funnel.events_raw FINAL") == [
        (capped,)
    ]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterable[Path]:
    """A 64 MiB tmpfs for the worker's chDB, so ClickHouse really runs out of space."""
    mount = tmp_path / "worker" / "chdb"
    mount.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    filler = mount / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 1_048_576)
                out.flush()
        except OSError:
            pass
    return filler


def test_disk_full_stops_the_worker_non_zero_and_a_restart_resumes_exactly(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path, tiny_disk: Path
) -> None:
    end = now_ms() - 5 * 60_000
    traffic = honest(seed=33, count=3_000, end_ms=end)
    first, second = traffic[:1_000], traffic[1_000:]
    config = pipeline(broker, unique_topic("diskfull"), tmp_path)
    data_dir = tmp_path / "worker"
    asyncio.run(produce(broker.bootstrap, config.events_topic, first))
    # No idle advance in the pause between the waves: the wall clock would make the second
    # wave late (its events are minutes old). The restarted worker idles normally, to finish.
    no_idle = dataclasses.replace(config, extra_env={**config.extra_env,
                                                     "FUNNEL_IDLE_AFTER_S": "3600"})  # fmt: skip
    worker = WorkerProcess(no_idle, data_dir)
    worker.wait_until(
        lambda: worker.total("funnel_events_consumed_total") >= len(first), timeout=300,
        what="first wave consumed",
    )  # fmt: skip
    assert worker.total("funnel_up") == 1
    filler = fill(tiny_disk)
    asyncio.run(produce(broker.bootstrap, config.events_topic, second))
    started = time.monotonic()
    code = worker.wait_exit(timeout=300)
    took = time.monotonic() - started
    log = worker.log_tail(20_000)
    assert code == EXIT_FATAL, log
    assert "funnel worker stopping" in log
    assert "disk full" in log
    print(f"worker exited {code} {took:.1f} s after the disk filled")

    filler.unlink()
    worker = WorkerProcess(config, data_dir)
    try:
        worker.wait_until(final(worker, end), timeout=600, what="all partitions final")
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert_same(stored_answer([data_dir]), expected(events_of(m.value for m in traffic)))


def test_a_reused_session_id_is_two_sessions_in_every_table_and_the_report(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    second = now_ms() - 10 * 60_000
    first = second - 26 * HOUR_MS  # more than the retention (W 24 h + 1 h) before
    item = {"items": [{"sku": "a", "quantity": 1, "price": "5"}]}
    values = [
        event_json("shop-1", "kiosk", "v1-pv", "page_view", first),
        event_json("shop-1", "kiosk", "v1-add", "add_to_cart", first + 1_000, **item),
        event_json("shop-1", "kiosk", "v2-pv", "page_view", second),
        event_json("shop-1", "kiosk", "v2-add", "add_to_cart", second + 1_000, **item),
    ]
    # Several partitions: event times alone tell the reuse apart, whether or not the other
    # partitions' progress (the repartition hold) is known yet when the revisit is read.
    config = pipeline(broker, unique_topic("reuse"), tmp_path)
    # The first session's page view redelivered after the second session started: late.
    messages = [SimulatedMessage(b"kiosk", v) for v in [*values, values[0]]]
    asyncio.run(produce(broker.bootstrap, config.events_topic, messages))
    worker = WorkerProcess(config, tmp_path / "worker")
    try:
        worker.wait_until(
            lambda: worker.total("funnel_cart_transitions_total", status="abandoned") >= 2,
            timeout=300, what="both carts abandoned",
        )  # fmt: skip
    finally:
        assert worker.stop() == 0, worker.log_tail()
    events = events_of(values)
    assert_same(stored_answer([worker.data_dir]), expected(events))
    report = ReportQuery(
        "shop-1",
        datetime.fromtimestamp(first / 1000 - 60, tz=UTC),
        datetime.fromtimestamp(second / 1000 + 3600, tz=UTC),
    )
    with clickhouse(worker.data_dir) as client:
        for optimize in (False, True):
            if optimize:
                for table in ("stage_entries", "orders", "carts", "events_raw"):
                    client.command(f"OPTIMIZE TABLE funnel.{table} FINAL")
            counts = query_report(client, "funnel", report, retention_ms=RULES.retention_ms)
            assert counts.total.sessions == (2, 2, 0, 0), optimize
            assert (counts.total.carts_opened, counts.total.carts_abandoned) == (2, 2), optimize
            assert counts.late_events == 1, optimize
            # The late copy sits beside the counted row; a merge never turns that one late.
            copies = client.query(
                "SELECT late FROM funnel.events_raw FINAL WHERE event_id = 'v1-pv' ORDER BY late"
            ).result_rows
            assert [late for (late,) in copies] == [False, True], optimize
