"""Property tests: however events are delivered, the engine ends with the reference's facts.

Delivery is shuffled within the lateness bound, events are repeated, batches are cut anywhere,
the engine is rebuilt from its store in the middle, and stale events arrive at the end. After a
final idle flush far in the future, the facts must equal ``reference`` exactly, each emitted once,
and the store must be empty but for the watermark.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.event import Device, Event, EventType, Item
from streams.funnel.facts import CartChanged, Fact, OrderPlaced, StageReached
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.rules import FunnelRules
from streams.funnel.store import WATERMARK_KEY, DictStore
from tests.unit.funnel.builders import DAY_MS, T0, flush
from tests.unit.funnel.reference import reference

# Small numbers so that windows, timeouts and lateness edges are hit often.
RULES = FunnelRules(
    conversion_window_ms=20_000,
    lateness_ms=5_000,
    abandonment_ms=8_000,
    max_skew_ms=2_000,
    idle_after_ms=1_000,
    expiry_margin_ms=10_000,
)
# A session spans less than the retention (30 s), so it never expires between its own events.
MAX_SPAN_MS = RULES.conversion_window_ms + 5_000
T = RULES.abandonment_ms

KINDS = [EventType.PAGE_VIEW] * 3 + [
    EventType.ADD_TO_CART,
    EventType.ADD_TO_CART,
    EventType.REMOVE_FROM_CART,
    EventType.CHECKOUT,
    EventType.PURCHASE,
]
items = st.lists(
    st.builds(
        Item,
        sku=st.sampled_from(["a", "b", "c"]),
        quantity=st.integers(1, 3),
        price=st.sampled_from([Decimal("1.50"), Decimal(10), Decimal("3.33"), Decimal(0)]),
    ),
    max_size=2,
).map(tuple)
gaps = st.one_of(
    st.sampled_from([0, 1, 999, 1_000, T - 1, T, T + 1, RULES.conversion_window_ms]),
    st.integers(0, 12_000),
)


@st.composite
def session(draw: st.DrawFn, site: str, session_id: str) -> list[Event]:
    start = T0 + draw(st.integers(0, 90_000))
    t = start
    events = []
    for n in range(draw(st.integers(1, 10))):
        t = min(t + draw(gaps), start + MAX_SPAN_MS)
        kind = draw(st.sampled_from(KINDS))
        has_money = kind is not EventType.PAGE_VIEW and kind is not EventType.CHECKOUT
        events.append(
            Event(
                event_id=f"{site}/{session_id}/{n}",
                event_type=kind,
                occurred_at_ms=t,
                site_id=site,
                session_id=session_id,
                user_id=draw(st.sampled_from([None, None, "u1", "u2"])),
                utm_source=draw(st.sampled_from([None, "ads", "mail"])),
                device=draw(st.sampled_from([None, Device.MOBILE, Device.DESKTOP])),
                variant=draw(st.sampled_from([None, "A", "B"])),
                items=draw(items) if has_money else (),
                value=draw(st.sampled_from([None, Decimal(5), Decimal("12.34")])),
                currency=draw(st.sampled_from([None, "EUR", "USD"])),
                order_id=(
                    draw(st.sampled_from([None, "o1", "o2"]))
                    if kind is EventType.PURCHASE
                    else None
                ),
            )
        )
    return events


@dataclass
class Delivery:
    originals: list[Event]
    sends: list[tuple[Event, int]]  # (event, kafka timestamp), in offset order
    cuts: list[int]  # batch ends, increasing, the last == len(sends)
    reload_after: int | None  # index into cuts
    warm_sessions: int  # 0: every batch decodes from the store


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["s1", "s2"]), st.sampled_from(["a", "b", "c", "d"])),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    originals = [e for site, sid in keys for e in draw(session(site, sid))]
    # Each event is sent at most L after it happened, so none is ever late.
    keyed = []
    for i, e in enumerate(originals):
        sent_at = e.occurred_at_ms + draw(st.integers(0, RULES.lateness_ms))
        # Kafka timestamps behind event time, within the skew: a clock further ahead is
        # future-dated and moves no watermark (tests/unit/funnel/test_hardening.py).
        clock_lag = draw(st.sampled_from([0, 0, RULES.max_skew_ms]))
        keyed.append((sent_at, i, (e, sent_at - clock_lag)))
    sends = [send for _, _, send in sorted(keyed)]
    for _ in range(draw(st.integers(0, 4))):
        src = draw(st.integers(0, len(sends) - 1))
        sends.insert(draw(st.integers(src + 1, len(sends))), sends[src])
    cuts = sorted(set(draw(st.lists(st.integers(1, len(sends)), max_size=6))) | {len(sends)})
    reload_after = draw(st.none() | st.integers(0, len(cuts) - 1))
    return Delivery(originals, sends, cuts, reload_after, draw(st.sampled_from([0, 1, 4096])))


def identity(fact: Fact) -> tuple[object, ...]:
    if isinstance(fact, StageReached):
        return ("stage", fact.site_id, fact.session_id, fact.stage)
    if isinstance(fact, OrderPlaced):
        return ("order", fact.site_id, fact.session_id, fact.order_id)
    return ("cart", fact.site_id, fact.session_id, fact.cart_seq, fact.status)


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
