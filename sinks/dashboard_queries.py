"""The web dashboard's SQL beyond the report: sites, stage counts over time, dead letters.

Deduplicated like the report (see `sinks.report_queries`): stage counts come from the
`stage_counts_1m` view (``uniqExact`` per minute, so replays count once), dead letters one per
source position at its latest rejection, the row a merge keeps. Values are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clickhouse_connect.driver.client import Client

from sinks.report_queries import STAGE_COUNT, ceil_ms


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    index: int  # bucket number from the range start: [start + index*step, … + step)
    sessions: tuple[int, ...]  # stage entries per stage, PAGE_VIEW first


@dataclass(frozen=True, slots=True)
class ReasonCount:
    reason_code: str
    count: int
    example: str  # the latest reason text of that code, for a human


def query_sites(client: Client, database: str) -> list[str]:
    """Every site with a stage entry or an order, sorted."""
    rows = client.query(
        f"SELECT DISTINCT site_id FROM {database}.stage_entries "
        f"UNION DISTINCT SELECT DISTINCT site_id FROM {database}.orders"
    ).result_rows
    return sorted(str(row[0]) for row in rows)


def query_series(
    client: Client, database: str, site_id: str, start: datetime, end: datetime, step_s: int
) -> list[SeriesPoint]:
    """Stage entries per `step_s` bucket over whole minutes: those starting in [start, end)."""
    params = {"site": site_id, "start_ms": ceil_ms(start), "end_ms": ceil_ms(end), "step": step_s}
    rows = client.query(
        "SELECT intDiv(toUnixTimestamp(minute) * 1000 - {start_ms:Int64}, {step:Int64} * 1000)"
        "  AS bucket, stage, sum(sessions)"
        f" FROM {database}.stage_counts_1m WHERE site_id = {{site:String}}"
        "  AND minute >= fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC')"
        "  AND minute < fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC')"
        " GROUP BY bucket, stage ORDER BY bucket",
        parameters=params,
    ).result_rows
    buckets: dict[int, list[int]] = {}
    for bucket, stage, sessions in rows:
        buckets.setdefault(int(bucket), [0] * STAGE_COUNT)[int(stage) - 1] = int(sessions)
    return [SeriesPoint(index, tuple(counts)) for index, counts in sorted(buckets.items())]


def query_dead_letters(
    client: Client, database: str, start: datetime, end: datetime
) -> list[ReasonCount]:
    """Rejected messages per reason code, by rejection time in [start, end) (all sites)."""
    rows = client.query(
        "SELECT code, count(), argMax(reason, at) FROM ("
        "  SELECT max(rejected_at) AS at, argMax(reason_code, rejected_at) AS code,"
        "   argMax(reason, rejected_at) AS reason"
        f"  FROM {database}.dead_letters"
        "  GROUP BY source_topic, source_partition, source_offset"
        ") WHERE at >= fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC')"
        "  AND at < fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC')"
        " GROUP BY code ORDER BY count() DESC, code",
        parameters={"start_ms": ceil_ms(start), "end_ms": ceil_ms(end)},
    ).result_rows
    return [ReasonCount(str(code), int(n), str(example)) for code, n, example in rows]


def site_has_data(client: Client, database: str, site_id: str) -> bool:
    """Cheap (the site leads both tables' keys): does the site have a stage entry or order?"""
    rows = client.query(
        f"SELECT 1 FROM {database}.stage_entries WHERE site_id = {{site:String}} LIMIT 1 "
        f"UNION ALL SELECT 1 FROM {database}.orders WHERE site_id = {{site:String}} LIMIT 1",
        parameters={"site": site_id},
    ).result_rows
    return bool(rows)
