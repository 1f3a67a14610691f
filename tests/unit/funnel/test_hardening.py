"""Issue 10 in the engine: producer clock skew, reused session ids, capped sessions."""

from __future__ import annotations

from streams.funnel.codec import decode_state, encode_state
from streams.funnel.facts import CartChanged, CartStatus, Fact, StageReached
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.rules import SessionLimits
from streams.funnel.store import session_key
from streams.funnel.watermark import is_future
from tests.unit.funnel.builders import (
    ADD,
    BUY,
    DAY_MS,
    PV,
    RULES,
    T0,
    DictStore,
    ev,
    flush,
    item,
)
from tests.unit.funnel.reference import reference

HOUR_MS = 3_600_000
L = RULES.lateness_ms


def test_a_fast_producer_clock_does_not_move_the_watermark() -> None:
    # The storefront's clock is 23 h fast, so its Kafka timestamp is too; the worker's clock
    # (observed = min(kafka ts, wall clock)) says T0.
    funnel = PartitionFunnel(DictStore(), RULES)
    funnel.process_batch([(ev(ADD, T0 - 60_000, session_id="honest"), T0)])
    fast = ev(PV, T0 + 23 * HOUR_MS, session_id="fast")
    assert is_future(fast.occurred_at_ms, T0, RULES)
    result = funnel.process_batch([(fast, T0)])
    assert result.outcomes == (Outcome.ACCEPTED,)
    assert result.watermark_ms == T0 - 60_000  # unmoved
    assert result.facts == ()  # no cart abandoned by one wrong clock
    honest = ev(BUY, T0 + 1_000, session_id="honest", order_id="o1")
    assert not is_future(honest.occurred_at_ms, T0 + 1_000, RULES)
    assert funnel.process_batch([(honest, T0 + 1_000)]).outcomes == (Outcome.ACCEPTED,)
    facts = flush(funnel, T0 + 30 * DAY_MS)
    # The future event still counts, at its own time.
    assert any(isinstance(f, StageReached) and f.session_id == "fast" for f in facts)
    assert [f.status for f in facts if isinstance(f, CartChanged)] == [
        CartStatus.OPEN,
        CartStatus.CONVERTED,
    ]


def _reused_session_facts(*, idle_tick: bool) -> list[Fact]:
    funnel = PartitionFunnel(DictStore(), RULES)
    revisit = T0 + 48 * HOUR_MS
    facts = list(funnel.process_batch([(ev(ADD, T0, event_id="a"), T0)]).facts)
    if idle_tick:
        facts += flush(funnel, T0 + 30 * HOUR_MS)
    facts += funnel.process_batch([(ev(ADD, revisit, event_id="b"), revisit)]).facts
    facts += flush(funnel, revisit + 30 * DAY_MS)
    return facts


def test_a_reused_session_id_is_two_sessions_whether_or_not_a_tick_came_between() -> None:
    with_tick = _reused_session_facts(idle_tick=True)
    without = _reused_session_facts(idle_tick=False)
    assert sorted(map(repr, with_tick)) == sorted(map(repr, without))
    starts = {f.session_start_ms for f in with_tick}
    assert starts == {T0, T0 + 48 * HOUR_MS}
    expected = reference(
        [ev(ADD, T0, event_id="a"), ev(ADD, T0 + 48 * HOUR_MS, event_id="b")], RULES
    )
    assert set(with_tick) == expected.stages | expected.orders | expected.carts


def test_an_event_of_the_closed_session_is_late_for_the_new_one() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    revisit = T0 + 48 * HOUR_MS
    # The revisit is read before a straggler of the first session (a day after it).
    funnel.process_batch([(ev(PV, T0), T0), (ev(PV, revisit), revisit)])
    result = funnel.process_batch([(ev(PV, T0 + HOUR_MS), T0 + HOUR_MS)])
    assert result.outcomes == (Outcome.LATE,)


