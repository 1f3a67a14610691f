"""Rows a worker has written to its embedded ClickHouse survive a `kill -9` of the worker.

chDB runs inside the worker process; a killed process gets no shutdown. What matters is that
every insert that returned (and so was counted and may have let offsets be committed) is on
disk: the path is reopened in a fresh process, as the next worker would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.local.embedded_broker import EmbeddedBroker
from tests.integration.exactness import prepare, simulate
from tests.integration.pipeline import WorkerProcess

pytestmark = pytest.mark.integration

_COUNT = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(dsn=f"chdb:///{sys.argv[1]}")
print(client.query("SELECT count() FROM funnel.events_raw").result_rows[0][0])
"""


def rows_in_fresh_process(data_dir: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _COUNT, str((data_dir / "chdb").resolve())],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return int(done.stdout.strip())


def test_rows_written_before_a_kill_9_are_there_after_it(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    messages, _ = simulate(seed=21, count=30_000)
    config = prepare(broker, unique_topic("chdbkill"), tmp_path, messages)
    data_dir = tmp_path / "worker"

    worker = WorkerProcess(config, data_dir)
    written = 0.0

    def some_rows_written() -> bool:
        nonlocal written
        written = worker.total("funnel_sink_rows_written_total", table="events_raw")
        return written >= 5_000

    try:
        worker.wait_until(some_rows_written, timeout=300, what="5000 raw rows written")
    finally:
        worker.kill()

    # Every insert counted before the kill is stored (more may have landed since the scrape).
    assert rows_in_fresh_process(data_dir) >= written
