"""The funnel report as SQL: the same statements on chDB and on a ClickHouse server.

Every table may hold a replayed row next to the original until a background merge collapses
them, so each query deduplicates by the table's key itself and is exact before and after merges:

- stages: ``uniqExact(session_id, session_start)`` per stage (a session reaches a stage once; a
  session_id reused after expiry is another session, with another start);
- orders: one per (site_id, order_id), its earliest row (``argMin`` by ``occurred_at``);
- carts: one per (site_id, session_id, session_start, cart_seq), its latest version (``argMax``
  by ``version``);
- late events: distinct (session_id, event_id);
- dead letters: one per source position, at its latest ``rejected_at`` (the row a merge keeps,
  since a replay rejects again later);
- bounces: raw events, one per (session_id, event_id); ``events_raw`` has no session start, so
  an id's counted events are cut into sessions where, in time order, they are more than the
  retention apart: the engine's own split, from event times alone (see ``_bounces``).

Time ranges are half-open, [start, end). Values are bound parameters; the only text spliced in
is the database (a validated identifier) and a breakdown column (from a closed list).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

# Dimensions a report can be broken down by (utm_medium is implied by utm_source).
BREAKDOWN_DIMENSIONS = ("utm_source", "utm_campaign", "device", "country", "variant")
STAGE_COUNT = 4  # page_view, add_to_cart, checkout, purchase

_WHOLE_SITE = "''"  # the breakdown "column" of the site's own totals: one constant group
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_IN_RANGE = (
    "{column} >= fromUnixTimestamp64Milli({{start_ms:Int64}}, 'UTC') "
    "AND {column} < fromUnixTimestamp64Milli({{end_ms:Int64}}, 'UTC')"
)


def check_range(site_id: str, start: datetime, end: datetime) -> None:
    """A site and a half-open, offset-aware range, or ValueError saying what is wrong."""
    if not site_id:
        raise ValueError("site must not be empty")
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("from and to must carry a UTC offset")
    if start >= end:
        raise ValueError("from must be before to")


@dataclass(frozen=True, slots=True)
class ReportQuery:
    site_id: str
    start: datetime  # inclusive
    end: datetime  # exclusive
    by: str | None = None  # one of BREAKDOWN_DIMENSIONS

    def __post_init__(self) -> None:
        check_range(self.site_id, self.start, self.end)
        if self.by is not None and self.by not in BREAKDOWN_DIMENSIONS:
            raise ValueError(f"cannot break down by {self.by!r}; one of {BREAKDOWN_DIMENSIONS}")


@dataclass(frozen=True, slots=True)
class Sales:
    currency: str
    orders: int
    revenue: Decimal  # exact sum of order values


@dataclass(frozen=True, slots=True)
class FunnelCounts:
    sessions: tuple[int, ...]  # per stage, PAGE_VIEW first
    sales: tuple[Sales, ...]  # per currency, sorted by currency
    carts_opened: int
    carts_abandoned: int  # final status abandoned or recovered
    carts_recovered: int
    viewed_sessions: int = 0  # sessions whose first page view is in the range
    bounced_sessions: int = 0  # of those: one page view and no other event
    page_views: int = 0  # distinct page views of those sessions

    @property
    def orders(self) -> int:
        return sum(s.orders for s in self.sales)


EMPTY = FunnelCounts((0,) * STAGE_COUNT, (), 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Segment:
    key: str  # the breakdown dimension's value; '' when unknown
    counts: FunnelCounts


@dataclass(frozen=True, slots=True)
class ReportCounts:
    total: FunnelCounts
    late_events: int
    invalid_events: int
    breakdown: tuple[Segment, ...] = ()  # empty without `by`; most page views first


def ceil_ms(moment: datetime) -> int:
    """Epoch milliseconds rounded up: rows hold whole ms, so t >= x exactly when t >= ceil(x)."""
    return -((_EPOCH - moment) // _MS)


def query_report(
    client: Client, database: str, query: ReportQuery, *, retention_ms: int
) -> ReportCounts:
    """All report numbers for one site and range; run it on the sink's thread in a worker.

    ``retention_ms``: the worker's ``FunnelRules.retention_ms``, the event-time gap after which a
    session id starts a new session (the bounce figures cut sessions by it)."""
    params = {
        "site": query.site_id,
        "start_ms": ceil_ms(query.start),
        "end_ms": ceil_ms(query.end),
        "retention_ms": retention_ms,
    }
    total = _funnel_counts(client, database, _WHOLE_SITE, params).get("", EMPTY)
    breakdown: tuple[Segment, ...] = ()
    if query.by is not None:
        groups = _funnel_counts(client, database, query.by, params)
        ordered = sorted(groups.items(), key=lambda item: (-item[1].sessions[0], item[0]))
        breakdown = tuple(Segment(key, counts) for key, counts in ordered)
    late = _scalar(
        client,
        f"SELECT uniqExact(session_id, event_id) FROM {database}.events_raw "
        f"WHERE site_id = {{site:String}} AND late AND {_IN_RANGE.format(column='occurred_at')}",
        params,
    )
    # A rejected message may not even be JSON, so it has no site: this counts every site's.
    invalid = _scalar(
        client,
        f"SELECT count() FROM (SELECT max(rejected_at) AS at FROM {database}.dead_letters "
        "GROUP BY source_topic, source_partition, source_offset) "
        f"WHERE {_IN_RANGE.format(column='at')}",
        params,
    )
    return ReportCounts(total, late, invalid, breakdown)


def _funnel_counts(
    client: Client, db: str, key: str, params: Mapping[str, Any]
) -> dict[str, FunnelCounts]:
    """Counts per value of the `key` column (`_WHOLE_SITE`: one group, '')."""
    sessions = _sessions(client, db, key, params)
    sales = _sales(client, db, key, params)
    carts = _carts(client, db, key, params)
    bounces = _bounces(client, db, key, params)
    return {
        value: FunnelCounts(
            sessions.get(value, EMPTY.sessions),
            sales.get(value, ()),
            *carts.get(value, (0, 0, 0)),
            *bounces.get(value, (0, 0, 0)),
        )
        for value in sessions.keys() | sales.keys() | carts.keys() | bounces.keys()
    }


def _sessions(
    client: Client, db: str, key: str, params: Mapping[str, Any]
) -> dict[str, tuple[int, ...]]:
    sessions: dict[str, list[int]] = {}
    for value, stage, count in _rows(
        client,
        f"SELECT {key} AS key, stage, uniqExact(session_id, session_start) FROM {db}.stage_entries "
        f"WHERE site_id = {{site:String}} AND {_IN_RANGE.format(column='reached_at')} "
        "GROUP BY key, stage",
        params,
    ):
        sessions.setdefault(value, [0] * STAGE_COUNT)[stage - 1] = count
    return {value: tuple(counts) for value, counts in sessions.items()}


def _sales(
    client: Client, db: str, key: str, params: Mapping[str, Any]
) -> dict[str, tuple[Sales, ...]]:
    sales: dict[str, list[Sales]] = {}
    for value, currency, orders, revenue in _rows(
        client,
        # Rows at or after `end` can't be the earliest of an order that counts, so they are
        # skipped up front; rows before `start` can, so `start` bounds the earliest only.
        "SELECT key, first_currency, count(), toString(sum(first_value)) FROM ("
        "  SELECT min(occurred_at) AS first_at, argMin(value, occurred_at) AS first_value,"
        f"   argMin(currency, occurred_at) AS first_currency, argMin({key}, occurred_at) AS key"
        f"  FROM {db}.orders WHERE site_id = {{site:String}}"
        "    AND occurred_at < fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC')"
        "  GROUP BY order_id"
        f") WHERE {_IN_RANGE.format(column='first_at')}"
        " GROUP BY key, first_currency ORDER BY first_currency",
        params,
    ):
        sales.setdefault(value, []).append(Sales(currency, orders, Decimal(revenue)))
    return {value: tuple(rows) for value, rows in sales.items()}


def _carts(
    client: Client, db: str, key: str, params: Mapping[str, Any]
) -> dict[str, tuple[int, int, int]]:
    rows = _rows(
        client,
        # opened_at is the same in every version of a cart, so it can filter rows up front.
        "SELECT key, count(), countIf(final IN ('abandoned', 'recovered')),"
        "  countIf(final = 'recovered') FROM ("
        f"  SELECT argMax(status, version) AS final, argMax({key}, version) AS key"
        f"  FROM {db}.carts WHERE site_id = {{site:String}}"
        f"    AND {_IN_RANGE.format(column='opened_at')}"
        "  GROUP BY session_id, session_start, cart_seq"
        ") GROUP BY key",
        params,
    )
    return {value: (opened, abandoned, recovered) for value, opened, abandoned, recovered in rows}


def _bounces(
    client: Client, db: str, key: str, params: Mapping[str, Any]
) -> dict[str, tuple[int, int, int]]:
    """(viewed, bounced, page views) of the sessions whose first page view is in the range.

    From the raw events that counted (not late, not capped), so a second event that arrived late but
    within the lateness bound keeps its session from bouncing; replays collapse on event_id.
    events_raw has no session start, so sessions are cut here from event times: the engine starts
    a new session of an id at an accepted event more than the retention after the session's latest
    (``starts_anew``), and takes anything before the old session's close as late. An accepted
    event is at most the lateness (below the retention) behind those accepted before it, so
    arrival order hides no gap: the engine cuts exactly where counted events, in time order, are
    more than the retention apart. Not so for events accepted behind one more than the retention
    ahead that moved no watermark (future-dated, or forwarded by a repartition): the engine keeps
    them in its session."""
    views_in_range = (
        f"SELECT session_id FROM {db}.events_raw WHERE site_id = {{site:String}}"
        f" AND event_type = 'page_view' AND NOT late AND NOT capped"
        f" AND {_IN_RANGE.format(column='occurred_at')}"
    )
    counted = (
        "SELECT session_id, event_id, min(occurred_at) AS at,"
        f" argMin(event_type, occurred_at) AS kind, argMin({key}, occurred_at) AS dim"
        f" FROM {db}.events_raw"
        " WHERE site_id = {site:String} AND NOT late AND NOT capped"
        f" AND session_id IN ({views_in_range}) GROUP BY session_id, event_id"
    )
    by_time = "PARTITION BY session_id ORDER BY at, event_id ROWS UNBOUNDED PRECEDING"
    gap = "toUnixTimestamp64Milli(at) - toUnixTimestamp64Milli(previous)"
    numbered = (  # a session's number within its id: how many cuts precede its events
        f"SELECT session_id, event_id, at, kind, dim,"
        f" sum(toUInt8({gap} > {{retention_ms:Int64}}))"
        f"  OVER ({by_time}) AS session_no FROM ("
        f"  SELECT *, lagInFrame(at, 1, at) OVER ({by_time}) AS previous FROM ({counted}))"
    )
    rows = _rows(
        client,
        "SELECT key, count(), countIf(events = 1 AND views = 1), sum(views) FROM ("
        "  SELECT count() AS events, countIf(kind = 'page_view') AS views,"
        "    minIf(at, kind = 'page_view') AS first_view, argMin(dim, (at, event_id)) AS key"
        f"  FROM ({numbered}) GROUP BY session_id, session_no"
        # A reused id's session may have no page view: minIf's default (1970) is no first view.
        f") WHERE views > 0 AND {_IN_RANGE.format(column='first_view')} GROUP BY key",
        params,
    )
    return {value: (viewed, bounced, views) for value, viewed, bounced, views in rows}


def _rows(client: Client, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in client.query(sql, parameters=dict(params)).result_rows]


def _scalar(client: Client, sql: str, params: Mapping[str, Any]) -> int:
    value: int = client.query(sql, parameters=dict(params)).result_rows[0][0]
    return value
