"""Issue 3 acceptance: what the workers write equals the batch reference, through crashes.

The reference (tests/unit/funnel/reference.py) is computed from the deduplicated raw events
the test itself generated; the workers' answer is read back from their ClickHouse tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.local.embedded_broker import EmbeddedBroker
from tests.integration.exactness import (
    assert_same,
    expected_answer,
    final_bound_s,
    finalised,
    prepare,
    simulate,
    stored_answer,
)
from tests.integration.pipeline import WorkerProcess, query

pytestmark = pytest.mark.integration


def test_killed_twice_mid_stream_numbers_equal_the_reference(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    messages, _ = simulate(seed=11, count=100_000)
    expected, last_event_ms = expected_answer(messages)
    config = prepare(broker, unique_topic("crash"), tmp_path, messages)
    data_dir = tmp_path / "worker"

    for kill_after in (25_000, 30_000):
        worker = WorkerProcess(config, data_dir)
        worker.wait_until(
            lambda w=worker, n=kill_after: w.total("funnel_events_consumed_total") >= n,  # type: ignore[misc]
            timeout=300, what=f"{kill_after} events consumed",
        )  # fmt: skip
        worker.kill()

    worker = WorkerProcess(config, data_dir)
    try:
        worker.wait_until(finalised(worker, 4, final_bound_s(last_event_ms)), timeout=600,
                          what="all partitions final")  # fmt: skip
    finally:
        assert worker.stop() == 0, worker.log_tail()

    assert_same(stored_answer([data_dir]), expected)
    late = query(data_dir, "SELECT countIf(late) FROM funnel.events_raw FINAL")
    assert late == [(0,)]


def test_two_workers_splitting_partitions_equal_the_reference(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    messages, _ = simulate(seed=12, count=20_000)
    expected, last_event_ms = expected_answer(messages)
    config = prepare(broker, unique_topic("pair"), tmp_path, messages)

    workers = [WorkerProcess(config, tmp_path / f"worker-{i}") for i in range(2)]
    try:
        bound = final_bound_s(last_event_ms)
        # Each worker ends up owning some partitions; together they must cover all four.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            marks = {}
            for w in workers:
                for (name, labels), value in w.metrics().items():
                    if name == "funnel_watermark_seconds":
                        marks[dict(labels)["partition"]] = value
            if len(marks) == 4 and min(marks.values()) >= bound:
                break
            time.sleep(0.5)
        else:
            pytest.fail("partitions not final:\n" + "\n".join(w.log_tail() for w in workers))
        owned = [
            sum(1 for (n, _) in w.metrics() if n == "funnel_watermark_seconds") for w in workers
        ]
        assert all(count > 0 for count in owned), f"one worker owned nothing: {owned}"
    finally:
        for w in workers:
            assert w.stop() == 0, w.log_tail()

    assert_same(stored_answer([w.data_dir for w in workers]), expected)
