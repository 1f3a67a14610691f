"""The dashboard's seams without services: settings guard, parameters, documents, access, assets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from sinks.batch import BatchSink, SinkMetrics
from sinks.dashboard_queries import SeriesPoint
from streams.dashboard.documents import series_json
from streams.dashboard.params import ParamError, Range, parse_dead_letters, parse_report
from streams.report.store import endpoint_url
from streams.settings import Settings
from streams.worker.report_endpoint import endpoint_app

START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SPAN = {"site": "shop-1", "from": "2026-03-01T09:30:00Z", "to": "2026-03-01T10:30:00Z"}
TOKEN = "t0ken"  # noqa: S105 - a test token


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "shop.example.com"])  # noqa: S104
def test_a_non_loopback_bind_without_a_token_is_refused_at_start(host: str) -> None:
    with pytest.raises(ValidationError, match="FUNNEL_DASHBOARD_TOKEN"):
        Settings(query_host=host)
    assert Settings(query_host=host, dashboard_token=TOKEN).query_host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    assert Settings(query_host=host).dashboard_token.get_secret_value() == ""


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9109"),
        ("0.0.0.0", "http://127.0.0.1:9109"),  # noqa: S104
        ("::", "http://127.0.0.1:9109"),
        ("10.0.0.5", "http://10.0.0.5:9109"),
        ("fd00::5", "http://[fd00::5]:9109"),
    ],
)
def test_clients_reach_a_wildcard_bind_on_loopback(host: str, url: str) -> None:
    assert endpoint_url(Settings(query_host=host, dashboard_token=TOKEN)) == url


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": SPAN["from"], "to": SPAN["to"]}, "missing parameter 'site'"),
        (SPAN | {"site": "x" * 129}, "longer than 128"),
        (SPAN | {"from": SPAN["to"], "to": SPAN["from"]}, "must be before"),
        (SPAN | {"from": "2025-01-01T00:00:00Z"}, "over the 366-day limit"),
        (SPAN | {"from": "2026-03-01"}, "not an ISO 8601"),
        (SPAN | {"to": "1 OR 1=1"}, "not an ISO 8601"),
        (SPAN | {"from": "0001-01-01T00:00:00+01:00"}, "not an ISO 8601"),
        (SPAN | {"by": "device; DROP TABLE funnel.orders"}, "cannot break down by"),
        (SPAN | {"by": "site_id"}, "cannot break down by"),
        (SPAN | {"min_sessions": "-1"}, "whole number"),
        (SPAN | {"min_sessions": "1e9"}, "whole number"),
        (SPAN | {"format": "table"}, "unknown parameter(s) 'format'"),
    ],
)
def test_bad_report_parameters_say_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(ParamError, match=re.escape(message)):
        parse_report(params)


def test_a_long_bad_value_is_quoted_short() -> None:
    with pytest.raises(ParamError) as caught:
        parse_report(SPAN | {"by": "<script>" + "x" * 5000})
    assert len(str(caught.value)) < 200


def test_good_parameters_give_the_clis_report_request() -> None:
    request = parse_report(SPAN | {"by": "device", "min_sessions": "5"})
    assert (request.query.site_id, request.query.start, request.query.by) == (
        "shop-1",
        START,
        "device",
    )
    assert request.query.end == START + timedelta(hours=1)
    assert (request.min_sessions, request.as_json) == (5, True)
    assert parse_dead_letters({"from": SPAN["from"], "to": SPAN["to"]}) == Range(
        START, request.query.end
    )


@pytest.mark.parametrize(
    ("span", "step_s"),
    [
        (timedelta(minutes=15), 60),
        (timedelta(hours=4), 60),
        (timedelta(hours=4, minutes=1), 120),
        (timedelta(days=1), 600),
        (timedelta(days=366), 172_800),
    ],
)
def test_a_series_has_at_most_240_buckets_of_a_round_width(span: timedelta, step_s: int) -> None:
    assert Range(START, START + span).step_s == step_s


def test_the_series_document_fills_empty_buckets_with_zero() -> None:
    span = Range(START, START + timedelta(minutes=4, seconds=30))  # 5 buckets, the last partial
    points = [SeriesPoint(1, (10, 4, 2, 1)), SeriesPoint(3, (0, 0, 0, 2))]
    doc = orjson.loads(series_json("shop-1", span, points))
    assert doc["step_s"] == 60
    assert doc["stages"] == ["page_view", "add_to_cart", "checkout", "purchase"]
    assert [p["at"] for p in doc["points"]] == [
        (START + timedelta(minutes=i)).isoformat() for i in range(5)
    ]
    assert [p["sessions"] for p in doc["points"]] == [
        [0, 0, 0, 0], [10, 4, 2, 1], [0, 0, 0, 0], [0, 0, 0, 2], [0, 0, 0, 0],
    ]  # fmt: skip
    assert [p["conversion"] for p in doc["points"]] == [None, 0.1, None, None, None]


Ask = Callable[[TestClient[Any, Any]], Awaitable[None]]


def with_endpoint(tmp_path: Path, ask: Ask, **settings: Any) -> None:
    """The worker's endpoint app over a sink without a client: any query would fail (503)."""
    sink = BatchSink(None, database="funnel", metrics=SinkMetrics.create(CollectorRegistry()))  # type: ignore[arg-type]
    app = endpoint_app(Settings(data_dir=tmp_path, **settings), sink, live=True)

    async def run() -> None:
        async with TestClient(TestServer(app)) as client:
            await ask(client)

    try:
        asyncio.run(run())
    finally:
        sink.close()


