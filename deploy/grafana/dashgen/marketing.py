"""Marketing: spend, ROAS and CAC per channel, the same definitions as `funnel marketing`.

Channel = utm_source trimmed and lower-cased (`(direct)` without one), first touch. Spend: the
latest row per (day, source, campaign, currency), placed at its day (or the range start, for a
day that began before it). Orders: one per order_id at its earliest row; a new customer is an
order of a user at the user's first order time ever (`customer_first_orders`). Currencies are
never mixed: every series and row is per channel and currency.
"""

from __future__ import annotations

from deploy.grafana.dashgen.model import Column, Dashboard, Kind, Panel, Row, Sql, site_variable
from deploy.grafana.dashgen.sql import SITE

_CHANNEL = "if(source = '', '(direct)', source)"
_SOURCE = "lowerUTF8(trim(BOTH ' \\t' FROM utm_source))"  # sinks.marketing_queries.channel_sql

_FACTS = f"""
    SELECT greatest(toDateTime(day, 'UTC'), $__fromTime) AS time, utm_source AS channel,
        spend_currency AS currency, day_spend AS spend, toDecimal128(0, 6) AS revenue,
        toUInt64(0) AS new_customers
    FROM (
        SELECT day, utm_source, currency AS spend_currency,
            argMax(cost, updated_at) AS day_spend
        FROM funnel.ad_spend
        WHERE {SITE} AND toDateTime(day, 'UTC') >= $__fromTime
            AND toDateTime(day, 'UTC') <= $__toTime
        GROUP BY day, utm_source, utm_campaign, spend_currency
    )
    UNION ALL
    SELECT greatest(toDateTime(toStartOfDay(o.first_at)), $__fromTime) AS time,
        {_CHANNEL} AS channel, o.order_currency AS currency, toDecimal128(0, 6) AS spend,
        o.order_value AS revenue,
        toUInt64(o.user_id != '' AND o.first_at = f.first_order_at) AS new_customers
    FROM (
        SELECT order_id, min(occurred_at) AS first_at,
            argMin(value, occurred_at) AS order_value,
            argMin(currency, occurred_at) AS order_currency,
            argMin(user_id, occurred_at) AS user_id,
            argMin({_SOURCE}, occurred_at) AS source
        FROM funnel.orders
        WHERE {SITE} AND occurred_at <= $__toTime
        GROUP BY order_id
    ) AS o
    LEFT JOIN (
        SELECT user_id, min(first_order_at) AS first_order_at
        FROM funnel.customer_first_orders WHERE {SITE} GROUP BY user_id
    ) AS f ON o.user_id = f.user_id
    WHERE $__timeFilter(o.first_at)"""

_TOTALS = """sum(spend) AS total_spend, sum(revenue) AS total_revenue,
    sum(new_customers) AS customers,
    if(total_spend > 0, toFloat64(total_revenue / total_spend), NULL) AS roas,
    if(customers > 0, toFloat64(total_spend) / customers, NULL) AS cac"""


def per_channel() -> Sql:
    return Sql(
        f"""SELECT channel, currency, {_TOTALS}
FROM ({_FACTS}
)
GROUP BY channel, currency
ORDER BY total_spend DESC, channel, currency""",
        (
            Column("channel", Kind.LABEL),
            Column("currency", Kind.LABEL),
            Column("total_spend", Kind.MONEY),
            Column("total_revenue", Kind.MONEY),
            Column("customers", Kind.COUNT),
            Column("roas", Kind.QUOTIENT),
            Column("cac", Kind.QUOTIENT),
        ),
    )


def over_time(metric: str, kind: Kind) -> Sql:
    """One daily series per channel and currency of `metric` (a column of `_TOTALS`)."""
    return Sql(
        f"""SELECT time, concat(channel, ' ', currency) AS series, {metric}
FROM (
    SELECT time, channel, currency, {_TOTALS}
    FROM ({_FACTS}
    )
    GROUP BY time, channel, currency
)
ORDER BY time, series""",
        (Column("time", Kind.TIME), Column("series", Kind.LABEL), Column(metric, kind)),
        time_series=True,
    )


def dashboard() -> Dashboard:
    return Dashboard(
        uid="funnel-marketing",
        title="Marketing",
        description="What each channel cost and brought: spend, ROAS and CAC, per currency.",
        variables=(site_variable(),),
        rows=(
            Row(
                "Per channel",
                (
                    Panel(
                        "Spend, revenue, new customers, ROAS and CAC per channel",
                        "Over the range, per channel and currency (no FX): spend, revenue, new "
                        "customers (first order ever in the range), ROAS = revenue / spend, "
                        "CAC = spend / new customers.",
                        "table",
                        (per_channel(),),
                        width=24,
                    ),
                ),
            ),
            Row(
                "Over time (per day)",
                (
                    Panel(
                        "Spend per channel",
                        "Ad spend per day, channel and currency.",
                        "timeseries",
                        (over_time("total_spend", Kind.MONEY),),
                        width=8,
                    ),
                    Panel(
                        "ROAS per channel",
                        "Revenue / spend per day, channel and currency.",
                        "timeseries",
                        (over_time("roas", Kind.QUOTIENT),),
                        width=8,
                    ),
                    Panel(
                        "CAC per channel",
                        "Spend / new customers per day, channel and currency.",
                        "timeseries",
                        (over_time("cac", Kind.QUOTIENT),),
                        width=8,
                    ),
                ),
            ),
        ),
    )