def test_a_cart_bomb_is_capped_and_the_state_stays_small() -> None:
    store = DictStore()
    funnel = PartitionFunnel(store, RULES)
    bomb = [
        ev(ADD, T0 + n, event_id=f"bomb{n}", items=tuple(item(f"sku-{n}-{i}") for i in range(500)))
        for n in range(16)
    ]
    result = funnel.process_batch([(e, T0) for e in bomb])
    limits = SessionLimits()
    accepted = limits.max_item_lines // 500
    assert result.outcomes == (Outcome.ACCEPTED,) * accepted + (Outcome.CAPPED,) * (16 - accepted)
    assert len(store.data[session_key("s1", "x")]) < limits.max_state_bytes
    # Known ids still deduplicate; a capped id is capped again, not accepted.
    again = funnel.process_batch([(bomb[0], T0), (bomb[-1], T0)])
    assert again.outcomes == (Outcome.DUPLICATE, Outcome.CAPPED)
    other = funnel.process_batch([(ev(PV, T0 + 5, session_id="y"), T0)])
    assert other.outcomes == (Outcome.ACCEPTED,)


def test_a_100k_event_session_is_capped_at_its_limits() -> None:
    store = DictStore()
    funnel = PartitionFunnel(store, RULES)
    limits = SessionLimits()
    outcomes: list[Outcome] = []
    for start in range(0, 100_000, 5_000):
        batch = [(ev(PV, T0 + n * 1_000, event_id=f"bot-{n:06d}"), T0 + n * 1_000)
                 for n in range(start, start + 5_000)]  # fmt: skip
        outcomes += funnel.process_batch(batch).outcomes
        encoded = store.data[session_key("s1", "x")]
        assert len(encoded) <= limits.max_state_bytes
    assert outcomes.count(Outcome.ACCEPTED) == limits.max_events
    assert outcomes.count(Outcome.CAPPED) == 100_000 - limits.max_events


def test_limits_bound_the_encoded_state_for_the_largest_events() -> None:
    # Ids at their 128-character limit in 4-byte characters: still under the cap.
    limits = SessionLimits()
    store = DictStore()
    funnel = PartitionFunnel(store, RULES, limits=limits)
    big = "\U0001f600" * 128
    events = [
        ev(ADD, T0 + n, event_id=f"{n}{big}"[:128], user_id=big, utm_source=big * 2,
           items=tuple(item(f"{i}{big}"[:128]) for i in range(100)))
        for n in range(20)
    ]  # fmt: skip
    outcomes = funnel.process_batch([(e, T0) for e in events]).outcomes
    assert Outcome.ACCEPTED in outcomes
    assert Outcome.CAPPED in outcomes
    assert len(store.data[session_key("s1", "x")]) <= limits.max_state_bytes
    funnel.tick(T0 + HOUR_MS)
    funnel.tick(T0 + HOUR_MS + RULES.idle_after_ms)  # finalised: cart lines, not pending
    assert len(store.data[session_key("s1", "x")]) <= limits.max_state_bytes


def test_encoded_size_is_within_the_estimate() -> None:
    store = DictStore()
    funnel = PartitionFunnel(store, RULES)
    events = [ev(ADD, T0 + n, items=(item(f"s{n}"),), user_id="u") for n in range(50)]
    funnel.process_batch([(e, T0) for e in events])
    state = decode_state(store.data[session_key("s1", "x")])
    assert len(encode_state(state)) <= state.state_bytes


def test_a_future_event_inside_a_backlog_makes_no_backlog_event_late() -> None:
    # The worker replays events 3 h behind its clock; one storefront's clock is 23 h fast.
    now = T0 + 3 * HOUR_MS
    funnel = PartitionFunnel(DictStore(), RULES)
    backlog = [ev(PV, T0 + n * 1_000, session_id=f"b{n}") for n in range(10)]
    fast = ev(ADD, now + 23 * HOUR_MS, session_id="fast")
    sends = [(e, min(e.occurred_at_ms, now)) for e in backlog[:5]]
    sends += [(fast, min(fast.occurred_at_ms, now))]
    sends += [(e, min(e.occurred_at_ms, now)) for e in backlog[5:]]
    result = funnel.process_batch(sends)
    assert set(result.outcomes) == {Outcome.ACCEPTED}
    assert result.watermark_ms == backlog[-1].occurred_at_ms
