"""Customers: the retention triangle and repeat buying, as `funnel customers` defines them.

A customer is a user_id; orders are one per order_id at their earliest row, read from the
`customers` table (one row per customer, its order rows; guest rows from `orders`) as `funnel
customers` reads them; a customer's first order is `customer_first_orders` (shared with `funnel
marketing`). Cohort = month of the first
order; retention at +k = share of the cohort with an order in month +k (+0 is everyone).
"""

from __future__ import annotations

from deploy.grafana.dashgen.model import Column, Dashboard, Kind, Panel, Row, Sql, site_variable
from deploy.grafana.dashgen.sql import SITE

_WITH = f"""WITH
    placed AS (
        SELECT order_id, min(placed_at) AS at, argMin(uid, placed_at) AS user_id
        FROM (
            SELECT user_id AS uid, row.1 AS order_id, row.2 AS placed_at
            FROM (
                SELECT user_id, groupUniqArrayMerge(orders) AS rows
                FROM funnel.customers WHERE {SITE} GROUP BY user_id
            ) ARRAY JOIN rows AS row
            UNION ALL
            SELECT '', order_id, occurred_at FROM funnel.orders WHERE {SITE} AND user_id = ''
        )
        WHERE placed_at <= $__toTime
        GROUP BY order_id
        HAVING user_id != ''
    ),
    firsts AS (
        SELECT user_id, min(first_order_at) AS first_at
        FROM funnel.customer_first_orders
        WHERE {SITE}
        GROUP BY user_id
    )"""


def retention_triangle() -> Sql:
    return Sql(
        f"""{_WITH}
SELECT formatDateTime(c.cohort_start, '%Y-%m') AS cohort, r.months_after AS months_after,
    r.returning AS customers, r.returning / c.size AS retention
FROM (
    SELECT toStartOfMonth(first_at) AS cohort_start, count() AS size
    FROM firsts WHERE $__timeFilter(first_at) GROUP BY cohort_start
) AS c
INNER JOIN (
    SELECT toStartOfMonth(f.first_at) AS cohort_start,
        toUInt64(dateDiff('month', toStartOfMonth(f.first_at), toStartOfMonth(o.at)))
            AS months_after,
        uniqExact(o.user_id) AS returning
    FROM placed AS o INNER JOIN firsts AS f ON o.user_id = f.user_id
    GROUP BY cohort_start, months_after
) AS r ON c.cohort_start = r.cohort_start
ORDER BY cohort, months_after""",
        (
            Column("cohort", Kind.LABEL),
            Column("months_after", Kind.COUNT),
            Column("customers", Kind.COUNT),
            Column("retention", Kind.RATIO),
        ),
    )


def new_and_returning() -> Sql:
    return Sql(
        f"""{_WITH}
SELECT $__timeInterval(o.at) AS time,
    uniqExactIf(o.user_id, o.at = f.first_at) AS new_customers,
    uniqExactIf(o.user_id, o.at > f.first_at) AS returning_customers
FROM placed AS o INNER JOIN firsts AS f ON o.user_id = f.user_id
WHERE $__timeFilter(o.at)
GROUP BY time
ORDER BY time""",
        (
            Column("time", Kind.TIME),
            Column("new_customers", Kind.COUNT),
            Column("returning_customers", Kind.COUNT),
        ),
        time_series=True,
    )


def repeat_share() -> Sql:
    return Sql(
        f"""{_WITH}
SELECT $__timeInterval(o.at) AS time, countIf(o.at > f.first_at) / count() AS repeat_order_share
FROM placed AS o INNER JOIN firsts AS f ON o.user_id = f.user_id
WHERE $__timeFilter(o.at)
GROUP BY time
ORDER BY time""",
        (Column("time", Kind.TIME), Column("repeat_order_share", Kind.RATIO)),
        time_series=True,
    )


_SEGMENT = """multiIf(
        r >= 4 AND f >= 4, 'champions', r >= 3 AND f >= 3, 'loyal', r >= 4 AND f = 1, 'new',
        r >= 3, 'potential_loyalists', f >= 4, 'cant_lose', r = 2 AND f >= 2, 'at_risk',
        r = 2 OR f >= 2, 'hibernating', 'lost')"""


def segments_over_time() -> Sql:
    """Per day: customers per RFM segment as of the day's end (or the range end), scored as
    `funnel customers` scores them (ranked quintiles, ties by user_id)."""
    return Sql(
        f"""{_WITH},
    days AS (
        SELECT arrayJoin(arrayMap(
            i -> toStartOfDay($__fromTime) + toIntervalDay(i),
            range(toUInt32(dateDiff('day', toStartOfDay($__fromTime), $__toTime)) + 1)
        )) AS day
    )
SELECT time, {_SEGMENT} AS segment, count() AS customers
FROM (
    SELECT time, 1 + intDiv(5 * (row_number() OVER (PARTITION BY time
            ORDER BY recency_days DESC, user_id) - 1), count() OVER (PARTITION BY time)) AS r,
        1 + intDiv(5 * (row_number() OVER (PARTITION BY time
            ORDER BY frequency, user_id) - 1), count() OVER (PARTITION BY time)) AS f
    FROM (
        SELECT greatest(d.day, $__fromTime) AS time, o.user_id AS user_id,
            intDiv(toUnixTimestamp(least(d.day + toIntervalDay(1), $__toTime)) * 1000
                - toUnixTimestamp64Milli(max(o.at)), 86400000) AS recency_days,
            count() AS frequency
        FROM placed AS o CROSS JOIN days AS d
        WHERE o.at < least(d.day + toIntervalDay(1), $__toTime)
        GROUP BY d.day, o.user_id
    )
)
GROUP BY time, segment
ORDER BY time, segment""",
        (Column("time", Kind.TIME), Column("segment", Kind.LABEL), Column("customers", Kind.COUNT)),
        time_series=True,
    )


def dashboard() -> Dashboard:
    return Dashboard(
        uid="funnel-customers",
        title="Customers",
        description="Who comes back: retention by first-order month and repeat buying.",
        variables=(site_variable(),),
        rows=(
            Row(
                "Retention",
                (
                    Panel(
                        "Retention by first-order month",
                        "Per cohort (month of the first order ever) and months after it: the "
                        "customers who ordered then and their share of the cohort.",
                        "table",
                        (retention_triangle(),),
                        width=24,
                    ),
                ),
            ),
            Row(
                "Repeat buying",
                (
                    Panel(
                        "New and returning customers",
                        "Customers ordering per interval: at their first order ever, or later.",
                        "timeseries",
                        (new_and_returning(),),
                    ),
                    Panel(
                        "Segments over time",
                        "Customers per RFM segment as of each day's end (champions, loyal, "
                        "new, potential loyalists, can't lose, at risk, hibernating, lost).",
                        "timeseries",
                        (segments_over_time(),),
                        width=24,
                    ),
                    Panel(
                        "Orders from returning customers",
                        "Share of customer orders per interval placed after the first order.",
                        "timeseries",
                        (repeat_share(),),
                    ),
                ),
            ),
        ),
    )
