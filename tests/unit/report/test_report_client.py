"""Where `funnel report` reads from: the chDB lock probe, the worker endpoint, clear failures."""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from clickhouse_connect.driver.client import Client

from sinks.report_queries import ReportQuery
from streams.funnel.rules import FunnelRules
from streams.local.ports import free_port
from streams.report.client import ReportError, in_use, report_output
from streams.report.numbers import ReportRequest
from streams.report.store import STORE_HEADER, store_id
from streams.settings import Settings
from streams.worker.query_pool import QueryPool
from streams.worker.report_endpoint import ReportServer, report_app, report_services

START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
REQUEST = ReportRequest(ReportQuery("shop-1", START, START + timedelta(hours=1)), as_json=True)


def no_clickhouse() -> QueryPool:
    def refuse() -> Client:
        raise AssertionError("the endpoint connected to ClickHouse")

    return QueryPool(refuse, limit=1)


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, clickhouse_dsn="", **overrides)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """The chDB directory with its status file locked, as a running worker holds it."""
    path = tmp_path / "chdb"
    path.mkdir()
    fd = os.open(path / "status", os.O_WRONLY | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield path
    finally:
        os.close(fd)


def test_the_lock_probe_sees_a_held_lock_and_nothing_else(tmp_path: Path) -> None:
    assert not in_use(tmp_path / "missing")
    (tmp_path / "status").touch()
    assert not in_use(tmp_path)
    fd = os.open(tmp_path / "status", os.O_WRONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert in_use(tmp_path)
    finally:
        os.close(fd)
    assert not in_use(tmp_path)


def test_no_data_yet_says_to_start_a_worker(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no embedded ClickHouse .* run `funnel worker` first"):
        report_output(settings(tmp_path), REQUEST)


@pytest.mark.usefixtures("locked")
def test_locked_with_the_endpoint_off_says_so(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"chdb is in use .*\(FUNNEL_QUERY_PORT=0\)"):
        report_output(settings(tmp_path, query_port=0), REQUEST)


@pytest.mark.usefixtures("locked")
def test_locked_and_nobody_answering_names_the_port(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(ReportError, match=f"nothing answered on 127.0.0.1:{port}"):
        report_output(settings(tmp_path, query_port=port), REQUEST)


class _Worker(BaseHTTPRequestHandler):
    store = ""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header(STORE_HEADER, self.store)
        self.end_headers()
        self.wfile.write(b'{"site_id":"shop-1"}\n')

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def worker_answering_for(store: str) -> Iterator[int]:
    """A stand-in worker endpoint on a free port, naming `store` as what it serves."""
    handler = type("Worker", (_Worker,), {"store": store})
    with HTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            thread.join()


@pytest.mark.usefixtures("locked")
def test_locked_asks_the_worker_serving_the_same_store(tmp_path: Path) -> None:
    with worker_answering_for(store_id(settings(tmp_path))) as port:
        output = report_output(settings(tmp_path, query_port=port), REQUEST)
    assert output == b'{"site_id":"shop-1"}\n'


@pytest.mark.usefixtures("locked")
def test_a_worker_serving_other_data_is_not_believed(tmp_path: Path) -> None:
    with (
        worker_answering_for(store_id(settings(tmp_path / "elsewhere"))) as port,
        pytest.raises(ReportError, match=r"serves .*elsewhere"),
    ):
        report_output(settings(tmp_path, query_port=port), REQUEST)


@pytest.mark.parametrize(
    "dsn",
    ["https://u:pw@ch:8443/x", "https://ch:8443/x?user=u&password=pw", "https://ch/x?token=pw"],
)
def test_store_id_masks_a_server_password(tmp_path: Path, dsn: str) -> None:
    served = store_id(settings(tmp_path).model_copy(update={"clickhouse_dsn": dsn}))
    assert "pw" not in served
    assert served.endswith("#funnel")


def test_the_endpoint_refuses_bad_parameters_before_touching_clickhouse(tmp_path: Path) -> None:
    # Any client call would fail: there is no ClickHouse to connect to.
    sink = no_clickhouse()

    async def ask(params: dict[str, str]) -> tuple[int, str]:
        app = report_app(
            sink, database="funnel", store="x", retention_ms=FunnelRules().retention_ms
        )
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/report", params=params)
            return response.status, await response.text()

    try:
        status, text = asyncio.run(ask({"site": "shop-1", "from": "2026-03-01T09:30:00Z"}))
        assert (status, text) == (400, "missing parameter(s): to\n")
        status, text = asyncio.run(
            ask({"site": "s", "from": "2026-03-01T10:00:00Z", "to": "2026-03-01T09:00:00Z"})
        )
        assert (status, text) == (400, "from must be before to\n")
        status, text = asyncio.run(
            ask({"site": "s", "from": "0001-01-01T00:00:00+14:00", "to": "2026-03-01T09:00:00Z"})
        )
        assert status == 400
        assert "out of range" in text
    finally:
        sink.close()


def test_the_endpoint_is_off_with_port_zero(tmp_path: Path) -> None:
    sink = no_clickhouse()
    try:
        assert report_services(settings(tmp_path, query_port=0), sink) == []
        assert len(report_services(settings(tmp_path, query_port=9999), sink)) == 1
    finally:
        sink.close()


def test_one_chdb_directory_has_one_store_id_however_it_is_spelled(tmp_path: Path) -> None:
    spelled = Settings(clickhouse_dsn=f"chdb://{tmp_path}/./chdb/")
    assert store_id(spelled) == store_id(settings(tmp_path)) == f"{tmp_path}/chdb#funnel"


def test_a_taken_port_leaves_the_worker_running_without_the_endpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = no_clickhouse()

    async def start_and_stop(port: int) -> None:
        server = ReportServer(
            report_app(sink, database="funnel", store="x", retention_ms=FunnelRules().retention_ms),
            host="127.0.0.1",
            port=port,
        )
        await server.start()
        await server.stop()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        try:
            asyncio.run(start_and_stop(taken.getsockname()[1]))
        finally:
            sink.close()
    assert "report endpoint off" in caplog.text
