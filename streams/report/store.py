"""Which store a report reads, and where a running worker answers for it.

Shared by the worker's report endpoint and `funnel report`, so neither imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from streams.settings import Settings

QUERY_HOST = "127.0.0.1"
# The worker names the store it serves, so a report never reads another worker's data.
STORE_HEADER = "X-Funnel-Store"


def chdb_path(dsn: str) -> Path:
    """The directory of a chdb:///path DSN, resolved as clickhouse-connect resolves it."""
    return Path(os.path.realpath(urlsplit(dsn).path))


def store_id(settings: Settings) -> str:
    """What a worker's endpoint serves: the chDB path (or masked server DSN) and the database."""
    dsn = settings.resolved_clickhouse_dsn
    where = chdb_path(dsn) if dsn.startswith("chdb:") else settings.masked()["clickhouse_dsn"]
    return f"{where}#{settings.clickhouse_database}"
