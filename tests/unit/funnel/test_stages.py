"""Funnel stages, orders, first touch and duplicates, through the whole engine."""

from decimal import Decimal

from schemas.event import Device
from streams.funnel.facts import Dims, Stage, StageReached
from tests.unit.funnel.builders import (
    ADD,
    BUY,
    CHECKOUT,
    PV,
    RULES,
    T0,
    ev,
    item,
    orders,
    run,
    stage_times,
)

W = RULES.conversion_window_ms


def test_full_funnel_reaches_every_stage_with_time_to_convert() -> None:
    facts = run([ev(PV, T0), ev(ADD, T0 + 10), ev(CHECKOUT, T0 + 20), ev(BUY, T0 + 30)])
    assert stage_times(facts) == {
        Stage.PAGE_VIEW: T0,
        Stage.ADD_TO_CART: T0 + 10,
        Stage.CHECKOUT: T0 + 20,
        Stage.PURCHASE: T0 + 30,
    }
    (bought,) = [f for f in facts if isinstance(f, StageReached) and f.stage is Stage.PURCHASE]
    assert bought.time_to_convert_ms == 30
    assert all(
        f.time_to_convert_ms is None
        for f in facts
        if isinstance(f, StageReached) and f.stage is not Stage.PURCHASE
    )


def test_stage_one_is_the_earliest_page_view_even_if_delivered_later() -> None:
    facts = run([ev(PV, T0 + 50), ev(PV, T0 + 5)])
    assert stage_times(facts) == {Stage.PAGE_VIEW: T0 + 5}


def test_stages_must_come_in_order() -> None:
    # The add before the page view does not count; the later one does.
    facts = run([ev(ADD, T0), ev(PV, T0 + 10), ev(CHECKOUT, T0 + 5), ev(ADD, T0 + 20)])
    assert stage_times(facts) == {Stage.PAGE_VIEW: T0 + 10, Stage.ADD_TO_CART: T0 + 20}


def test_no_page_view_means_no_stage_at_all() -> None:
    facts = run([ev(ADD, T0), ev(CHECKOUT, T0 + 1), ev(BUY, T0 + 2, order_id="o")])
    assert stage_times(facts) == {}
    assert [o.order_id for o in orders(facts)] == ["o"]


def test_same_millisecond_counts_as_in_order() -> None:
    # event ids sort the "wrong" way round; funnel order breaks the tie.
    facts = run([ev(ADD, T0, event_id="a"), ev(PV, T0, event_id="b")])
    assert stage_times(facts) == {Stage.PAGE_VIEW: T0, Stage.ADD_TO_CART: T0}


def test_window_upper_bound_is_inclusive() -> None:
    facts = run([ev(PV, T0), ev(ADD, T0 + W), ev(CHECKOUT, T0 + W + 1)])
    assert stage_times(facts) == {Stage.PAGE_VIEW: T0, Stage.ADD_TO_CART: T0 + W}


def test_window_counts_from_stage_one_not_from_the_previous_stage() -> None:
    facts = run([ev(PV, T0), ev(ADD, T0 + W - 5), ev(CHECKOUT, T0 + W + 5), ev(PV, T0 + W)])
    assert Stage.CHECKOUT not in stage_times(facts)


def test_purchase_without_checkout_is_an_order_but_not_stage_four() -> None:
    facts = run(
        [
            ev(PV, T0),
            ev(ADD, T0 + 1),
            ev(BUY, T0 + 2, order_id="o1", value=Decimal("9.99"), currency="EUR"),
        ]
    )
    assert Stage.PURCHASE not in stage_times(facts)
    (order,) = orders(facts)
    assert (order.order_id, order.value, order.currency) == ("o1", Decimal("9.99"), "EUR")
    assert order.reached_checkout is False


def test_order_value_falls_back_to_items_and_counts_quantities() -> None:
    buy = ev(BUY, T0, order_id="o", items=(item("a", 2, "1.25"), item("b", 1, "3")))
    (order,) = orders(run([buy]))
    assert (order.value, order.item_count) == (Decimal("5.50"), 3)


def test_purchase_without_order_id_uses_its_event_id() -> None:
    (order,) = orders(run([ev(BUY, T0, event_id="evt-9")]))
    assert order.order_id == "evt-9"


def test_duplicate_event_id_changes_nothing() -> None:
    first = ev(PV, T0 + 10, event_id="same")
    again = ev(PV, T0, event_id="same")  # a different time must not move stage 1
    assert stage_times(run([first, again])) == {Stage.PAGE_VIEW: T0 + 10}


def test_duplicate_order_id_changes_nothing() -> None:
    facts = run(
        [
            ev(PV, T0),
            ev(BUY, T0 + 1, order_id="o1", value=Decimal(5)),
            ev(CHECKOUT, T0 + 2),
            ev(BUY, T0 + 3, order_id="o1", value=Decimal(7), user_id="late-login"),
        ]
    )
    (order,) = orders(facts)
    assert (order.value, order.reached_checkout) == (Decimal(5), False)
    assert Stage.PURCHASE not in stage_times(facts)
    assert all(f.user_id is None for f in facts)


def test_second_distinct_order_counts_and_reaches_stage_four() -> None:
    facts = run(
        [
            ev(PV, T0),
            ev(ADD, T0 + 1),
            ev(BUY, T0 + 2, order_id="o1"),
            ev(CHECKOUT, T0 + 3),
            ev(BUY, T0 + 4, order_id="o2"),
        ]
    )
    assert [(o.order_id, o.reached_checkout) for o in orders(facts)] == [
        ("o1", False),
        ("o2", True),
    ]
    assert stage_times(facts)[Stage.PURCHASE] == T0 + 4


def test_dims_are_first_touch_and_user_is_latest_known() -> None:
    facts = run(
        [
            ev(PV, T0 + 5, utm_source="mail", user_id="u2"),
            ev(PV, T0, utm_source="ads", device=Device.MOBILE, country="DE", variant="B"),
            ev(ADD, T0 + 10),
        ]
    )
    expected = Dims(utm_source="ads", device="mobile", country="DE", variant="B")
    assert {f.dims for f in facts} == {expected}
    by_stage = {f.stage: f.user_id for f in facts if isinstance(f, StageReached)}
    # stage 1 is reached before the login at T0 + 5
    assert by_stage == {Stage.PAGE_VIEW: None, Stage.ADD_TO_CART: "u2"}
