"""The migrations on the real engine (chDB): idempotent, and the columns we insert exist."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinks.clickhouse import ClickHouseConfig, connect, load_migrations, migrate
from sinks.tables import COLUMNS

pytestmark = pytest.mark.integration


def test_migrations_apply_once_and_match_insert_columns(tmp_path: Path) -> None:
    config = ClickHouseConfig(dsn=f"chdb:///{tmp_path / 'chdb'}", database="funnel_schema")
    client = connect(config)
    try:
        names = [m.name for m in load_migrations(config)]
        assert migrate(client, config, now=datetime.now(UTC)) == names
        assert migrate(client, config, now=datetime.now(UTC)) == []
        for table, columns in COLUMNS.items():
            described = client.query(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
                "ORDER BY position",
                parameters={"db": config.database, "t": table},
            ).result_rows
            assert tuple(name for (name,) in described) == columns, table
        versions = client.query(
            f"SELECT version FROM {config.database}.schema_migrations"
        ).result_rows
        assert sorted(v for (v,) in versions) == [m.version for m in load_migrations(config)]
    finally:
        client.close()


def test_database_name_must_be_an_identifier() -> None:
    with pytest.raises(ValueError, match="not a plain identifier"):
        ClickHouseConfig(dsn="chdb:///x", database="funnel; DROP TABLE x")


def test_migration_2_takes_a_0001_database_forward(tmp_path: Path) -> None:
    """Rows written before 0002 keep their carts apart from a later session with the same id."""
    config = ClickHouseConfig(dsn=f"chdb:///{tmp_path / 'chdb'}", database="funnel_fwd")
    client = connect(config)
    db = config.database
    try:
        first, *later = load_migrations(config)
        for statement in first.statements:
            client.command(statement)
        client.command(
            f"CREATE TABLE {db}.schema_migrations (version UInt32, name String, "
            "applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY version"
        )
        client.insert(f"{db}.schema_migrations", [[1, first.name, datetime.now(UTC)]])
        # Recent times: the TTL would drop old rows at OPTIMIZE.
        at = int(datetime.now(UTC).timestamp() * 1000)
        old_cart = ["s", "x", 1, 2, "abandoned", at, at + 1, None, 5, "EUR", "[]", 2, ""]
        old_columns = [c for c in COLUMNS["carts"] if c != "session_start"][: len(old_cart)]
        client.insert(f"{db}.carts", [old_cart], column_names=old_columns)
        assert migrate(client, config, now=datetime.now(UTC)) == [m.name for m in later]
        new_cart = dict(zip(old_columns, old_cart, strict=True)) | {
            "session_start": at, "version": 1, "status": "open",
        }  # fmt: skip
        client.insert(f"{db}.carts", [list(new_cart.values())], column_names=list(new_cart))
        client.command(f"OPTIMIZE TABLE {db}.carts FINAL")
        rows = client.query(
            f"SELECT toUnixTimestamp64Milli(session_start), status FROM {db}.carts ORDER BY 1"
        ).result_rows
        assert [tuple(r) for r in rows] == [(0, "abandoned"), (at, "open")]
    finally:
        client.close()
