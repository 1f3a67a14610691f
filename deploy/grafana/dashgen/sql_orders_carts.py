"""ClickHouse queries for orders and carts, with the report's semantics (see `sql`).

- Orders: one per order_id, at its earliest occurred_at (the first copy decides the time).
- Carts: one per (session_id, session_start, cart_seq), final status = argMax(status, version),
  counted by opened_at. Abandoned includes recovered: it was abandoned before the purchase saved it.
"""

from __future__ import annotations

from deploy.grafana.dashgen.model import Column, Kind, Sql
from deploy.grafana.dashgen.sql import SITE, segment


def _orders(extra_select: str = "") -> str:
    # The upper bound is safe to push down (an order first seen after the range is out either
    # way); the lower one is not: a later copy of an order first seen before the range is out.
    return f"""
    SELECT
        order_id,{extra_select}
        min(occurred_at) AS first_at,
        argMin(value, occurred_at) AS order_value,
        argMin(currency, occurred_at) AS order_currency
    FROM funnel.orders
    WHERE {SITE} AND occurred_at <= $__toTime
    GROUP BY order_id"""


_ORDER_COLUMNS = (
    Column("orders", Kind.COUNT),
    Column("revenue", Kind.MONEY),
    Column("aov", Kind.MONEY),
)


def orders_by_currency() -> Sql:
    return Sql(
        f"""SELECT
    order_currency AS currency,
    count() AS orders,
    sum(order_value) AS revenue,
    revenue / orders AS aov
FROM ({_orders()}
)
WHERE $__timeFilter(first_at)
GROUP BY currency
ORDER BY revenue DESC""",
        (Column("currency", Kind.LABEL), *_ORDER_COLUMNS),
    )


def revenue_over_time() -> Sql:
    return Sql(
        f"""SELECT
    $__timeInterval(first_at) AS time,
    order_currency AS currency,
    sum(order_value) AS revenue
FROM ({_orders()}
)
WHERE $__timeFilter(first_at)
GROUP BY time, currency
ORDER BY time, currency""",
        (Column("time", Kind.TIME), Column("currency", Kind.LABEL), Column("revenue", Kind.MONEY)),
        time_series=True,
    )


def orders_by(column: str) -> Sql:
    return Sql(
        f"""SELECT
    segment,
    order_currency AS currency,
    count() AS orders,
    sum(order_value) AS revenue,
    revenue / orders AS aov
FROM ({_orders(f" {segment(f'argMin({column}, occurred_at)')} AS segment,")}
)
WHERE $__timeFilter(first_at)
GROUP BY segment, currency
ORDER BY revenue DESC, segment""",
        (Column("segment", Kind.LABEL), Column("currency", Kind.LABEL), *_ORDER_COLUMNS),
    )


def _carts(extra_select: str = "") -> str:
    return f"""
    SELECT
        session_id,
        session_start,
        cart_seq,{extra_select}
        argMax(status, version) AS final_status,
        argMax(value, version) AS cart_value,
        argMax(currency, version) AS cart_currency
    FROM funnel.carts
    WHERE {SITE} AND $__timeFilter(opened_at)
    GROUP BY session_id, session_start, cart_seq"""


_ABANDONMENT = """
    countIf(final_status != 'open') AS closed_carts,
    countIf(final_status IN ('abandoned', 'recovered'))
        / nullIf(closed_carts, 0) AS abandonment_rate,
    countIf(final_status = 'recovered')
        / nullIf(countIf(final_status IN ('abandoned', 'recovered')), 0) AS recovery_rate"""
_ABANDONMENT_COLUMNS = (
    Column("closed_carts", Kind.COUNT),
    Column("abandonment_rate", Kind.RATIO),
    Column("recovery_rate", Kind.RATIO),
)


def cart_abandonment() -> Sql:
    return Sql(
        f"SELECT{_ABANDONMENT}\nFROM ({_carts()}\n)",
        _ABANDONMENT_COLUMNS,
    )


def carts_by_status() -> Sql:
    return Sql(
        f"""SELECT
    final_status AS status,
    cart_currency AS currency,
    count() AS carts,
    sum(cart_value) AS value
FROM ({_carts()}
)
GROUP BY status, currency
ORDER BY status, currency""",
        (
            Column("status", Kind.LABEL),
            Column("currency", Kind.LABEL),
            Column("carts", Kind.COUNT),
            Column("value", Kind.MONEY),
        ),
    )


def cart_abandonment_by(column: str) -> Sql:
    return Sql(
        f"""SELECT
    segment,{_ABANDONMENT}
FROM ({_carts(f" {segment(f'any({column})')} AS segment,")}
)
GROUP BY segment
ORDER BY closed_carts DESC, segment""",
        (Column("segment", Kind.LABEL), *_ABANDONMENT_COLUMNS),
    )
