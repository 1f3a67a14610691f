"""Minute windows of facts and the bounded-cardinality rule."""

from decimal import Decimal

import pytest

from streams.funnel.counters import OTHER, CartCounts, DimLimiter, MinuteCounters
from streams.funnel.facts import CartChanged, CartStatus, Dims, OrderPlaced, Stage, StageReached

M = 60_000
T0 = 1_700_000_040_000  # a minute boundary
NO_DIMS = Dims()


def stage(
    at: int, s: Stage = Stage.PAGE_VIEW, dims: Dims = NO_DIMS, site: str = "s1"
) -> StageReached:
    return StageReached(site, "x", None, dims, s, at)


def order(at: int, value: str, currency: str | None = "EUR") -> OrderPlaced:
    return OrderPlaced("s1", "x", None, Dims(), "o", at, Decimal(value), currency, 1, True)


def cart(
    status: CartStatus, opened: int, closed: int | None, recovered: int | None = None
) -> CartChanged:
    return CartChanged(
        "s1", "x", None, Dims(), 1, status, opened, closed, recovered, Decimal(0), None, (),
        Stage.ADD_TO_CART,
    )  # fmt: skip


def test_stage_entries_count_in_the_window_of_their_own_time() -> None:
    counters = MinuteCounters()
    for at in (T0, T0 + M - 1, T0 + M):
        counters.add(stage(at))
    counters.add(stage(T0 + 5, Stage.ADD_TO_CART))
    rows = counters.drain(T0 + 2 * M)
    assert sorted((r.window_start_ms, r.stage, r.entries) for r in rows.stages) == [
        (T0, Stage.PAGE_VIEW, 2),
        (T0, Stage.ADD_TO_CART, 1),
        (T0 + M, Stage.PAGE_VIEW, 1),
    ]


def test_drain_returns_only_complete_windows_once() -> None:
    counters = MinuteCounters()
    counters.add(stage(T0))
    counters.add(stage(T0 + M))
    assert counters.drain(T0 + M - 1).stages == ()
    assert [r.window_start_ms for r in counters.drain(T0 + M).stages] == [T0]
    assert counters.drain(T0 + M).stages == ()
    assert [r.window_start_ms for r in counters.drain(T0 + 10 * M).stages] == [T0 + M]


def test_window_size_is_configurable() -> None:
    counters = MinuteCounters(window_ms=10 * M)
    counters.add(stage(T0 + 9 * M))
    assert [r.window_start_ms for r in counters.drain(T0 + 20 * M).stages] == [
        T0 + 6 * M
    ]  # T0 is 4 min past a 10-min boundary


def test_orders_and_revenue_per_currency() -> None:
    counters = MinuteCounters()
    for value, currency in [("1.10", "EUR"), ("2.20", "EUR"), ("5", "USD"), ("7", None)]:
        counters.add(order(T0, value, currency))
    rows = {r.currency: (r.orders, r.revenue) for r in counters.drain(T0 + M).orders}
    assert rows == {"EUR": (2, Decimal("3.30")), "USD": (1, Decimal(5)), None: (1, Decimal(7))}


def test_cart_transitions_count_at_their_own_time() -> None:
    counters = MinuteCounters()
    counters.add(cart(CartStatus.OPEN, T0, None))
    counters.add(cart(CartStatus.ABANDONED, T0, T0 + M))
    counters.add(cart(CartStatus.RECOVERED, T0, T0 + M, T0 + 2 * M))
    counters.add(cart(CartStatus.CONVERTED, T0, T0 + 5))
    rows = sorted(counters.drain(T0 + 3 * M).carts, key=lambda r: r.window_start_ms)
    assert rows == [
        CartCounts(T0, "s1", Dims(), opened=1, converted=1, abandoned=0, recovered=0),
        CartCounts(T0 + M, "s1", Dims(), opened=0, converted=0, abandoned=1, recovered=0),
        CartCounts(T0 + 2 * M, "s1", Dims(), opened=0, converted=0, abandoned=0, recovered=1),
    ]


def test_first_n_values_per_dimension_then_other() -> None:
    limiter = DimLimiter(max_values=2)
    assert limiter.bucket(Dims(utm_source="a", country="DE")) == Dims(utm_source="a", country="DE")
    assert limiter.bucket(Dims(utm_source="b", country="FR")).utm_source == "b"
    assert limiter.bucket(Dims(utm_source="c", country="DE")) == Dims(
        utm_source=OTHER, country="DE"
    )
    assert limiter.bucket(Dims(utm_source="a")) == Dims(utm_source="a")  # still known
    assert limiter.bucket(Dims()) == Dims()  # unknown values never take a slot


def test_counters_apply_the_cardinality_rule() -> None:
    counters = MinuteCounters(max_dim_values=1)
    counters.add(stage(T0, dims=Dims(variant="A")))
    counters.add(stage(T0, dims=Dims(variant="B")))
    counters.add(stage(T0, dims=Dims(variant="C")))
    rows = {r.dims.variant: r.entries for r in counters.drain(T0 + M).stages}
    assert rows == {"A": 1, OTHER: 2}


@pytest.mark.parametrize("kwargs", [{"window_ms": 0}, {"max_dim_values": 0}])
def test_bad_settings_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        MinuteCounters(**kwargs)
