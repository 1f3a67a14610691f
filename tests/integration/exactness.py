"""The funnel-exactness harness: simulate, run the reference, read the workers' answer.

Shared by test_funnel_exactness and test_sink_outage. The reference
(tests/unit/funnel/reference.py) is computed from the deduplicated raw events the test itself
generated; the workers' answer is read back from their ClickHouse tables.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from schemas.decode import DecodeLimits, decode_event
from schemas.event import Event
from streams.funnel.rules import FunnelRules
from streams.local.embedded_broker import EmbeddedBroker
from streams.sim.generator import SimulatedMessage, SimulationConfig, generate
from tests.integration.pipeline import PipelineConfig, WorkerProcess, produce, query
from tests.unit.funnel.reference import Expected, reference

RULES = FunnelRules()  # the worker's defaults: W 24 h, L 5 min, T 30 min


@dataclass(frozen=True)
class Answer:
    """The funnel's final numbers, in a shape both sides can produce independently."""

    stages: frozenset[tuple[str, str, int, int]]  # site, session, stage, reached_at_ms
    orders: frozenset[tuple[str, str, int, Decimal, str]]  # site, order, at, value, currency
    carts: frozenset[tuple[str, str, int, str, int, int | None]]  # …, status, opened, closed


def simulate(seed: int, count: int) -> tuple[list[SimulatedMessage], datetime]:
    start = datetime.now(UTC) - timedelta(hours=3)
    config = SimulationConfig(
        start=start, seed=seed, sessions=None, session_rate=50.0, duplicate_rate=0.05,
        out_of_order_ms=30_000, invalid_rate=0.01,
    )  # fmt: skip
    return list(itertools.islice(generate(config), count)), start


def expected_answer(messages: Iterable[SimulatedMessage]) -> tuple[Answer, int]:
    now_ms = time.time_ns() // 1_000_000
    events = [
        decode_event(m.value, now_ms=now_ms, limits=DecodeLimits()) for m in messages if m.valid
    ]
    assert all(isinstance(e, Event) for e in events)
    answer = answer_of(reference([e for e in events if isinstance(e, Event)], RULES))
    last_event_ms = max(e.occurred_at_ms for e in events if isinstance(e, Event))
    return answer, last_event_ms


def answer_of(expected: Expected) -> Answer:
    """The reference's facts in the shape of `Answer`: each cart at its final status."""
    final_carts: dict[tuple[str, str, int, int], tuple[str, str, int, str, int, int | None]] = {}
    for cart in sorted(expected.carts, key=lambda c: c.status):
        final_carts[cart.site_id, cart.session_id, cart.session_start_ms, cart.cart_seq] = (
            cart.site_id, cart.session_id, cart.cart_seq, cart.status.name.lower(),
            cart.opened_at_ms, cart.closed_at_ms,
        )  # fmt: skip
    return Answer(
        stages=frozenset(
            (s.site_id, s.session_id, int(s.stage), s.reached_at_ms) for s in expected.stages
        ),
        orders=frozenset(
            (o.site_id, o.order_id, o.occurred_at_ms, o.value, o.currency or "")
            for o in expected.orders
        ),
        carts=frozenset(final_carts.values()),
    )


Query = Callable[[str], list[tuple[Any, ...]]]


def stored_answer(data_dirs: Iterable[Path]) -> Answer:
    """Union over the workers' databases; a partition that moved left identical rows in both."""
    return answer_from([functools.partial(query, data_dir) for data_dir in data_dirs])


def answer_from(databases: Iterable[Query]) -> Answer:
    stages: set[tuple[str, str, int, int]] = set()
    orders: set[tuple[str, str, int, Decimal, str]] = set()
    carts: dict[
        tuple[str, str, int, int], tuple[int, tuple[str, str, int, str, int, int | None]]
    ] = {}
    for run in databases:
        stages |= {
            (site, session, stage, ms)
            for site, session, stage, ms in run(
                "SELECT site_id, session_id, stage, toUnixTimestamp64Milli(reached_at) "
                "FROM funnel.stage_entries",
            )
        }
        orders |= {
            (site, order, ms, Decimal(value), currency)
            for site, order, ms, value, currency in run(
                "SELECT site_id, order_id, toUnixTimestamp64Milli(occurred_at), toString(value), "
                "currency FROM funnel.orders",
            )
        }
        for site, session, start, seq, version, status, opened, closed in run(
            "SELECT site_id, session_id, toUnixTimestamp64Milli(session_start), cart_seq, version, "
            "status, toUnixTimestamp64Milli(opened_at), toUnixTimestamp64Milli(closed_at) "
            "FROM funnel.carts",
        ):
            key = (site, session, start, seq)
            if key not in carts or carts[key][0] < version:
                carts[key] = (version, (site, session, seq, status, opened, closed))
    return Answer(frozenset(stages), frozenset(orders), frozenset(row for _, row in carts.values()))


def assert_same(actual: Answer, expected: Answer) -> None:
    # Sizes first: a readable failure when whole groups of rows are missing or doubled.
    assert (len(actual.stages), len(actual.orders), len(actual.carts)) == (
        len(expected.stages), len(expected.orders), len(expected.carts),
    )  # fmt: skip
    assert actual.stages == expected.stages
    assert actual.orders == expected.orders
    assert actual.carts == expected.carts


def finalised(worker: WorkerProcess, partitions: int, bound_s: float) -> Callable[[], bool]:
    """True once every partition's watermark has moved past the last event's consequences."""

    def check() -> bool:
        marks = [
            value
            for (name, _), value in worker.metrics().items()
            if name == "funnel_watermark_seconds"
        ]
        return len(marks) == partitions and min(marks) >= bound_s

    return check


def final_bound_s(last_event_ms: int) -> float:
    # Everything, abandonment timeouts included, is final once watermark - L passes last + T.
    return (last_event_ms + RULES.abandonment_ms + 2 * RULES.lateness_ms) / 1000 + 1


def prepare(
    broker: EmbeddedBroker, name: str, tmp_path: Path, messages: list[SimulatedMessage]
) -> PipelineConfig:
    config = PipelineConfig(broker.bootstrap, name, tmp_path, partitions=4)
    config.create_topics()
    assert asyncio.run(produce(broker.bootstrap, config.events_topic, messages)) == len(messages)
    return config


def two_workers_until_final(config: PipelineConfig, last_event_ms: int) -> list[Path]:
    """Two workers split the partitions until every partition is final; each must have owned
    some. Returns their data directories (both hold rows of a partition that moved)."""
    workers = [WorkerProcess(config, config.data_dir / f"worker-{i}") for i in range(2)]
    bound = final_bound_s(last_event_ms)

    def all_final() -> bool:
        marks = {
            dict(labels)["partition"]: value
            for w in workers
            for (name, labels), value in w.metrics().items()
            if name == "funnel_watermark_seconds"
        }
        return len(marks) == config.partitions and min(marks.values()) >= bound

    try:
        workers[0].wait_until(all_final, timeout=900, what="all partitions final")
        owned = [
            sum(1 for (n, _) in w.metrics() if n == "funnel_watermark_seconds") for w in workers
        ]
        assert all(count > 0 for count in owned), f"one worker owned nothing: {owned}"
    finally:
        for w in workers:
            assert w.stop() == 0, w.log_tail()
    return [w.data_dir for w in workers]
