"""Per-window counts of funnel facts, for the minute tables and dashboards.

Each fact counts in the tumbling window (default 60 s) of its OWN event time: a stage entry at
reached_at, an order at occurred_at, a cart transition at opened_at (OPEN), closed_at (CONVERTED,
ABANDONED) or recovered_at (RECOVERED). Facts are final when emitted, so a window is complete once
the caller's bound (watermark - lateness) reaches its end; ``drain`` hands those out.

Cardinality is bounded per dimension: the first ``max_dim_values`` distinct values seen of each
dimension keep their name, later ones are counted as "other". None (unknown) never uses a slot.
The remembered values live in memory only, so after a restart "the first N" starts again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from decimal import Decimal

from streams.funnel.facts import CartChanged, CartStatus, Dims, Fact, OrderPlaced, Stage

OTHER = "other"
_DIM_NAMES = tuple(f.name for f in fields(Dims))
# Order of CartCounts' counters.
_CART_SLOT = {
    CartStatus.OPEN: 0,
    CartStatus.CONVERTED: 1,
    CartStatus.ABANDONED: 2,
    CartStatus.RECOVERED: 3,
}


class DimLimiter:
    """Keeps the first N distinct values of each dimension; maps later ones to OTHER."""

    def __init__(self, max_values: int = 50) -> None:
        if max_values < 1:
            raise ValueError(f"max_values must be >= 1, got {max_values}")
        self._max = max_values
        self._known: dict[str, set[str]] = {name: set() for name in _DIM_NAMES}

    def bucket(self, dims: Dims) -> Dims:
        changes: dict[str, str] = {}
        for name in _DIM_NAMES:
            value = getattr(dims, name)
            if value is None:
                continue
            known = self._known[name]
            if value not in known:
                if len(known) < self._max:
                    known.add(value)
                else:
                    changes[name] = OTHER
        return replace(dims, **changes) if changes else dims


@dataclass(frozen=True, slots=True)
class StageCount:
    window_start_ms: int
    site_id: str
    stage: Stage
    dims: Dims
    entries: int


@dataclass(frozen=True, slots=True)
class OrderTotals:
    window_start_ms: int
    site_id: str
    dims: Dims
    currency: str | None
    orders: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class CartCounts:
    window_start_ms: int
    site_id: str
    dims: Dims
    opened: int
    converted: int
    abandoned: int
    recovered: int


@dataclass(frozen=True, slots=True)
class WindowRows:
    stages: tuple[StageCount, ...] = ()
    orders: tuple[OrderTotals, ...] = ()
    carts: tuple[CartCounts, ...] = ()


@dataclass(slots=True)
class _Window:
    stages: dict[tuple[str, Stage, Dims], int] = field(default_factory=dict)
    orders: dict[tuple[str, Dims, str | None], tuple[int, Decimal]] = field(default_factory=dict)
    carts: dict[tuple[str, Dims], list[int]] = field(default_factory=dict)


class MinuteCounters:
    def __init__(self, window_ms: int = 60_000, max_dim_values: int = 50) -> None:
        if window_ms < 1:
            raise ValueError(f"window_ms must be >= 1, got {window_ms}")
        self.window_ms = window_ms
        self._limiter = DimLimiter(max_dim_values)
        self._windows: dict[int, _Window] = {}

    def add(self, fact: Fact) -> None:
        dims = self._limiter.bucket(fact.dims)
        if isinstance(fact, OrderPlaced):
            key = (fact.site_id, dims, fact.currency)
            window = self._window(fact.occurred_at_ms)
            orders, revenue = window.orders.get(key, (0, Decimal(0)))
            window.orders[key] = (orders + 1, revenue + fact.value)
        elif isinstance(fact, CartChanged):
            counts = self._window(_cart_time(fact)).carts.setdefault((fact.site_id, dims), [0] * 4)
            counts[_CART_SLOT[fact.status]] += 1
        else:
            stages = self._window(fact.reached_at_ms).stages
            key_s = (fact.site_id, fact.stage, dims)
            stages[key_s] = stages.get(key_s, 0) + 1

    def drain(self, bound_ms: int) -> WindowRows:
        """Remove and return every window that ends at or before ``bound_ms``."""
        done = sorted(s for s in self._windows if s + self.window_ms <= bound_ms)
        stages: list[StageCount] = []
        orders: list[OrderTotals] = []
        carts: list[CartCounts] = []
        for start in done:
            w = self._windows.pop(start)
            stages += (StageCount(start, s, st, d, n) for (s, st, d), n in w.stages.items())
            orders += (OrderTotals(start, s, d, c, n, v) for (s, d, c), (n, v) in w.orders.items())
            carts += (CartCounts(start, s, d, *counts) for (s, d), counts in w.carts.items())
        return WindowRows(tuple(stages), tuple(orders), tuple(carts))

    def _window(self, t_ms: int) -> _Window:
        start = t_ms - t_ms % self.window_ms
        window = self._windows.get(start)
        if window is None:
            window = self._windows[start] = _Window()
        return window


def _cart_time(fact: CartChanged) -> int:
    if fact.status is CartStatus.OPEN:
        return fact.opened_at_ms
    if fact.status is CartStatus.RECOVERED and fact.recovered_at_ms is not None:
        return fact.recovered_at_ms
    if fact.closed_at_ms is not None:
        return fact.closed_at_ms
    raise ValueError(f"{fact.status.name} cart row without its transition time: {fact!r}")
