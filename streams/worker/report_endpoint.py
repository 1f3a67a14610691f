"""The worker's report endpoint: `funnel report` asks here while the worker holds chDB.

GET /report?site=…&from=…&to=…[&by=…][&min_sessions=…][&format=json|table] answers with the
rendered report, exactly what `funnel report` prints. Queries run on their own ClickHouse
clients and threads (`ReportQueries`), never on the sink's, so a wide report cannot delay a
flush; at most FUNNEL_REPORT_MAX_CONCURRENT run at once, and a request beyond that is answered
503 at once rather than queued. It listens on loopback only: the report is for the operator on
this machine, not for the network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web
from clickhouse_connect.driver.client import Client
from mode import Service

from sinks.errors import translate
from sinks.report_queries import query_report
from streams.report.numbers import ReportRequest, build_report
from streams.report.store import QUERY_HOST, STORE_HEADER, store_id
from streams.report.view import render
from streams.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")


class ReportBusyError(Exception):
    """As many report queries as allowed are running already."""


class ReportQueries:
    """Read-only queries on clients and threads of their own, at most `limit` at once.

    Clients are opened on first use (one per concurrent query: a client is not shared between
    threads) and kept for the next request.
    """

    def __init__(self, connect: Callable[[], Client], *, limit: int) -> None:
        self._connect = connect
        self._limit = limit
        self._running = 0
        self._idle: list[Client] = []
        self._executor = ThreadPoolExecutor(limit, thread_name_prefix="clickhouse-report")

    async def run(self, call: Callable[[Client], T]) -> T:
        if self._running >= self._limit:
            raise ReportBusyError(f"{self._running} report queries are running; try again shortly")
        self._running += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._call, call
            )
        finally:
            self._running -= 1

    def _call(self, call: Callable[[Client], T]) -> T:
        # list.pop/append are atomic: each thread gets a client no other thread holds.
        client = self._idle.pop() if self._idle else self._connect()
        try:
            return call(client)
        finally:
            self._idle.append(client)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        for client in self._idle:
            client.close()


def report_services(settings: Settings, queries: ReportQueries) -> list[Service]:
    """The worker's extra services: the report endpoint, unless FUNNEL_QUERY_PORT is 0."""
    if not settings.query_port:
        return []
    app = report_app(queries, database=settings.clickhouse_database, store=store_id(settings))
    return [ReportServer(app, port=settings.query_port, closing=queries.close)]


def report_app(queries: ReportQueries, *, database: str, store: str) -> web.Application:
    async def report(request: web.Request) -> web.Response:
        try:
            wanted = ReportRequest.from_params(request.query)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        try:
            counts = await queries.run(lambda client: query_report(client, database, wanted.query))
        except ReportBusyError as exc:
            return web.Response(status=503, text=f"busy: {exc}\n", headers={"Retry-After": "1"})
        except Exception as exc:
            return web.Response(status=503, text=f"report query failed: {translate(exc)}\n")
        body = render(build_report(wanted, counts), as_json=wanted.as_json)
        content_type = "application/json" if wanted.as_json else "text/plain"
        return web.Response(body=body, content_type=content_type, headers={STORE_HEADER: store})

    app = web.Application()
    app.router.add_get("/report", report)
    return app


class ReportServer(Service):
    """Serves `report_app` for as long as the worker runs."""

    def __init__(
        self,
        app: web.Application,
        *,
        port: int,
        closing: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._runner = web.AppRunner(app, access_log=None)
        self._port = port
        self._closing = closing

    async def on_start(self) -> None:
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, QUERY_HOST, self._port).start()
        except OSError as exc:
            # The endpoint is a convenience; a taken port must not stop the stream.
            log.warning("report endpoint off, %s:%s is taken: %s", QUERY_HOST, self._port, exc)

    async def on_stop(self) -> None:
        await self._runner.cleanup()
        if self._closing is not None:
            self._closing()