def test_with_a_token_every_path_needs_it_and_a_login_url_works_once(tmp_path: Path) -> None:
    async def ask(client: TestClient[Any, Any]) -> None:
        for path in ("/", "/static/dashboard.js", "/api/sites", "/report", "/login/new", "/x"):
            for headers in ({}, {"X-Funnel-Token": "wrong"}):
                response = await client.get(path, headers=headers)
                assert response.status == 401, (path, headers)
        page = await client.get("/", headers={"X-Funnel-Token": TOKEN})
        assert page.status == 200
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        for params in ({"token": TOKEN}, {"code": "guessed"}, {}):
            refused = await client.get("/login", params=params, allow_redirects=False)
            assert refused.status == 401, params
        made = await client.get("/login/new", headers={"X-Funnel-Token": TOKEN})
        path = (await made.json())["path"]
        assert path.startswith("/login?code=")
        assert TOKEN not in path
        login = await client.get(f"{path}&site=shop-1", allow_redirects=False)
        assert login.status == 303
        assert login.headers["Location"] == "/?site=shop-1"
        cookie = login.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        # The test client's jar now holds the cookie: the page answers without the header.
        assert (await client.get("/")).status == 200
        client.session.cookie_jar.clear()
        again = await client.get(path, allow_redirects=False)
        assert again.status == 401  # spent
        assert "used already" in (await again.json())["error"]

    with_endpoint(tmp_path, ask, query_host="0.0.0.0", dashboard_token=TOKEN)  # noqa: S104


def test_bad_parameters_are_a_400_before_clickhouse_and_a_dead_store_a_503(tmp_path: Path) -> None:
    async def ask(client: TestClient[Any, Any]) -> None:
        bad = await client.get("/api/report", params=SPAN | {"by": "' OR 1=1 --"})
        assert bad.status == 400
        assert (await bad.json())["error"].startswith("cannot break down by")
        bad = await client.get("/api/series", params=SPAN | {"to": SPAN["from"]})
        assert bad.status == 400
        down = await client.get("/api/report", params=SPAN)
        assert down.status == 503
        assert (await down.json())["error"].startswith("query failed: ")
        assert (await client.get("/static/../../settings.py")).status == 404
        assert (await client.get("/static/index.html")).status == 404

    with_endpoint(tmp_path, ask)


def test_the_page_loads_nothing_from_outside_the_package() -> None:
    static = files("streams.dashboard") / "static"
    html = (static / "index.html").read_text()
    linked = re.findall(r'(?:src|href)="([^"]+)"', html)
    # "data:," is the empty favicon: without it the browser asks for /favicon.ico.
    assert sorted(linked) == [
        "/api/sites",
        "/static/dashboard.css",
        "/static/dashboard.js",
        "data:,",
    ]
    for name in ("index.html", "dashboard.js", "draw.js", "dashboard.css"):
        text = (static / name).read_text()
        # The SVG namespace is a name, not a fetch; nothing else may point off the machine.
        assert re.findall(r"https?://", text.replace("http://www.w3.org/2000/svg", "")) == []
        assert "innerHTML" not in text
