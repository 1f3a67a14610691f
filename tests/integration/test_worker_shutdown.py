"""Worker shutdown closes what it opened: the sink's ClickHouse thread and the client, also when
Faust ends the worker by raising SystemExit (as `execute_from_commandline` does)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import ProgrammingError
from prometheus_client import CollectorRegistry

from streams.settings import Settings
from streams.worker.run import clickhouse_sink

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
