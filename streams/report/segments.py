"""RFM and LFRM scores and the segments marketing acts on.

Scores run 1..5 by ranked quintiles over the site's customers as of T: customers are ordered by
the measure, ties broken by user_id, and the i-th of n (from 0) scores 1 + floor(5 i / n), so
the result never depends on row order. Recency ranks the other way (most recent scores 5).
R = days since the last order; F = orders; M = revenue (sum over currencies: a rank, not a
money figure); L (loyalty) = distinct sessions with activity in the loyalty window.

Segments, first matching rule wins (so every customer is in exactly one):
  champions R>=4 F>=4 | loyal R>=3 F>=3 | new R>=4 F=1 | potential_loyalists R>=3 |
  cant_lose R<=2 F>=4 | at_risk R=2 F>=2 | hibernating R=2, or R=1 F>=2 | lost (the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sinks.customer_queries import Customer

DAY_MS = 86_400_000
SEGMENT_RULES: tuple[tuple[str, Callable[[int, int], bool]], ...] = (
    ("champions", lambda r, f: r >= 4 and f >= 4),
    ("loyal", lambda r, f: r >= 3 and f >= 3),
    ("new", lambda r, f: r >= 4 and f == 1),
    ("potential_loyalists", lambda r, _: r >= 3),
    ("cant_lose", lambda r, f: f >= 4),
    ("at_risk", lambda r, f: r == 2 and f >= 2),
    ("hibernating", lambda r, f: r == 2 or f >= 2),
    ("lost", lambda _r, _f: True),
)
SEGMENTS = tuple(name for name, _ in SEGMENT_RULES)


@dataclass(frozen=True, slots=True)
class Scored:
    customer: Customer
    recency_days: int
    monetary: Decimal
    r: int
    f: int
    m: int
    loyalty: int  # L score
    segment: str


def quintiles(values: dict[str, Decimal | int], *, higher_is_better: bool = True) -> dict[str, int]:
    order = sorted(values, key=lambda uid: (values[uid], uid))
    if not higher_is_better:
        order = sorted(values, key=lambda uid: (-values[uid], uid))
    n = len(order)
    return {uid: 1 + (5 * i) // n for i, uid in enumerate(order)}


def segment_of(r: int, f: int) -> str:
    return next(name for name, rule in SEGMENT_RULES if rule(r, f))


def score(customers: Sequence[Customer], as_of: datetime) -> list[Scored]:
    end_ms = int(as_of.astimezone(UTC).timestamp() * 1000)
    recency = {c.user_id: (end_ms - c.last_order_ms) // DAY_MS for c in customers}
    monetary = {c.user_id: sum(c.revenue.values(), Decimal(0)) for c in customers}
    r = quintiles(dict(recency), higher_is_better=False)
    f = quintiles({c.user_id: c.orders for c in customers})
    m = quintiles(dict(monetary))
    loyalty = quintiles({c.user_id: c.loyalty_sessions for c in customers})
    return [
        Scored(
            c,
            recency[c.user_id],
            monetary[c.user_id],
            r[c.user_id],
            f[c.user_id],
            m[c.user_id],
            loyalty[c.user_id],
            segment_of(r[c.user_id], f[c.user_id]),
        )
        for c in sorted(customers, key=lambda c: c.user_id)
    ]
