"""Cart lifecycle: open, converted, abandoned (timing), recovered, new carts, value."""

from collections.abc import Sequence
from decimal import Decimal

from schemas.event import Event
from streams.funnel.facts import CartStatus, Stage
from tests.unit.funnel.builders import (
    ADD,
    BUY,
    CHECKOUT,
    PV,
    REMOVE,
    RULES,
    T0,
    ev,
    item,
    run,
)
from tests.unit.funnel.builders import carts as cart_rows

T = RULES.abandonment_ms


def statuses(events: Sequence[Event]) -> list[tuple[int, CartStatus, int | None]]:
    return [(c.cart_seq, c.status, c.closed_at_ms) for c in cart_rows(run(events))]


def test_cart_opens_and_converts() -> None:
    rows = cart_rows(
        run([ev(ADD, T0, items=(item("a", 2, "5"),), currency="EUR"), ev(BUY, T0 + 100)])
    )
    assert [(r.status, r.closed_at_ms, r.value, r.currency) for r in rows] == [
        (CartStatus.OPEN, None, Decimal(10), "EUR"),
        (CartStatus.CONVERTED, T0 + 100, Decimal(10), "EUR"),
    ]
    assert [r.last_stage for r in rows] == [Stage.ADD_TO_CART, Stage.PURCHASE]
    assert {r.opened_at_ms for r in rows} == {T0}


def test_abandoned_at_last_activity_plus_timeout() -> None:
    assert statuses([ev(ADD, T0), ev(ADD, T0 + 60_000)]) == [
        (1, CartStatus.OPEN, None),
        (1, CartStatus.ABANDONED, T0 + 60_000 + T),
    ]


def test_event_exactly_at_deadline_comes_after_the_abandonment() -> None:
    assert statuses([ev(ADD, T0), ev(ADD, T0 + T)]) == [
        (1, CartStatus.OPEN, None),
        (1, CartStatus.ABANDONED, T0 + T),
        (2, CartStatus.OPEN, None),
        (2, CartStatus.ABANDONED, T0 + 2 * T),
    ]


def test_activity_just_before_deadline_keeps_the_cart() -> None:
    assert statuses([ev(ADD, T0), ev(ADD, T0 + T - 1), ev(BUY, T0 + 2 * T - 2)]) == [
        (1, CartStatus.OPEN, None),
        (1, CartStatus.CONVERTED, T0 + 2 * T - 2),
    ]


def test_checkout_resets_the_timeout_and_marks_last_stage() -> None:
    rows = cart_rows(run([ev(ADD, T0), ev(CHECKOUT, T0 + T - 1)]))
    assert rows[-1].status is CartStatus.ABANDONED
    assert rows[-1].closed_at_ms == T0 + 2 * T - 1
    assert rows[-1].last_stage is Stage.CHECKOUT


def test_remove_and_page_view_do_not_reset_the_timeout() -> None:
    rows = cart_rows(
        run(
            [
                ev(ADD, T0, items=(item("a", 3),)),
                ev(REMOVE, T0 + 10, items=(item("a"),)),
                ev(PV, T0 + 20),
            ]
        )
    )
    assert rows[-1].closed_at_ms == T0 + T


def test_remove_from_cart_adjusts_items_and_value_floored_at_zero() -> None:
    rows = cart_rows(
        run(
            [
                ev(ADD, T0, items=(item("a", 2, "3"), item("b", 1, "4"))),
                ev(REMOVE, T0 + 1, items=(item("a", 1, "999"),)),  # the cart's price counts
                ev(REMOVE, T0 + 2, items=(item("b", 5),)),
                ev(REMOVE, T0 + 3, items=(item("zzz"),)),  # unknown sku: ignored
                ev(BUY, T0 + 4),
            ]
        )
    )
    final = rows[-1]
    assert final.status is CartStatus.CONVERTED
    assert [(i.sku, i.quantity) for i in final.items] == [("a", 1)]
    assert final.value == Decimal(3)


def test_item_less_events_use_their_value() -> None:
    rows = cart_rows(
        run(
            [
                ev(ADD, T0, value=Decimal("20")),
                ev(REMOVE, T0 + 1, value=Decimal("50")),
                ev(ADD, T0 + 2, value=Decimal("7.5")),
                ev(BUY, T0 + 3),
            ]
        )
    )
    assert rows[0].value == Decimal(20)
    assert rows[-1].value == Decimal("7.5")


def test_purchase_after_abandonment_recovers_the_cart() -> None:
    rows = cart_rows(run([ev(ADD, T0), ev(PV, T0 + T + 5), ev(BUY, T0 + 2 * T, order_id="o")]))
    assert [(r.status, r.closed_at_ms, r.recovered_at_ms) for r in rows] == [
        (CartStatus.OPEN, None, None),
        (CartStatus.ABANDONED, T0 + T, None),
        (CartStatus.RECOVERED, T0 + T, T0 + 2 * T),
    ]
    assert rows[-1].last_stage is Stage.PURCHASE


def test_purchase_after_a_new_cart_converts_it_not_recovers_the_old_one() -> None:
    assert statuses([ev(ADD, T0), ev(ADD, T0 + 2 * T), ev(BUY, T0 + 2 * T + 1)]) == [
        (1, CartStatus.OPEN, None),
        (1, CartStatus.ABANDONED, T0 + T),
        (2, CartStatus.OPEN, None),
        (2, CartStatus.CONVERTED, T0 + 2 * T + 1),
    ]


def test_add_after_conversion_opens_a_new_cart_and_recovery_happens_once() -> None:
    events = [
        ev(ADD, T0),
        ev(BUY, T0 + 1, order_id="o1"),
        ev(ADD, T0 + 2),
        ev(BUY, T0 + 2 + T, order_id="o2"),
        ev(BUY, T0 + 3 + T, order_id="o3"),
    ]
    assert statuses(events) == [
        (1, CartStatus.OPEN, None),
        (1, CartStatus.CONVERTED, T0 + 1),
        (2, CartStatus.OPEN, None),
        (2, CartStatus.ABANDONED, T0 + 2 + T),
        (2, CartStatus.RECOVERED, T0 + 2 + T),
    ]


def test_purchase_with_no_cart_opens_none() -> None:
    assert statuses([ev(PV, T0), ev(BUY, T0 + 1)]) == []


def test_checkout_and_remove_without_cart_are_ignored() -> None:
    assert statuses(
        [ev(CHECKOUT, T0), ev(REMOVE, T0 + 1, items=(item("a"),)), ev(ADD, T0 + 2)]
    ) == [
        (1, CartStatus.OPEN, None),
        (1, CartStatus.ABANDONED, T0 + 2 + T),
    ]


def test_an_item_keeps_its_latest_price() -> None:
    rows = cart_rows(
        run([ev(ADD, T0, items=(item("a", 1, "5"),)), ev(ADD, T0 + 1, items=(item("a", 1, "6"),))])
    )
    assert rows[-1].value == Decimal(12)
