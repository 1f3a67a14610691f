"""Marketing numbers as SQL: spend, sessions, orders, revenue and new customers per channel.

- Channel: `utm_source` (or `utm_campaign`) trimmed of spaces/tabs and lower-cased, exactly as
  `schemas.spend.normalise_channel` does for spend rows; no source is the channel `(direct)`.
- Spend: the latest row (argMax by `updated_at`) per (day, source, campaign, currency), for the
  days whose start (00:00 UTC) lies in [start, end).
- Sessions: stage-1 sessions reached in [start, end), by their own (first-touch) utm.
- Orders: one per order_id, its earliest row, by purchase time, as in the funnel report.
- Attribution `first_touch`: the order session's utm. `last_non_direct`: the utm of the user's
  latest session with a source that started (first page view) within the lookback before the
  order; the order session's utm if none or for a guest. A user's sessions are those whose
  stage entries or orders carry the user_id.
- New customer: a user_id whose first order ever (`customer_first_orders`) lies in the range,
  counted on the row of that order (the smallest order_id at that time).
- By campaign, a source without a campaign is the channel `(none)`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.report_queries import ceil_ms, check_range

MARKETING_DIMENSIONS = ("utm_source", "utm_campaign")
DIRECT = "(direct)"  # the channel of sessions without utm_source
NO_CAMPAIGN = "(none)"  # by campaign: a source without utm_campaign
DEFAULT_LOOKBACK = timedelta(days=30)


class Attribution(enum.StrEnum):
    FIRST_TOUCH = "first_touch"
    LAST_NON_DIRECT = "last_non_direct"


def channel_sql(column: str) -> str:
    """The SQL twin of `schemas.spend.normalise_channel`."""
    return f"lowerUTF8(trim(BOTH ' \\t' FROM {column}))"


@dataclass(frozen=True, slots=True)
class MarketingQuery:
    site_id: str
    start: datetime  # inclusive
    end: datetime  # exclusive
    by: str = "utm_source"
    attribution: Attribution = Attribution.FIRST_TOUCH
    lookback: timedelta = DEFAULT_LOOKBACK

    def __post_init__(self) -> None:
        check_range(self.site_id, self.start, self.end)
        if self.by not in MARKETING_DIMENSIONS:
            raise ValueError(f"cannot group by {self.by!r}; one of {MARKETING_DIMENSIONS}")
        if self.lookback <= timedelta(0):
            raise ValueError("lookback must be positive")

    @property
    def spend_days(self) -> tuple[date, date]:
        """[first, end) of the days whose 00:00 UTC lies in [start, end)."""
        return first_day_from(self.start), first_day_from(self.end)


def first_day_from(moment: datetime) -> date:
    """The first UTC day starting at or after `moment`."""
    utc = moment.astimezone(UTC)
    day = utc.date()
    return day if utc == datetime.combine(day, time(), UTC) else day + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Spend:
    cost: Decimal
    clicks: int


@dataclass(frozen=True, slots=True)
class Sold:
    orders: int
    revenue: Decimal
    guest_orders: int
    new_customers: int


@dataclass(frozen=True, slots=True)
class MarketingCounts:
    spend: dict[tuple[str, str], Spend]  # (channel, currency)
    sales: dict[tuple[str, str], Sold]  # (channel, currency)
    sessions: dict[str, int]  # channel


def query_marketing(client: Client, database: str, query: MarketingQuery) -> MarketingCounts:
    first, end = query.spend_days
    params: dict[str, Any] = {
        "site": query.site_id,
        "start_ms": ceil_ms(query.start),
        "end_ms": ceil_ms(query.end),
        "lookback_ms": query.lookback // timedelta(milliseconds=1),
        "first_day": first,
        "end_day": end,
    }
    return MarketingCounts(
        spend=_spend(client, database, query.by, params),
        sales=_sales(client, database, query, params),
        sessions=_sessions(client, database, query.by, params),
    )


def _key(by: str, source: str, campaign: str) -> str:
    """The channel of normalised (source, campaign) expressions."""
    if by == "utm_source":
        return f"if({source} = '', '{DIRECT}', {source})"
    return f"multiIf({source} = '', '{DIRECT}', {campaign} = '', '{NO_CAMPAIGN}', {campaign})"


_START = "fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC')"
_END = "fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC')"
_LOOKBACK_START = "fromUnixTimestamp64Milli({start_ms:Int64} - {lookback_ms:Int64}, 'UTC')"


def _spend(
    client: Client, db: str, by: str, params: Mapping[str, Any]
) -> dict[tuple[str, str], Spend]:
    rows = client.query(
        f"SELECT {_key(by, 'utm_source', 'utm_campaign')} AS key, currency,"
        "  toString(sum(cost)), sum(clicks) FROM ("
        "  SELECT utm_source, utm_campaign, currency, argMax(cost, updated_at) AS cost,"
        "    argMax(clicks, updated_at) AS clicks"
        f"  FROM {db}.ad_spend WHERE site_id = {{site:String}}"
        "    AND day >= {first_day:Date} AND day < {end_day:Date}"
        "  GROUP BY day, utm_source, utm_campaign, currency"
        ") GROUP BY key, currency",
        parameters=dict(params),
    ).result_rows
    return {(key, cur): Spend(Decimal(cost), clicks) for key, cur, cost, clicks in rows}


def _sessions(client: Client, db: str, by: str, params: Mapping[str, Any]) -> dict[str, int]:
    key = _key(by, channel_sql("utm_source"), channel_sql("utm_campaign"))
    rows = client.query(
        f"SELECT {key} AS key, uniqExact(session_id, session_start) FROM {db}.stage_entries"
        f" WHERE site_id = {{site:String}} AND stage = 1"
        f"   AND reached_at >= {_START} AND reached_at < {_END} GROUP BY key",
        parameters=dict(params),
    ).result_rows
    return {key: sessions for key, sessions in rows}


def _sales(
    client: Client, db: str, query: MarketingQuery, params: Mapping[str, Any]
) -> dict[tuple[str, str], Sold]:
    own_source, own_campaign = channel_sql("o.utm_source"), channel_sql("o.utm_campaign")
    if query.attribution is Attribution.FIRST_TOUCH:
        touch, source, campaign = "", own_source, own_campaign
    else:
        touch = f"LEFT JOIN ({_last_touch(db)}) AS t ON o.order_id = t.order_id"
        source = f"if(t.source != '', t.source, {own_source})"
        campaign = f"if(t.source != '', t.campaign, {own_campaign})"
    rows = client.query(
        f"WITH orders_in AS ({_orders_in(db)}),"
        f" new_orders AS ({_new_orders(db)})"
        " SELECT key, currency, count(), toString(sum(value)), countIf(user_id = ''),"
        "   countIf(order_id IN (SELECT order_id FROM new_orders)) FROM ("
        f"  SELECT o.order_id AS order_id, o.value AS value, o.currency AS currency,"
        f"    o.user_id AS user_id, {_key(query.by, source, campaign)} AS key"
        f"  FROM orders_in AS o {touch}"
        ") GROUP BY key, currency",
        parameters=dict(params),
    ).result_rows
    return {
        (key, currency): Sold(orders, Decimal(revenue), guests, new)
        for key, currency, orders, revenue, guests, new in rows
    }


def _orders_in(db: str) -> str:
    """Each order once (its earliest row), bought in [start, end)."""
    return (
        "SELECT order_id, min(occurred_at) AS at, argMin(value, occurred_at) AS value,"
        " argMin(currency, occurred_at) AS currency, argMin(user_id, occurred_at) AS user_id,"
        " argMin(session_id, occurred_at) AS session_id,"
        " argMin(utm_source, occurred_at) AS utm_source,"
        " argMin(utm_campaign, occurred_at) AS utm_campaign"
        f" FROM {db}.orders WHERE site_id = {{site:String}} AND occurred_at < {_END}"
        f" GROUP BY order_id HAVING at >= {_START}"
    )


def _new_orders(db: str) -> str:
    """Per customer whose first order ever is in the range: that order."""
    return (
        "SELECT argMin(o.order_id, (o.at, o.order_id)) AS order_id"
        " FROM orders_in AS o INNER JOIN ("
        "  SELECT user_id, min(first_order_at) AS first_at"
        f"  FROM {db}.customer_first_orders WHERE site_id = {{site:String}}"
        "    AND user_id IN (SELECT user_id FROM orders_in WHERE user_id != '')"
        "  GROUP BY user_id"
        ") AS f ON o.user_id = f.user_id"
        " GROUP BY o.user_id HAVING min(o.at) = any(f.first_at)"
    )


def _last_touch(db: str) -> str:
    """Per order of a known user: source and campaign of the latest qualifying session."""
    source, campaign = channel_sql("utm_source"), channel_sql("utm_campaign")
    sessions = (
        # (session_id, session_start) is the session: an id reused later is another one.
        "SELECT session_id, session_start, min(reached_at) AS started,"
        f" argMin({source}, reached_at) AS source,"
        f" argMin({campaign}, reached_at) AS campaign FROM {db}.stage_entries"
        f" WHERE site_id = {{site:String}} AND stage = 1 AND reached_at >= {_LOOKBACK_START}"
        f" AND reached_at < {_END} GROUP BY session_id, session_start HAVING source != ''"
    )
    members = (
        f"SELECT session_id, session_start, user_id FROM {db}.stage_entries"
        f" WHERE site_id = {{site:String}} AND user_id != '' AND reached_at >= {_LOOKBACK_START}"
        f" UNION DISTINCT SELECT session_id, session_start, user_id FROM {db}.orders"
        f" WHERE site_id = {{site:String}} AND user_id != '' AND occurred_at >= {_LOOKBACK_START}"
    )
    return (
        "SELECT o.order_id AS order_id,"
        " argMax(s.source, (s.started, s.session_id)) AS source,"
        " argMax(s.campaign, (s.started, s.session_id)) AS campaign"
        f" FROM orders_in AS o INNER JOIN ({members}) AS m ON o.user_id = m.user_id"
        f" INNER JOIN ({sessions}) AS s"
        " ON m.session_id = s.session_id AND m.session_start = s.session_start"
        " WHERE s.started <= o.at"
        "   AND toUnixTimestamp64Milli(s.started)"
        "     >= toUnixTimestamp64Milli(o.at) - {lookback_ms:Int64}"
        " GROUP BY o.order_id"
    )
