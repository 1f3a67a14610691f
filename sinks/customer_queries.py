"""Per-customer facts as of an instant, for `funnel customers` (summary, cohorts, RFM/LFRM).

- Customers' orders come from `customers` (migration 0006): one row per (site, user_id) holding
  the set of the customer's order rows, kept up to date from `orders` by a materialised view
  and kept beyond the orders TTL; orders without a user_id (guest orders, returned apart) from
  `orders`.
- Orders: one per (site, order_id), its earliest row, counted when that row is before `as_of`;
  so every as-of, past or now, is answered exactly from the same state.
- First order: a customer's earliest order (the same instant `customer_first_orders` keeps).
- Loyalty: distinct sessions with a funnel stage entry carrying the user_id in the
  `loyalty_days` before `as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.report_queries import ceil_ms

DEFAULT_LOYALTY_DAYS = 90


@dataclass(frozen=True, slots=True)
class CustomersQuery:
    site_id: str
    as_of: datetime  # exclusive
    loyalty_days: int = DEFAULT_LOYALTY_DAYS

    def __post_init__(self) -> None:
        if not self.site_id:
            raise ValueError("site must not be empty")
        if self.as_of.utcoffset() is None:
            raise ValueError("as-of must carry a UTC offset")
        if self.loyalty_days < 1:
            raise ValueError("loyalty days must be at least 1")


@dataclass(slots=True)
class Customer:
    user_id: str
    first_order_ms: int
    last_order_ms: int
    orders: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)  # currency -> exact sum
    orders_by_currency: dict[str, int] = field(default_factory=dict)
    order_times_ms: list[int] = field(default_factory=list)  # sorted
    loyalty_sessions: int = 0


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    customers: dict[str, Customer]
    guest_orders: dict[str, tuple[int, Decimal]]  # currency -> (orders, revenue)


def query_customers(client: Client, database: str, query: CustomersQuery) -> CustomerFacts:
    params: dict[str, Any] = {
        "site": query.site_id,
        "as_of_ms": ceil_ms(query.as_of),
        "loyalty_ms": query.loyalty_days * 86_400_000,
    }
    # The earliest row of each order, over the customers' order sets and the guests' orders.
    orders = client.query(
        "SELECT user_id, currency, toUnixTimestamp64Milli(at), toString(value) FROM ("
        "  SELECT min(placed) AS at, argMin(amount, placed) AS value,"
        "    argMin(cur, placed) AS currency, argMin(uid, placed) AS user_id FROM ("
        "    SELECT user_id AS uid, row.1 AS order_id, row.2 AS placed, row.3 AS cur,"
        "      row.4 AS amount"
        "    FROM (SELECT user_id, groupUniqArrayMerge(orders) AS rows"
        f"      FROM {database}.customers WHERE site_id = {{site:String}} GROUP BY user_id)"
        "    ARRAY JOIN rows AS row"
        "    UNION ALL"
        "    SELECT '', order_id, occurred_at, toString(currency), value"
        f"    FROM {database}.orders WHERE site_id = {{site:String}} AND user_id = ''"
        "  ) GROUP BY order_id"
        ") WHERE at < fromUnixTimestamp64Milli({as_of_ms:Int64}, 'UTC') ORDER BY user_id, at",
        parameters=params,
    ).result_rows
    loyalty: dict[str, int] = {
        user: sessions
        for user, sessions in client.query(
            f"SELECT user_id, uniqExact(session_id, session_start) FROM {database}.stage_entries"
            " WHERE site_id = {site:String} AND user_id != ''"
            "   AND reached_at >= fromUnixTimestamp64Milli({as_of_ms:Int64} - {loyalty_ms:Int64},"
            "     'UTC')"
            "   AND reached_at < fromUnixTimestamp64Milli({as_of_ms:Int64}, 'UTC')"
            " GROUP BY user_id",
            parameters=params,
        ).result_rows
    }
    customers: dict[str, Customer] = {}
    guests: dict[str, tuple[int, Decimal]] = {}
    for user_id, currency, at_ms, value in orders:
        amount = Decimal(value)
        if not user_id:
            count, total = guests.get(currency, (0, Decimal(0)))
            guests[currency] = (count + 1, total + amount)
            continue
        customer = customers.get(user_id)
        if customer is None:  # rows come by user, earliest first
            customer = customers[user_id] = Customer(user_id, at_ms, at_ms)
            customer.loyalty_sessions = loyalty.get(user_id, 0)
        customer.orders += 1
        customer.last_order_ms = max(customer.last_order_ms, at_ms)
        customer.order_times_ms.append(at_ms)
        customer.revenue[currency] = customer.revenue.get(currency, Decimal(0)) + amount
        customer.orders_by_currency[currency] = customer.orders_by_currency.get(currency, 0) + 1
    return CustomerFacts(customers, guests)
