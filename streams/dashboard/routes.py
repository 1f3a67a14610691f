"""The web dashboard on the report endpoint: one static page and the JSON it draws from.

GET /                     the page (HTML, CSS, JS shipped in the package; no CDN, no network)
GET /api/sites            sites with data; `live` while a worker still writes
GET /api/report           exactly `funnel report --json` for site, from, to[, by][, min_sessions]
GET /api/series           stage entries per bucket from `stage_counts_1m`, for site, from, to
GET /api/dead-letters     rejected messages per reason code, for from, to (all sites)

The page also asks /marketing and /customers (the marketing and customers reports) and hides
their panels when the endpoint answers 404. Bad parameters are a 400 with a JSON message; a
failed query is a 503 with ClickHouse's reason, never a stack trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from aiohttp import web

from sinks.dashboard_queries import (
    query_dead_letters,
    query_series,
    query_sites,
    site_has_data,
)
from sinks.errors import translate
from sinks.report_queries import query_report
from streams.dashboard.documents import dead_letters_json, series_json, sites_json
from streams.dashboard.params import (
    ParamError,
    parse_dead_letters,
    parse_report,
    parse_series,
    unknown_site,
)
from streams.report.numbers import build_report
from streams.report.store import QueryRunner
from streams.report.view import report_json

# Only our own files, no inline script or style, no framing: the page shows revenue.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "draw.js": "text/javascript",
}
# Reports other modules add to the endpoint (marketing, customers); their panels show when served.
OPTIONAL_REPORTS = ("marketing", "customers")

Json = Callable[[Mapping[str, str]], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class Assets:
    page: bytes
    static: dict[str, bytes]

    @classmethod
    def load(cls) -> Assets:
        folder = files("streams.dashboard") / "static"
        return cls(
            page=(folder / "index.html").read_bytes(),
            static={name: (folder / name).read_bytes() for name in STATIC},
        )


def add_dashboard(
    app: web.Application, runner: QueryRunner, *, database: str, retention_ms: int, live: bool
) -> None:
    """Serve the page and its JSON documents from `app`, querying through `runner`."""
    assets = Assets.load()

    async def page(_: web.Request) -> web.Response:
        return web.Response(body=assets.page, content_type="text/html", headers=SECURITY_HEADERS)

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound(text=f"no static file {name!r}\n")
        return web.Response(
            body=assets.static[name], content_type=STATIC[name], headers=SECURITY_HEADERS
        )

    async def query(call: Callable[[Any], Any]) -> Any:
        try:
            return await runner.run(call)
        except Exception as exc:
            raise _UnavailableError(str(translate(exc))) from exc

    async def known(site: str) -> None:
        if not await query(lambda c: site_has_data(c, database, site)):
            raise unknown_site(site, await query(lambda c: query_sites(c, database)))

    async def sites(_: Mapping[str, str]) -> bytes:
        served = {resource.canonical for resource in app.router.resources()}
        reports = [name for name in OPTIONAL_REPORTS if f"/{name}" in served]
        found = await query(lambda c: query_sites(c, database))
        return sites_json(found, live=live, reports=reports)

    async def report(params: Mapping[str, str]) -> bytes:
        wanted = parse_report(params)
        await known(wanted.query.site_id)
        counts = await query(
            lambda c: query_report(c, database, wanted.query, retention_ms=retention_ms)
        )
        return report_json(build_report(wanted, counts))

    async def series(params: Mapping[str, str]) -> bytes:
        site, span = parse_series(params)
        await known(site)
        step = span.step_s
        points = await query(lambda c: query_series(c, database, site, span.start, span.end, step))
        return series_json(site, span, points)

    async def dead_letters(params: Mapping[str, str]) -> bytes:
        span = parse_dead_letters(params)
        reasons = await query(lambda c: query_dead_letters(c, database, span.start, span.end))
        return dead_letters_json(span, reasons)

    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", static)
    for path, build in {
        "/api/sites": sites,
        "/api/report": report,
        "/api/series": series,
        "/api/dead-letters": dead_letters,
    }.items():
        app.router.add_get(path, _json_endpoint(build))


class _UnavailableError(Exception):
    """ClickHouse could not answer; the message is its translated reason."""


def _json_endpoint(build: Json) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            body = await build(request.query)
        except ParamError as exc:
            return _error(400, str(exc))
        except _UnavailableError as exc:
            return _error(503, f"query failed: {exc}")
        return web.Response(body=body, content_type="application/json", headers=SECURITY_HEADERS)

    return handle


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=SECURITY_HEADERS)
