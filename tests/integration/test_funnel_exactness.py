"""Issue 3 acceptance: what the workers write equals the batch reference, through crashes.

The reference (tests/unit/funnel/reference.py) is computed from the deduplicated raw events
the test itself generated; the workers' answer is read back from their ClickHouse tables.
"""

from __future__ import annotations

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
    two_workers_until_final,
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

    data_dirs = two_workers_until_final(config, last_event_ms)
    assert_same(stored_answer(data_dirs), expected)
