"""`funnel spend import FILE.csv`: check every line, then write all of them or nothing.

With `--skip-invalid` the good lines of a file with errors are written and the bad ones listed.
chDB admits one process per directory, so while a worker holds it the import refuses and says
to publish the rows on the spend topic instead (the worker writes those itself).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sinks.clickhouse import connect, migrate
from sinks.errors import translate
from sinks.spend import read_spend_csv, write_spend
from streams.report.client import in_use
from streams.report.store import chdb_path
from streams.settings import Settings
from streams.settings_adapters import clickhouse_config


class SpendImportError(Exception):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


@dataclass(frozen=True, slots=True)
class Imported:
    rows: int
    skipped: tuple[str, ...]  # "file:line: reason" of each bad line left out


def import_spend_file(
    settings: Settings, path: Path, *, site: str | None, skip_invalid: bool
) -> Imported:
    try:
        with path.open(newline="", encoding="utf-8") as lines:
            spend = read_spend_csv(
                lines, ingested_at_ms=time.time_ns() // 1_000_000, default_site=site
            )
    except (OSError, UnicodeDecodeError) as exc:
        raise SpendImportError([f"cannot read {path}: {exc}"]) from exc
    problems = [f"{path}:{bad.line}: {bad.reason}" for bad in spend.errors]
    if problems and not skip_invalid:
        raise SpendImportError([*problems, "nothing imported (--skip-invalid imports the rest)"])
    config = clickhouse_config(settings)
    if config.embedded and in_use(chdb_path(config.dsn)):
        raise SpendImportError(
            [
                f"{chdb_path(config.dsn)} is in use by a running worker: publish the rows as "
                f"JSON to {settings.spend_topic} instead, or stop the worker and import again"
            ]
        )
    try:
        client = connect(config)
        try:
            migrate(client, config, now=datetime.now(UTC))
            written = write_spend(client, config.database, spend.rows)
        finally:
            client.close()
    except Exception as exc:
        raise SpendImportError([f"writing to ClickHouse failed: {translate(exc)}"]) from exc
    return Imported(written, tuple(problems))
