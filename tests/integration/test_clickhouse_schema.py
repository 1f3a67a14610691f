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
