"""Hypothesis deliveries for the engine's property tests: sessions, sent as Kafka would.

Events are sent within the lateness bound of when they happened (so none is late), with Kafka
timestamps up to the allowed skew behind, some repeated, and batch cuts, a restart point and a
warm-session cache size drawn with them. `RULES` are small so that edges are hit often.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import strategies as st

from schemas.event import Device, Event, EventType, Item
from streams.funnel.facts import Fact, OrderPlaced, StageReached
from streams.funnel.rules import FunnelRules
from tests.unit.funnel.builders import T0

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
