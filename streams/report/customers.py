"""`funnel customers`: the summary, predictive CLV and retention cohorts, from per-customer facts.

Pure: facts come from `sinks.customer_queries`, time with the request. Figures are over
customers' orders (a customer is a user_id); guest orders are counted apart. Money is per
currency, exact until shown: revenue, AOV = revenue / orders, historical CLV = revenue /
customers who bought in that currency, clv_to_aov = historical CLV / AOV.

Predictive CLV = AOV x yearly purchase frequency x expected lifetime (years), where, over the
year before `as_of`: frequency = customer orders / customers who ordered; churn = share of the
customers who had ordered before that year and did not order in it; lifetime = 1 / churn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from sinks.customer_queries import (
    DEFAULT_LOYALTY_DAYS,
    Customer,
    CustomerFacts,
    CustomersQuery,
)
from streams.report.numbers import parse_instant, require
from streams.report.segments import SEGMENTS, ScoreBounds

YEAR_MS = 365 * 86_400_000
CLV_FORMULA = "predictive_clv = aov * yearly_frequency * lifetime_years; lifetime = 1 / churn"
DEFAULT_PERIODS = 12


def divide(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    with localcontext() as context:
        context.prec = 60
        return Decimal(part) / Decimal(whole)


@dataclass(frozen=True, slots=True)
class CustomersRequest:
    query: CustomersQuery
    cohorts: str | None = None  # month or week
    periods: int = DEFAULT_PERIODS
    segments: bool = False
    segment: str | None = None  # with csv: export this segment
    as_json: bool = False
    as_csv: bool = False
    bounds: ScoreBounds = field(default_factory=ScoreBounds)  # RFM/LFRM score thresholds

    def __post_init__(self) -> None:
        if self.cohorts not in (None, "month", "week"):
            raise ValueError("cohorts must be month or week")
        if self.periods < 1:
            raise ValueError("periods must be at least 1")
        if self.as_csv and self.segment is None:
            raise ValueError("--csv exports a segment: add --segment NAME")
        if self.segment is not None and self.segment not in SEGMENTS:
            raise ValueError(f"segment must be one of {', '.join(SEGMENTS)}")

    def as_params(self) -> dict[str, str]:
        """URL query parameters for the worker's /customers endpoint."""
        q = self.query
        params = {"site": q.site_id, "as_of": q.as_of.isoformat()}
        params |= {"loyalty_days": str(q.loyalty_days), "periods": str(self.periods)}
        params |= {"cohorts": self.cohorts} if self.cohorts else {}
        params |= {"segments": "1"} if self.segments else {}
        params |= {"segment": self.segment} if self.segment else {}
        params |= {"thresholds": self.bounds.as_text()} if self.bounds.cuts else {}
        output = "csv" if self.as_csv else "json" if self.as_json else "table"
        return params | {"format": output}

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> CustomersRequest:
        """The inverse of `as_params`; ValueError names what is missing or wrong."""
        require(params, "site", "as_of")
        output = params.get("format", "table")
        if output not in ("json", "table", "csv"):
            raise ValueError("format must be json, table or csv")
        query = CustomersQuery(
            params["site"],
            parse_instant(params["as_of"]),
            int(params.get("loyalty_days", DEFAULT_LOYALTY_DAYS)),
        )
        return cls(
            query,
            params.get("cohorts") or None,
            int(params.get("periods", DEFAULT_PERIODS)),
            params.get("segments") == "1",
            params.get("segment") or None,
            as_json=output == "json",
            as_csv=output == "csv",
            bounds=ScoreBounds.parse(params.get("thresholds", "")),
        )


