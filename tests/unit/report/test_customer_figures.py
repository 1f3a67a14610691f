"""Predictive CLV and RFM scoring on hand-made customers, computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sinks.customer_queries import Customer, CustomerFacts
from streams.report.customers import CustomersRequest, predictive_clv, summary
from streams.report.segments import ScoreBounds, quintiles, score, segment_of

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
DAY = 86_400_000
NOW = int(AS_OF.timestamp() * 1000)


def customer(user: str, days_ago: list[int], value: str = "10") -> Customer:
    times = sorted(NOW - d * DAY for d in days_ago)
    c = Customer(user, times[0], times[-1], order_times_ms=times)
    c.orders = len(times)
    c.revenue = {"EUR": Decimal(value) * len(times)}
    c.orders_by_currency = {"EUR": len(times)}
    return c


def test_predictive_clv_from_frequency_and_churn() -> None:
    customers = [
        customer("a", [500, 100, 20]),  # before the year, ordered in it (2 orders)
        customer("b", [400]),  # before the year, not in it: churned
        customer("c", [30]),  # new in the year
    ]
    clv = predictive_clv(customers, {"EUR": Decimal(10)}, AS_OF)
    inputs = clv["inputs"]
    assert inputs["customers_ordering_in_year"] == 2  # a and c
    assert inputs["yearly_frequency"] == 1.5  # 3 orders / 2 customers
    assert (inputs["customers_before_year"], inputs["churned"]) == (2, 1)
    assert inputs["yearly_churn"] == 0.5
    assert inputs["lifetime_years"] == 2.0
    assert clv["value"] == {"EUR": Decimal(30)}  # 10 x 1.5 x 2


def test_summary_counts_customers_and_guests_apart() -> None:
    facts = CustomerFacts(
        {c.user_id: c for c in [customer("a", [3, 2]), customer("b", [1], "40")]},
        {"EUR": (5, Decimal(100))},
    )
    got = summary(facts, AS_OF)
    assert (got["customers"], got["guest_orders"], got["repeat_customers"]) == (2, 5, 1)
    assert got["aov"] == {"EUR": Decimal(20)}  # (20 + 40) / 3, guests left out
    assert got["historical_clv"] == {"EUR": Decimal(30)}
    assert got["clv_to_aov"] == {"EUR": 1.5}


def test_quintiles_break_ties_by_user_id_whatever_the_input_order() -> None:
    values = {f"u{i}": i // 4 for i in range(10)}  # ties of four
    shuffled = dict(reversed(list(values.items())))
    assert quintiles(values) == quintiles(shuffled)
    assert [quintiles(values)[f"u{i}"] for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_every_score_pair_has_exactly_one_segment() -> None:
    table = {(r, f): segment_of(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert table[5, 5] == "champions"
    assert table[3, 3] == "loyal"
    assert table[5, 1] == "new"
    assert table[3, 1] == "potential_loyalists"
    assert table[1, 5] == "cant_lose"
    assert table[2, 2] == "at_risk"
    assert table[2, 1] == table[1, 3] == "hibernating"
    assert table[1, 1] == "lost"
    scored = score([customer(f"u{i}", [i * 10 + 1] * (1 + i % 3)) for i in range(12)], AS_OF)
    assert len({s.customer.user_id for s in scored}) == 12


def test_fixed_thresholds_score_by_cut_points_recency_reversed() -> None:
    bounds = ScoreBounds.parse("r=7,30,90,180; F=2,3,5,8")
    assert bounds.as_text() == "r=7,30,90,180;f=2,3,5,8"
    recency = {"a": 0, "b": 7, "c": 29, "d": 90, "e": 179, "f": 180, "g": 999}
    assert bounds.scores("r", dict(recency)) == {
        "a": 5, "b": 4, "c": 4, "d": 2, "e": 2, "f": 1, "g": 1,
    }  # fmt: skip
    orders = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 8, "g": 30}
    assert bounds.scores("f", dict(orders)) == {
        "a": 1, "b": 2, "c": 3, "d": 3, "e": 4, "f": 5, "g": 5,
    }  # fmt: skip
    # A dimension without cut points keeps the quintiles.
    assert bounds.scores("m", dict(orders)) == quintiles(dict(orders))
    scored = score(
        [customer("x", [3, 200, 300]), customer("y", [100])], AS_OF, bounds
    )  # x: 3 days, 3 orders; y: 100 days, 1 order
    assert [(s.r, s.f, s.segment) for s in scored] == [(5, 3, "loyal"), (2, 1, "hibernating")]


@pytest.mark.parametrize(
    "text", ["r=1,2,3", "r=3,2,1,0", "r=1,1,2,3", "x=1,2,3,4", "f=1,2,a,4", "f", "f=1,2,3,4;f=1,2,3,5",
             "m=-1,2,3,4"],
)  # fmt: skip
def test_bad_thresholds_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        ScoreBounds.parse(text)


def test_thresholds_travel_to_the_endpoint_and_back() -> None:
    request = CustomersRequest.from_params(
        {"site": "s", "as_of": AS_OF.isoformat(), "segments": "1", "thresholds": "l=1,2,4,8"}
    )
    assert request.bounds.cuts == {"l": (Decimal(1), Decimal(2), Decimal(4), Decimal(8))}
    assert CustomersRequest.from_params(request.as_params()) == request
