"""Property tests: however events are delivered, the engine ends with the reference's facts.

Delivery is shuffled within the lateness bound, events are repeated, batches are cut anywhere,
the engine is rebuilt from its store in the middle, and stale events arrive at the end. After a
final idle flush far in the future, the facts must equal ``reference`` exactly, each emitted once,
and the store must be empty but for the watermark.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.event import Event, EventType
from streams.funnel.facts import CartChanged, Fact, OrderPlaced, StageReached
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.store import WATERMARK_KEY, DictStore
from tests.unit.funnel.builders import DAY_MS, T0, flush
from tests.unit.funnel.deliveries import RULES, Delivery, deliveries, identity
from tests.unit.funnel.reference import reference


def play(
    d: Delivery, stale: list[Event] | None = None
) -> tuple[list[Outcome], list[Fact], DictStore]:
    store = DictStore()
    funnel = PartitionFunnel(store, RULES, warm_sessions=d.warm_sessions)
    outcomes: list[Outcome] = []
    facts: list[Fact] = []
    start = 0
    for n, cut in enumerate(d.cuts):
        result = funnel.process_batch(d.sends[start:cut])
        outcomes += result.outcomes
        facts += result.facts
        start = cut
        if n == d.reload_after:
            funnel = PartitionFunnel(
                store, RULES, warm_sessions=d.warm_sessions
            )  # restart: only the store survives
    if stale is not None:
        assert funnel.watermark_ms is not None
        just_too_old = funnel.watermark_ms - RULES.lateness_ms - 1
        result = funnel.process_batch(
            [(replace(e, occurred_at_ms=just_too_old), just_too_old) for e in stale]
        )
        assert set(result.outcomes) <= {Outcome.LATE}
        facts += result.facts
    facts += flush(funnel, T0 + 10 * DAY_MS, RULES)
    assert funnel.open_sessions == 0
    return outcomes, facts, store


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=deliveries(), data=st.data())
def test_engine_matches_reference_whatever_the_delivery(d: Delivery, data: st.DataObject) -> None:
    stale_keys = data.draw(st.lists(st.sampled_from(["a", "zz"]), max_size=2))
    stale = [
        Event(f"stale-{i}", EventType.PAGE_VIEW, 0, "s1", sid) for i, sid in enumerate(stale_keys)
    ]
    outcomes, facts, store = play(d, stale)

    seen: set[str] = set()
    for (event, _), outcome in zip(d.sends, outcomes, strict=True):
        key = f"{event.site_id}/{event.session_id}/{event.event_id}"
        assert (outcome is Outcome.ACCEPTED) == (key not in seen), (event, outcome)
        seen.add(key)

    repeated = [k for k, n in Counter(map(identity, facts)).items() if n > 1]
    assert repeated == [], "a fact was emitted twice"
    expected = reference(d.originals, RULES)
    assert {f for f in facts if isinstance(f, StageReached)} == expected.stages
    assert {f for f in facts if isinstance(f, OrderPlaced)} == expected.orders
    assert {f for f in facts if isinstance(f, CartChanged)} == expected.carts
    assert list(store.data) == [WATERMARK_KEY]


@settings(max_examples=100, deadline=None)
@given(d=deliveries())
def test_batch_boundaries_change_nothing(d: Delivery) -> None:
    one_batch = Delivery(d.originals, d.sends, [len(d.sends)], None, 0)
    per_event = Delivery(d.originals, d.sends, list(range(1, len(d.sends) + 1)), None, 4096)
    runs = [play(x)[:2] for x in (one_batch, per_event, d)]
    outcomes = [r[0] for r in runs]
    facts = [Counter(map(repr, r[1])) for r in runs]
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert facts[0] == facts[1] == facts[2]
