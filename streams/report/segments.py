"""RFM and LFRM scores and the segments marketing acts on.

Scores run 1..5 by ranked quintiles over the site's customers as of T: customers are ordered by
the measure, ties broken by user_id, and the i-th of n (from 0) scores 1 + floor(5 i / n), so
the result never depends on row order. Recency ranks the other way (most recent scores 5).
R = days since the last order; F = orders; M = revenue (sum over currencies: a rank, not a
money figure); L (loyalty) = distinct sessions with activity in the loyalty window.

Fixed thresholds replace the quintiles of any dimension (`ScoreBounds`, `--thresholds
f=2,3,5,8`): four ascending cut points c1..c4; F, M and L score 1 + the number of cuts <= the
value, R scores 5 - the number of cuts <= the days (so r=7,30,90,180 gives 5 under a week).

Segments, first matching rule wins (so every customer is in exactly one):
  champions R>=4 F>=4 | loyal R>=3 F>=3 | new R>=4 F=1 | potential_loyalists R>=3 |
  cant_lose R<=2 F>=4 | at_risk R=2 F>=2 | hibernating R=2, or R=1 F>=2 | lost (the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

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
DIMENSIONS = ("r", "f", "m", "l")


@dataclass(frozen=True, slots=True)
class ScoreBounds:
    """Fixed cut points per dimension; a dimension without them is scored by quintiles."""

    cuts: dict[str, tuple[Decimal, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for dim, cuts in self.cuts.items():
            if dim not in DIMENSIONS:
                raise ValueError(f"thresholds: unknown score {dim!r}, expected r, f, m or l")
            if len(cuts) != 4 or any(c < 0 for c in cuts) or list(cuts) != sorted(set(cuts)):
                raise ValueError(
                    f"thresholds {dim}: four ascending non-negative cut points, e.g. {dim}=1,2,3,4"
                )

    @classmethod
    def parse(cls, text: str) -> ScoreBounds:
        """`r=7,30,90,180;f=2,3,5,8` (any of r, f, m, l; empty = quintiles everywhere)."""
        cuts: dict[str, tuple[Decimal, ...]] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            dim, sep, values = part.partition("=")
            dim = dim.strip().lower()
            if not sep or dim in cuts:
                raise ValueError(f"thresholds: {part!r} is not DIM=C1,C2,C3,C4 (once per DIM)")
            try:
                cuts[dim] = tuple(Decimal(v.strip()) for v in values.split(","))
            except InvalidOperation as exc:
                raise ValueError(f"thresholds {dim}: {values!r} are not numbers") from exc
        return cls(cuts)

    def as_text(self) -> str:
        return ";".join(
            f"{dim}={','.join(str(c) for c in self.cuts[dim])}"
            for dim in DIMENSIONS
            if dim in self.cuts
        )

    def scores(self, dim: str, values: dict[str, Decimal | int]) -> dict[str, int]:
        cuts = self.cuts.get(dim)
        if cuts is None:
            return quintiles(values, higher_is_better=dim != "r")
        above = {uid: sum(1 for c in cuts if v >= c) for uid, v in values.items()}
        return {uid: 5 - n if dim == "r" else 1 + n for uid, n in above.items()}


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


def score(
    customers: Sequence[Customer], as_of: datetime, bounds: ScoreBounds | None = None
) -> list[Scored]:
    bounds = bounds or ScoreBounds()
    end_ms = int(as_of.astimezone(UTC).timestamp() * 1000)
    recency = {c.user_id: (end_ms - c.last_order_ms) // DAY_MS for c in customers}
    monetary = {c.user_id: sum(c.revenue.values(), Decimal(0)) for c in customers}
    r = bounds.scores("r", dict(recency))
    f = bounds.scores("f", {c.user_id: c.orders for c in customers})
    m = bounds.scores("m", dict(monetary))
    loyalty = bounds.scores("l", {c.user_id: c.loyalty_sessions for c in customers})
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
