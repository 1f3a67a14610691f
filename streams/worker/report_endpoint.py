"""The worker's report endpoint: `funnel report` asks here while the worker holds chDB.

GET /report?site=…&from=…&to=…[&by=…][&min_sessions=…][&format=json|table] answers with the
rendered report, exactly what `funnel report` prints; GET /marketing?site=…&from=…&to=…[&by=…]
[&attribution=…][&lookback_days=…][&margin=…][&format=…] what `funnel marketing` prints;
GET /customers?site=…&as_of=…[&cohorts=month|week][&segments=1][&segment=…][&format=…|csv]
what `funnel customers` prints.
Queries run on the sink's one ClickHouse thread (`BatchSink.run`), between flushes, so they
never race the writes. It listens on loopback only: the report is for the operator on this
machine, not for the network.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from mode import Service

from sinks.batch import BatchSink
from sinks.errors import translate
from streams.report.answers import Request, answer_body, content_type
from streams.report.customers import CustomersRequest
from streams.report.marketing import MarketingRequest
from streams.report.numbers import ReportRequest
from streams.report.store import QUERY_HOST, STORE_HEADER, store_id
from streams.settings import Settings

log = logging.getLogger(__name__)


def report_services(settings: Settings, sink: BatchSink) -> list[Service]:
    """The worker's extra services: the report endpoint, unless FUNNEL_QUERY_PORT is 0."""
    if not settings.query_port:
        return []
    app = report_app(sink, database=settings.clickhouse_database, store=store_id(settings))
    return [ReportServer(app, port=settings.query_port)]


def report_app(sink: BatchSink, *, database: str, store: str) -> web.Application:
    app = web.Application()
    for route, parse in ROUTES.items():
        app.router.add_get(f"/{route}", _handler(sink, database, store, route, parse))
    return app


ROUTES: dict[str, Callable[[Mapping[str, str]], Request]] = {
    "report": ReportRequest.from_params,
    "marketing": MarketingRequest.from_params,
    "customers": CustomersRequest.from_params,
}


def _handler(
    sink: BatchSink,
    database: str,
    store: str,
    route: str,
    parse: Callable[[Mapping[str, str]], Request],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            asked = parse(request.query)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        try:
            body = await sink.run(lambda client: answer_body(client, database, asked))
        except Exception as exc:
            return web.Response(status=503, text=f"{route} query failed: {translate(exc)}\n")
        return web.Response(
            body=body, content_type=content_type(asked), headers={STORE_HEADER: store}
        )

    return handle


class ReportServer(Service):
    """Serves `report_app` for as long as the worker runs."""

    def __init__(self, app: web.Application, *, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._runner = web.AppRunner(app, access_log=None)
        self._port = port

    async def on_start(self) -> None:
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, QUERY_HOST, self._port).start()
        except OSError as exc:
            # The endpoint is a convenience; a taken port must not stop the stream.
            log.warning("report endpoint off, %s:%s is taken: %s", QUERY_HOST, self._port, exc)

    async def on_stop(self) -> None:
        await self._runner.cleanup()
