"""Worker shutdown closes what it opened: the sink's ClickHouse thread and the client, also when
Faust ends the worker by raising SystemExit (as `execute_from_commandline` does)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import ProgrammingError
from prometheus_client import CollectorRegistry

from streams.local.embedded_broker import EmbeddedBroker
from streams.local.ports import free_port
from streams.settings import Settings
from streams.worker.fatal import EXIT_FATAL
from streams.worker.run import clickhouse_sink
from tests.integration.pipeline import PipelineConfig, WorkerProcess

pytestmark = pytest.mark.integration


def test_sink_and_client_are_closed_when_the_worker_exits(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)  # embedded chDB under the data dir
    seen: dict[str, Any] = {}

    def worker_lifetime() -> None:
        with clickhouse_sink(settings, CollectorRegistry()) as sink:
            seen["sink"] = sink
            seen["client"] = asyncio.run(sink.run(lambda client: client))
            seen["tables"] = asyncio.run(sink.run(lambda client: client.command(
                "SELECT count() FROM system.tables WHERE database = 'funnel'"
            )))  # fmt: skip
            raise SystemExit(0)

    with pytest.raises(SystemExit):
        worker_lifetime()
    sink = seen["sink"]
    assert seen["tables"] >= 5  # migrated before the worker got it
    with pytest.raises(RuntimeError, match="shutdown"):
        asyncio.run(sink.run(lambda client: client))  # the sink's thread is gone
    with pytest.raises(ProgrammingError, match="closed"):
        seen["client"].query("SELECT 1")


def test_a_worker_whose_clickhouse_cannot_open_exits_loudly_before_any_event(
    broker: EmbeddedBroker, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    # ClickHouse opens on the sink's thread while the worker joins its group; nothing is in the
    # topic, so no batch would ever find out that it failed.
    config = PipelineConfig(broker.bootstrap, unique_topic("no-clickhouse"), tmp_path,
                            extra_env={"FUNNEL_CLICKHOUSE_DSN": f"http://127.0.0.1:{free_port()}"})  # fmt: skip
    config.create_topics()
    worker = WorkerProcess(config, tmp_path / "worker")
    code = worker.wait_exit(timeout=120)
    log = worker.log_tail(20_000)
    assert code == EXIT_FATAL, log
    assert "ClickHouse start-up failed" in log
    assert "ClickHouse could not be opened" in log
