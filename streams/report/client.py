"""Where `funnel report` gets its numbers: ClickHouse directly, or the worker that holds chDB.

chDB lets one process at a time open a data directory (ClickHouse locks ``<path>/status``), so
while a worker runs on the embedded default, the report asks that worker's local endpoint
instead. Against a server DSN, any number of readers query ClickHouse directly.
"""

from __future__ import annotations

import fcntl
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from clickhouse_connect.driver.client import Client

from sinks.clickhouse import ClickHouseConfig, connect
from sinks.errors import SinkError, translate
from streams.report.answers import Request, answer_body
from streams.report.numbers import ReportRequest
from streams.report.store import (
    STORE_HEADER,
    auth_headers,
    chdb_path,
    endpoint_url,
    store_id,
)
from streams.settings import Settings
from streams.settings_adapters import clickhouse_config, funnel_rules


class ReportError(Exception):
    """No way to answer: the message says what was tried and what to change."""


def report_output(settings: Settings, request: ReportRequest) -> bytes:
    """The rendered report (JSON or table), from wherever the data can be read now."""
    return answer(settings, "report", request)


def answer(settings: Settings, route: str, request: Request) -> bytes:
    """The document from ClickHouse when it can be opened, else from the worker's `/route`."""
    config = clickhouse_config(settings)
    retention_ms = funnel_rules(settings).retention_ms
    if not config.embedded:
        return _run(_open(config), config, request, retention_ms)
    path = chdb_path(config.dsn)
    if not in_use(path):
        if not path.is_dir():
            raise ReportError(
                f"no embedded ClickHouse at {path}: run `funnel worker` first, or point "
                "FUNNEL_DATA_DIR / FUNNEL_CLICKHOUSE_DSN at the data"
            )
        try:
            client = _open(config)
        except ReportError:
            if not in_use(path):
                raise
            # A worker started between the check and the open: ask it instead.
        else:
            return _run(client, config, request, retention_ms)
    return ask_worker(settings, route, request.as_params(), path)


def in_use(path: Path) -> bool:
    """True while a process (a worker) holds the chDB directory's lock."""
    try:
        fd = os.open(path / "status", os.O_RDONLY)
    except FileNotFoundError:
        return False  # ClickHouse removes the file when it closes the directory
    try:
        # A shared lock, dropped at once: it can't hold off a worker for longer than this call.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def ask_worker(settings: Settings, route: str, params: dict[str, str], path: Path) -> bytes:
    port = settings.query_port
    if not port:
        raise ReportError(
            f"{path} is in use (a running worker?) and the report endpoint is off "
            "(FUNNEL_QUERY_PORT=0): set it on the worker, or stop the worker and run again"
        )
    base = endpoint_url(settings)
    asked = urllib.request.Request(  # noqa: S310 - an http URL we built
        f"{base}/{route}?{urlencode(params)}", headers=auth_headers(settings)
    )
    try:
        with urllib.request.urlopen(asked, timeout=120) as response:  # noqa: S310 - see above
            served = response.headers.get(STORE_HEADER)
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise ReportError(f"the worker on port {port} answered {exc.code}: {detail}") from exc
    except OSError as exc:
        raise ReportError(
            f"{path} is in use (a running worker?) and nothing answered on "
            f"{base.removeprefix('http://')} (FUNNEL_QUERY_HOST, FUNNEL_QUERY_PORT): {exc}"
        ) from exc
    if served != store_id(settings):
        raise ReportError(
            f"the worker on port {port} serves {served}, not {store_id(settings)}: "
            "set FUNNEL_QUERY_PORT to the port of the worker using this data"
        )
    return body


def _open(config: ClickHouseConfig) -> Client:
    try:
        return connect(config, create_database=False)
    except SinkError as exc:
        raise ReportError(f"cannot open ClickHouse: {exc}") from exc


def _run(client: Client, config: ClickHouseConfig, request: Request, retention_ms: int) -> bytes:
    try:
        return answer_body(client, config.database, request, retention_ms=retention_ms)
    except Exception as exc:
        raise ReportError(f"query failed: {translate(exc)}") from exc
    finally:
        client.close()
