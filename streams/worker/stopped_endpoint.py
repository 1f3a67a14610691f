"""`funnel dashboard`: the worker's report endpoint and dashboard, over a stopped worker's data.

The same aiohttp app the worker serves (`endpoint_app`), with a ClickHouse client of its own in
place of the worker's sink. On the embedded default it opens the chDB directory itself, so it
refuses while a worker holds it and points at that worker's dashboard instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from clickhouse_connect.driver.client import Client

from sinks.clickhouse import connect
from sinks.errors import SinkError
from streams.dashboard.access import dashboard_url
from streams.report.client import ReportError, in_use
from streams.report.store import chdb_path, endpoint_url
from streams.settings import Settings
from streams.settings_adapters import clickhouse_config
from streams.worker.report_endpoint import endpoint_app


class ClientRunner:
    """Runs client calls on one thread, as the worker's sink does (a client is not shared)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    async def run(self, call: Callable[[Client], Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, call, self._client)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._client.close()


def open_stopped(settings: Settings) -> Client:
    """A client on the data; ReportError says why not (a running worker, no data)."""
    config = clickhouse_config(settings)
    if config.embedded:
        path = chdb_path(config.dsn)
        if in_use(path):
            raise ReportError(
                f"{path} is in use by a running worker: its dashboard is at "
                f"{endpoint_url(settings)}/ (FUNNEL_QUERY_PORT of that worker)"
            )
        if not path.is_dir():
            raise ReportError(
                f"no embedded ClickHouse at {path}: run `funnel worker` or `funnel demo --keep` "
                "first, or point FUNNEL_DATA_DIR / FUNNEL_CLICKHOUSE_DSN at the data"
            )
    try:
        return connect(config, create_database=False)
    except SinkError as exc:
        raise ReportError(f"cannot open ClickHouse: {exc}") from exc


def serve_stopped(settings: Settings, announce: Callable[[str], None]) -> None:
    """Serve until SIGINT/SIGTERM; `announce` gets the URL (or one-time login URL) once the
    data is open.

    Against a server DSN a worker may still be writing, so the page refreshes itself there.
    """
    if not settings.query_port:
        raise ReportError("FUNNEL_QUERY_PORT is 0: set the port the dashboard should use")
    runner = ClientRunner(open_stopped(settings))
    try:
        app = endpoint_app(settings, runner, live=not clickhouse_config(settings).embedded)
        token_set = bool(settings.dashboard_token.get_secret_value())
        announce(dashboard_url(endpoint_url(settings), app, token_set=token_set))
        web.run_app(app, host=settings.query_host, port=settings.query_port, print=None)
    finally:
        runner.close()