def summary(facts: CustomerFacts, as_of: datetime) -> dict[str, Any]:
    customers = list(facts.customers.values())
    orders = sum(c.orders for c in customers)
    repeat = sum(1 for c in customers if c.orders >= 2)
    revenue: dict[str, Decimal] = {}
    orders_in: dict[str, int] = {}
    buyers_in: dict[str, int] = {}
    for c in customers:
        for currency, amount in c.revenue.items():
            revenue[currency] = revenue.get(currency, Decimal(0)) + amount
            orders_in[currency] = orders_in.get(currency, 0) + c.orders_by_currency[currency]
            buyers_in[currency] = buyers_in.get(currency, 0) + 1
    aov = {cur: divide(revenue[cur], orders_in[cur]) for cur in sorted(revenue)}
    clv = {cur: divide(revenue[cur], buyers_in[cur]) for cur in sorted(revenue)}
    return {
        "customers": len(customers),
        "guest_orders": sum(n for n, _ in facts.guest_orders.values()),
        "repeat_customers": repeat,
        "repeat_purchase_rate": _float(divide(repeat, len(customers))),
        "orders_per_customer": _float(divide(orders, len(customers))),
        "revenue": {cur: revenue[cur] for cur in sorted(revenue)},
        "aov": aov,
        "historical_clv": clv,
        "clv_to_aov": {cur: _div_opt(clv[cur], aov[cur]) for cur in sorted(revenue)},
        "predictive_clv": predictive_clv(customers, aov, as_of),
    }


def predictive_clv(
    customers: list[Customer], aov: dict[str, Decimal | None], as_of: datetime
) -> dict[str, Any]:
    end = _ms(as_of)
    year_start = end - YEAR_MS
    in_year = [sum(1 for t in c.order_times_ms if t >= year_start) for c in customers]
    active = sum(1 for n in in_year if n)
    frequency = divide(sum(in_year), active)
    before = [c.first_order_ms < year_start for c in customers]
    churned = sum(1 for old, n in zip(before, in_year, strict=True) if old and not n)
    churn = divide(churned, sum(before))
    lifetime = None if churn is None else divide(1, churn) if churn else None
    value = {
        cur: None
        if a is None or frequency is None or lifetime is None
        else a * frequency * lifetime
        for cur, a in aov.items()
    }
    return {
        "formula": CLV_FORMULA,
        "inputs": {
            "aov": aov, "yearly_frequency": _float(frequency),
            "customers_ordering_in_year": active, "customers_before_year": sum(before),
            "churned": churned, "yearly_churn": _float(churn),
            "lifetime_years": _float(lifetime),
        },
        "value": value,
    }  # fmt: skip


def cohorts(facts: CustomerFacts, as_of: datetime, period: str, periods: int) -> list[Any]:
    """Per cohort (period of the first order: YYYY-MM, or a week's Monday): size and, for
    +1..+periods, the share of the cohort who ordered in that period; None for a period not
    yet begun at `as_of`."""
    groups: dict[date, list[Customer]] = {}
    for c in facts.customers.values():
        groups.setdefault(period_start(c.first_order_ms, period), []).append(c)
    rows = []
    for start in sorted(groups):
        members = groups[start]
        shares: list[float | None] = []
        for k in range(1, periods + 1):
            lo = shift(start, period, k)
            if _ms(datetime.combine(lo, datetime.min.time(), UTC)) >= _ms(as_of):
                shares.append(None)
                continue
            hi = shift(start, period, k + 1)
            came_back = sum(1 for c in members if any(lo <= _day(t) < hi for t in c.order_times_ms))
            shares.append(came_back / len(members))
        label = start.isoformat()[:7] if period == "month" else start.isoformat()
        rows.append({"cohort": label, "size": len(members), "retention": shares})
    return rows


def period_start(at_ms: int, period: str) -> date:
    day = _day(at_ms)
    if period == "month":
        return day.replace(day=1)
    return day - timedelta(days=day.weekday())  # ISO weeks start on Monday


def shift(start: date, period: str, k: int) -> date:
    if period == "week":
        return start + timedelta(weeks=k)
    months = start.month - 1 + k
    return date(start.year + months // 12, months % 12 + 1, 1)


def _day(at_ms: int) -> date:
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).date()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _div_opt(part: Decimal | None, whole: Decimal | None) -> float | None:
    return None if part is None or whole is None else _float(divide(part, whole))
