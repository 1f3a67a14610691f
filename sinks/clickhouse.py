"""Connecting to ClickHouse (embedded chDB or a server) and applying versioned, idempotent DDL."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from sinks.errors import SinkError, translate

# A version is what a database records as applied, so versions are never renumbered: 3 and 4
# were reserved while 5 and 6 were written and stay unused (renumbering 5 and 6 would apply them
# again to every database that has them). New migrations take the next number above the highest.
_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class ClickHouseConfig:
    dsn: str
    database: str = "funnel"
    user: str = "default"
    password: str = ""
    raw_ttl_days: int = 90
    aggregate_ttl_days: int = 730

    def __post_init__(self) -> None:
        # The database name is spliced into DDL, so it must be a plain identifier.
        if not _IDENTIFIER.fullmatch(self.database):
            raise ValueError(f"database {self.database!r} is not a plain identifier")

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")


_CREDENTIAL_PARAMS = ("user", "user_name", "password")


def client_options(config: ClickHouseConfig) -> dict[str, Any]:
    """clickhouse-connect arguments. Credentials in the DSN (user:password@ or ?user=/password=)
    are honoured; the settings' user applies only when the DSN names none, and the settings'
    password wins over the DSN's. Given explicitly, a user would override the DSN's."""
    if config.embedded:
        return {"dsn": config.dsn}
    parts = urlsplit(config.dsn)
    params = parse_qsl(parts.query, keep_blank_values=True)
    found = dict(params)
    user = unquote(parts.username) if parts.username else found.get("user", found.get("user_name"))
    password = unquote(parts.password) if parts.password else found.get("password")
    query = urlencode([(n, v) for n, v in params if n not in _CREDENTIAL_PARAMS])
    host = parts.netloc.rpartition("@")[2]  # as written: [::1]:8123 keeps its brackets
    bare = urlunsplit(parts._replace(netloc=host, query=query))
    return {
        "dsn": bare,
        "username": user or config.user,
        "password": config.password or password or "",
    }


def connect(config: ClickHouseConfig, *, create_database: bool = True) -> Client:
    """A client, with the database created unless only reading (a read-only user may not).

    Failures come out as `SinkError`."""
    if config.embedded and importlib.util.find_spec("chdb") is None:
        # chdb is an extra (~180 MB): a production install talks to a ClickHouse server.
        raise SinkError(
            f"{config.dsn} needs the embedded engine: pip install 'funnelstream[embedded]', "
            "or set FUNNEL_CLICKHOUSE_DSN to a ClickHouse server (http://host:8123)",
            retriable=False,
        )
    options = client_options(config)
    try:
        client = clickhouse_connect.get_client(**options)
        if create_database:
            client.command(f"CREATE DATABASE IF NOT EXISTS {config.database}")
    except Exception as exc:
        raise translate(exc) from exc
    return client


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(config: ClickHouseConfig) -> list[Migration]:
    migrations = []
    for entry in sorted(resources.files("sinks.migrations").iterdir(), key=lambda e: e.name):
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match is None:
            continue
        sql = entry.read_text().format(
            db=config.database,
            raw_ttl_days=config.raw_ttl_days,
            aggregate_ttl_days=config.aggregate_ttl_days,
        )
        sql = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
        statements = tuple(part.strip() for part in sql.split(";") if part.strip())
        migrations.append(Migration(int(match.group(1)), entry.name, statements))
    return migrations


def migrate(client: Client, config: ClickHouseConfig, *, now: datetime) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied. Safe to run again."""
    db = config.database
    try:
        client.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        done = {
            row[0]
            for row in client.query(f"SELECT version FROM {db}.schema_migrations").result_rows
        }
        applied = []
        for migration in load_migrations(config):
            if migration.version in done:
                continue
            for statement in migration.statements:
                client.command(statement)
            client.insert(
                f"{db}.schema_migrations",
                [[migration.version, migration.name, now.astimezone(UTC)]],
                column_names=["version", "name", "applied_at"],
            )
            applied.append(migration.name)
    except Exception as exc:
        raise translate(exc) from exc
    return applied
