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
from typing import Any

from aiohttp import web
from mode import Service

from sinks.batch import BatchSink
from sinks.customer_queries import query_customers
from sinks.errors import translate
from sinks.marketing_queries import query_marketing
from sinks.report_queries import query_report
from streams.report.customers import CustomersRequest
from streams.report.customers_view import render_customers
from streams.report.marketing import MarketingRequest, marketing_document
from streams.report.marketing_view import render_marketing
from streams.report.numbers import ReportRequest, build_report
from streams.report.store import QUERY_HOST, STORE_HEADER, store_id
from streams.report.view import render
from streams.settings import Settings

log = logging.getLogger(__name__)


def report_services(settings: Settings, sink: BatchSink) -> list[Service]:
    """The worker's extra services: the report endpoint, unless FUNNEL_QUERY_PORT is 0."""
    if not settings.query_port:
        return []
    app = report_app(sink, database=settings.clickhouse_database, store=store_id(settings))
    return [ReportServer(app, port=settings.query_port)]


def report_app(sink: BatchSink, *, database: str, store: str) -> web.Application:
    async def report(request: web.Request) -> web.Response:
        try:
            wanted = ReportRequest.from_params(request.query)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        try:
            counts = await sink.run(lambda client: query_report(client, database, wanted.query))
        except Exception as exc:
            return web.Response(status=503, text=f"report query failed: {translate(exc)}\n")
        body = render(build_report(wanted, counts), as_json=wanted.as_json)
        return _answer(body, as_json=wanted.as_json, store=store)

    async def marketing(request: web.Request) -> web.Response:
        try:
            asked = MarketingRequest.from_params(request.query)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        try:
            counts = await sink.run(lambda client: query_marketing(client, database, asked.query))
        except Exception as exc:
            return web.Response(status=503, text=f"marketing query failed: {translate(exc)}\n")
        body = render_marketing(marketing_document(asked, counts), as_json=asked.as_json)
        return _answer(body, as_json=asked.as_json, store=store)

    async def customers(request: web.Request) -> web.Response:
        try:
            asked = CustomersRequest.from_params(request.query)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        try:
            facts = await sink.run(lambda client: query_customers(client, database, asked.query))
        except Exception as exc:
            return web.Response(status=503, text=f"customers query failed: {translate(exc)}\n")
        body = render_customers(asked, facts)
        content_type = "text/csv" if asked.as_csv else None
        return _answer(body, as_json=asked.as_json, store=store, content_type=content_type)

    app = web.Application()
    app.router.add_get("/report", report)
    app.router.add_get("/customers", customers)
    app.router.add_get("/marketing", marketing)
    return app


def _answer(
    body: bytes, *, as_json: bool, store: str, content_type: str | None = None
) -> web.Response:
    content_type = content_type or ("application/json" if as_json else "text/plain")
    return web.Response(body=body, content_type=content_type, headers={STORE_HEADER: store})


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
