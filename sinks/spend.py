"""Ad spend into ClickHouse: reading a spend CSV (all rows checked first) and writing rows.

A row rewrites its identity (site, day, source, campaign, currency): `ad_spend` keeps the latest
`updated_at`, so importing a file again, or replaying the topic, never adds anything twice.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from clickhouse_connect.driver.client import Client

from schemas.decode import Rejection
from schemas.spend import OPTIONAL, REQUIRED, SpendRow, decode_spend
from sinks.tables import AD_SPEND


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int  # 1 is the header
    reason: str


@dataclass(frozen=True, slots=True)
class SpendFile:
    rows: tuple[SpendRow, ...]  # one per identity, the file's last line for it
    errors: tuple[BadLine, ...]


def read_spend_csv(
    lines: TextIO, *, ingested_at_ms: int, default_site: str | None = None
) -> SpendFile:
    reader = csv.DictReader(lines)
    header = reader.fieldnames or []
    if not header:
        return SpendFile((), (BadLine(1, "empty file: no header line"),))
    known = set(REQUIRED) | set(OPTIONAL)
    needed = [c for c in REQUIRED if c not in header and not (c == "site_id" and default_site)]
    unknown = [c for c in header if c not in known]
    if needed or unknown:
        parts = [f"missing column(s) {', '.join(needed)}"] if needed else []
        parts += [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
        return SpendFile((), (BadLine(1, "; ".join(parts)),))
    rows: dict[tuple[object, ...], SpendRow] = {}
    errors: list[BadLine] = []
    for fields in reader:
        line = reader.line_num
        if None in fields or any(value is None for value in fields.values()):
            errors.append(BadLine(line, f"expected {len(header)} fields"))
            continue
        result = decode_spend(fields, ingested_at_ms=ingested_at_ms, default_site=default_site)
        if isinstance(result, Rejection):
            errors.append(BadLine(line, result.detail))
        else:
            rows[result.identity] = result
    return SpendFile(tuple(rows.values()), tuple(errors))


def spend_row(row: SpendRow) -> tuple[object, ...]:
    """Values in `AD_SPEND` column order, built by name."""
    values = {
        "site_id": row.site_id,
        "day": row.day,
        "utm_source": row.utm_source,
        "utm_campaign": row.utm_campaign,
        "currency": row.currency,
        "cost": row.cost,
        "clicks": row.clicks,
        "impressions": row.impressions,
        "updated_at": datetime.fromtimestamp(row.updated_at_ms / 1000, tz=UTC),
    }
    return tuple(values[column] for column in AD_SPEND)


def write_spend(client: Client, database: str, rows: Iterable[SpendRow]) -> int:
    data = [spend_row(row) for row in rows]
    if data:
        client.insert(f"{database}.ad_spend", data, column_names=AD_SPEND)
    return len(data)
