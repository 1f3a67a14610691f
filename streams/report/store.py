"""Which store a report reads, and where a running worker answers for it.

Shared by the worker's report endpoint and `funnel report`, so neither imports the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from clickhouse_connect.driver.client import Client

from streams.settings import Settings, is_loopback

QUERY_HOST = "127.0.0.1"
# The worker names the store it serves, so a report never reads another worker's data.
STORE_HEADER = "X-Funnel-Store"
# Carries FUNNEL_DASHBOARD_TOKEN; browsers send it as a cookie of this name instead.
TOKEN_HEADER = "X-Funnel-Token"  # noqa: S105 - the header's name, not a secret
TOKEN_COOKIE = "funnel_token"  # noqa: S105 - the cookie's name, not a secret
_ANY_ADDRESS = ("", "0.0.0.0", "::")  # noqa: S104 - names of the wildcard bind, not a bind


class QueryRunner(Protocol):
    """Runs client calls where the connection lives (a worker: its sink's one thread)."""

    async def run(self, call: Callable[[Client], Any]) -> Any: ...


def chdb_path(dsn: str) -> Path:
    """The directory of a chdb:///path DSN, resolved as clickhouse-connect resolves it."""
    return Path(os.path.realpath(urlsplit(dsn).path))


def store_id(settings: Settings) -> str:
    """What a worker's endpoint serves: the chDB path (or masked server DSN) and the database."""
    dsn = settings.resolved_clickhouse_dsn
    where = chdb_path(dsn) if dsn.startswith("chdb:") else settings.masked()["clickhouse_dsn"]
    return f"{where}#{settings.clickhouse_database}"


def endpoint_url(settings: Settings) -> str:
    """Where a client on this machine reaches the endpoint (a wildcard bind includes loopback)."""
    host = settings.query_host
    if host in _ANY_ADDRESS or is_loopback(host):
        host = QUERY_HOST
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.query_port}"


def auth_headers(settings: Settings) -> dict[str, str]:
    token = settings.dashboard_token.get_secret_value()
    return {TOKEN_HEADER: token} if token else {}
