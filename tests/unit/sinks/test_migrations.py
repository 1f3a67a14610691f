"""Migration versions: what databases record as applied, so never renumbered, never reused,
and no new gap beyond the two numbers once reserved (see sinks/clickhouse.py)."""

from __future__ import annotations

from sinks.clickhouse import ClickHouseConfig, load_migrations

RESERVED_UNUSED = {3, 4}


def test_versions_are_unique_in_order_and_gapless_but_for_the_reserved_ones() -> None:
    versions = [m.version for m in load_migrations(ClickHouseConfig(dsn="chdb:///unused"))]
    assert len(versions) == len(set(versions))
    assert versions == sorted(versions)
    assert set(range(1, max(versions) + 1)) - set(versions) == RESERVED_UNUSED
