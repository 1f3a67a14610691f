"""The report's numbers computed the obvious way, in Python, from the reference funnel's facts.

Independent of the SQL on purpose: it shares only the fact types and the definitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from streams.funnel.facts import CartChanged, CartStatus, Dims, OrderPlaced, Stage, StageReached
from tests.unit.funnel.reference import Expected

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The keys every report (and every breakdown entry, late/invalid aside) must get right.
FUNNEL_KEYS = (
    "stages", "orders", "revenue", "aov", "carts_opened", "carts_abandoned", "carts_recovered",
)  # fmt: skip
REPORT_KEYS = ("site_id", *FUNNEL_KEYS, "late_events", "invalid_events")


@dataclass(frozen=True)
class World:
    """Everything that happened: final facts, late events (site, occurred ms), rejections."""

    facts: Expected
    late: tuple[tuple[str, str, int], ...]  # site, event_id, occurred_at_ms
    rejected_at_ms: tuple[int, ...]


def instant(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def cents(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def earliest_orders(orders: Iterable[OrderPlaced]) -> list[OrderPlaced]:
    """One order per (site, order id): its earliest occurrence."""
    first: dict[tuple[str, str], OrderPlaced] = {}
    for order in sorted(orders, key=lambda o: (o.occurred_at_ms, o.session_id)):
        first.setdefault((order.site_id, order.order_id), order)
    return list(first.values())


def final_carts(carts: Iterable[CartChanged]) -> list[CartChanged]:
    """Each cart's last transition (status only grows along a cart's life)."""
    last: dict[tuple[str, str, int], CartChanged] = {}
    for cart in sorted(carts, key=lambda c: c.status):
        last[cart.site_id, cart.session_id, cart.cart_seq] = cart
    return list(last.values())


def funnel(
    facts: Expected, site: str, lo: datetime, hi: datetime, keep: Callable[[Dims], bool]
) -> dict[str, Any]:
    def counted(site_id: str, ms: int, dims: Dims) -> bool:
        return site_id == site and lo <= instant(ms) < hi and keep(dims)

    stages: list[StageReached] = [
        s for s in facts.stages if counted(s.site_id, s.reached_at_ms, s.dims)
    ]
    orders = [
        o for o in earliest_orders(facts.orders) if counted(o.site_id, o.occurred_at_ms, o.dims)
    ]
    carts = [c for c in final_carts(facts.carts) if counted(c.site_id, c.opened_at_ms, c.dims)]
    revenue: dict[str, Decimal] = {}
    count: dict[str, int] = {}
    for o in orders:
        currency = o.currency or "(none)"
        revenue[currency] = revenue.get(currency, Decimal(0)) + o.value
        count[currency] = count.get(currency, 0) + 1
    abandoned = {CartStatus.ABANDONED, CartStatus.RECOVERED}
    return {
        "stages": [
            {
                "stage": stage.name.lower(),
                "sessions": len({s.session_id for s in stages if s.stage is stage}),
            }
            for stage in Stage
        ],
        "orders": len(orders),
        "revenue": {c: cents(v) for c, v in revenue.items()},
        "aov": {c: cents(v / count[c]) for c, v in revenue.items()},
        "carts_opened": len(carts),
        "carts_abandoned": sum(1 for c in carts if c.status in abandoned),
        "carts_recovered": sum(1 for c in carts if c.status is CartStatus.RECOVERED),
    }


def expected_report(
    world: World, site: str, lo: datetime, hi: datetime, by: str | None = None
) -> dict[str, Any]:
    report = {"site_id": site} | funnel(world.facts, site, lo, hi, lambda _: True)
    report["late_events"] = sum(
        1 for s, _, ms in world.late if s == site and lo <= instant(ms) < hi
    )
    report["invalid_events"] = sum(1 for ms in world.rejected_at_ms if lo <= instant(ms) < hi)
    if by is not None:
        report["breakdown"] = {
            value or "(none)": funnel(world.facts, site, lo, hi, _has(by, value))
            for value in _values(world.facts, site, lo, hi, by)
        }
    return report


def _has(by: str, value: str) -> Callable[[Dims], bool]:
    return lambda dims: (getattr(dims, by) or "") == value


def _values(facts: Expected, site: str, lo: datetime, hi: datetime, by: str) -> set[str]:
    """Dimension values with anything in the range: a stage reached, an order or a cart opened."""
    timed = [(s.site_id, s.reached_at_ms, s.dims) for s in facts.stages]
    timed += [(o.site_id, o.occurred_at_ms, o.dims) for o in earliest_orders(facts.orders)]
    timed += [(c.site_id, c.opened_at_ms, c.dims) for c in facts.carts]
    return {
        getattr(dims, by) or "" for s, ms, dims in timed if s == site and lo <= instant(ms) < hi
    }


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The part of an actual JSON report the reference computes; breakdown keyed by value."""
    shown = {key: report[key] for key in REPORT_KEYS}
    if "breakdown" in report:
        shown["breakdown"] = {
            entry["key"]: {key: entry[key] for key in FUNNEL_KEYS} for entry in report["breakdown"]
        }
    return shown
