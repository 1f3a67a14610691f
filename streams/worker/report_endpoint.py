"""The worker's report endpoint: `funnel report` asks here while the worker holds chDB.

GET /report?site=…&from=…&to=…[&by=…][&min_sessions=…][&format=json|table] answers with the
rendered report, exactly what `funnel report` prints; GET /marketing?site=…&from=…&to=…[&by=…]
[&attribution=…][&lookback_days=…][&margin=…][&format=…] what `funnel marketing` prints;
GET /customers?site=…&as_of=…[&cohorts=month|week][&segments=1][&segment=…][&format=…|csv]
what `funnel customers` prints; `/` is the web dashboard (`streams.dashboard`) over the same
documents. In a worker, queries run on a `QueryPool`: ClickHouse clients and threads of their
own, never the sink's, so no report delays a flush; at most FUNNEL_REPORT_MAX_CONCURRENT at once,
a few more wait, beyond that 503. It listens on loopback unless
FUNNEL_QUERY_HOST says otherwise, which settings allow only with FUNNEL_DASHBOARD_TOKEN.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from mode import Service

from sinks.errors import translate
from streams.dashboard.access import GATE, TokenGate, dashboard_url
from streams.dashboard.routes import add_dashboard
from streams.report.answers import Request, answer_body, content_type
from streams.report.customers import CustomersRequest
from streams.report.marketing import MarketingRequest
from streams.report.numbers import ReportRequest
from streams.report.store import STORE_HEADER, QueryRunner, endpoint_url, store_id
from streams.settings import Settings
from streams.settings_adapters import funnel_rules
from streams.worker.query_pool import QueryPool, QueryPoolBusyError

log = logging.getLogger(__name__)


def report_services(settings: Settings, queries: QueryPool) -> list[Service]:
    """The worker's extra services: the report endpoint, unless FUNNEL_QUERY_PORT is 0."""
    if not settings.query_port:
        return []
    app = endpoint_app(settings, queries, live=True)
    token_set = bool(settings.dashboard_token.get_secret_value())
    url = dashboard_url(endpoint_url(settings), app, token_set=token_set)
    server = ReportServer(
        app, host=settings.query_host, port=settings.query_port, url=url, closing=queries.close
    )
    return [server]


def endpoint_app(settings: Settings, sink: QueryRunner, *, live: bool) -> web.Application:
    """Report routes and the dashboard, behind the token when one is set."""
    token = settings.dashboard_token.get_secret_value()
    gate = TokenGate(token) if token else None
    middlewares = [gate.middleware()] if gate else []
    database = settings.clickhouse_database
    retention_ms = funnel_rules(settings).retention_ms  # the worker's own session split
    app = report_app(
        sink,
        database=database,
        store=store_id(settings),
        retention_ms=retention_ms,
        middlewares=middlewares,
    )
    if gate:
        app[GATE] = gate
    add_dashboard(app, sink, database=database, retention_ms=retention_ms, live=live)
    return app


def report_app(
    sink: QueryRunner,
    *,
    database: str,
    store: str,
    retention_ms: int,
    middlewares: list[Middleware] | None = None,
) -> web.Application:
    app = web.Application(middlewares=middlewares or [])
    for route, parse in ROUTES.items():
        answer = _handler(sink, database, store, retention_ms, route, parse)
        app.router.add_get(f"/{route}", answer)
    return app


ROUTES: dict[str, Callable[[Mapping[str, str]], Request]] = {
    "report": ReportRequest.from_params,
    "marketing": MarketingRequest.from_params,
    "customers": CustomersRequest.from_params,
}


def _handler(
    sink: QueryRunner,
    database: str,
    store: str,
    retention_ms: int,
    route: str,
    parse: Callable[[Mapping[str, str]], Request],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            asked = parse(request.query)
        except ValueError as exc:
            return web.Response(status=400, text=f"{exc}\n")
        try:
            body = await sink.run(
                lambda client: answer_body(client, database, asked, retention_ms=retention_ms)
            )
        except QueryPoolBusyError as exc:
            return web.Response(status=503, text=f"busy: {exc}\n", headers={"Retry-After": "1"})
        except Exception as exc:
            return web.Response(status=503, text=f"{route} query failed: {translate(exc)}\n")
        return web.Response(
            body=body, content_type=content_type(asked), headers={STORE_HEADER: store}
        )

    return handle


class ReportServer(Service):
    """Serves `report_app` for as long as the worker runs."""

    def __init__(
        self,
        app: web.Application,
        *,
        host: str,
        port: int,
        url: str = "",
        closing: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._closing = closing  # releases the endpoint's query clients
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        self._url = url  # announced once listening: the dashboard, or its one-time login

    async def on_start(self) -> None:
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as exc:
            # The endpoint is a convenience; a taken port must not stop the stream.
            log.warning("report endpoint off, %s:%s is taken: %s", self._host, self._port, exc)
        else:
            log.info("dashboard: %s", self._url or f"port {self._port}")

    async def on_stop(self) -> None:
        await self._runner.cleanup()
        if self._closing is not None:
            self._closing()
