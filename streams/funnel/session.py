"""The funnel state of one session and the pure functions that move it forward.

Product definitions:
- A session is (site_id, session_id, start). An on-time event more than the retention (see
  ``FunnelRules.retention_ms``) after the session's latest event starts a NEW session with the
  same id (new stages, carts, dedup set): decided by event times alone, whether or not idle
  ticks already expired the old state, and whatever the repartition hold. ``start`` is the
  time of the session's earliest event (fixed once its first event is final: later events are
  never earlier); it tells reused ids apart downstream.
- Size: a session holds at most ``SessionLimits``; past them it is capped (``session_size``).
- Duplicates: an event whose event_id the session has already accepted changes nothing; the
  dedup horizon is the life of the state, which is at least the conversion window W. A purchase
  whose order_id the session already counted changes nothing either (a purchase without an
  order_id uses its event_id as order id).
- Ordered funnel PAGE_VIEW -> ADD_TO_CART -> CHECKOUT -> PURCHASE: stage 1 is reached at the
  session's earliest page_view; stage k > 1 at the earliest event of type k with
  occurred_at >= stage k-1 time and <= stage 1 time + W. A purchase with no checkout still
  counts as an order and revenue, but not as stage 4.
- Event time decides everything. Accepted events wait in ``pending`` until the partition's bound
  (watermark - lateness) passes them; only then are they FINALISED: applied to the funnel and cart
  machines in event-time order, emitting facts that are never revised. Ties on occurred_at are
  broken by funnel order (page_view, add, remove, checkout, purchase), then event_id: so an add
  and a page_view in the same millisecond still reach stage 2, and "occurred_at >= stage k-1
  time" holds for equal times.
- First touch: the session's ``Dims`` are those of its first finalised event; user_id on a fact is
  the latest non-null user_id among the session's finalised events up to the fact's event time.

Functions mutate the ``SessionState`` they are given; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from schemas.event import Event, EventType, Item
from streams.funnel import cart as carts
from streams.funnel.cart import Cart
from streams.funnel.emitter import Emitter
from streams.funnel.facts import (
    STAGE_OF_EVENT,
    Dims,
    DimsValues,
    Fact,
    Stage,
    dims_values,
)
from streams.funnel.rules import FunnelRules

TIE_RANK: dict[EventType, int] = {
    EventType.PAGE_VIEW: 0,
    EventType.ADD_TO_CART: 1,
    EventType.REMOVE_FROM_CART: 2,
    EventType.CHECKOUT: 3,
    EventType.PURCHASE: 4,
}


# Enum members the per-event path compares against, as module constants: in Python 3.11 reading
# a member off its class (``EventType.PURCHASE``) costs about five times a global.
_PAGE_VIEW_STAGE = Stage.PAGE_VIEW
_PURCHASE_STAGE = Stage.PURCHASE
_ADD = EventType.ADD_TO_CART
_REMOVE = EventType.REMOVE_FROM_CART
_CHECKOUT = EventType.CHECKOUT
_PURCHASE = EventType.PURCHASE


def id_hash(text: str) -> int:
    """64-bit digest of an id: 8 bytes per remembered id instead of the whole string."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


# Not frozen: one is built per accepted event, and a frozen dataclass costs 3x more to build.
# Nothing changes one after it is built.
@dataclass(slots=True)
class Pending:
    """What finalisation needs of an accepted, not yet final event."""

    occurred_at_ms: int
    event_type: EventType
    event_id: str
    user_id: str | None = None
    # Only kept while the session has no first touch yet: a later event can never be it. The
    # values in ``Dims`` field order; a ``Dims`` is built only for the event that is first touch.
    dims: DimsValues | None = None
    items: tuple[Item, ...] = ()
    value: Decimal | None = None
    currency: str | None = None
    order_id: str | None = None

    @property
    def sort_key(self) -> tuple[int, int, str]:
        return (self.occurred_at_ms, TIE_RANK[self.event_type], self.event_id)


@dataclass(slots=True)
class SessionState:
    last_event_ms: int  # latest occurred_at accepted; drives expiry
    # Earliest event time, set when the first event is finalised; 0 for a state kept from
    # before sessions had a start (its rows were written with 0 too).
    start_ms: int | None = None
    # Size accounting against SessionLimits, over the session's life.
    events: int = 0
    item_lines: int = 0
    state_bytes: int = 0
    seen: set[int] = field(default_factory=set)  # id_hash of every accepted event_id
    pending: list[Pending] = field(default_factory=list)  # sorted by Pending.sort_key
    final_bound_ms: int | None = None  # events before this bound have been finalised
    stages: list[int | None] = field(default_factory=lambda: [None, None, None, None])
    orders: set[int] = field(default_factory=set)  # id_hash of counted order ids
    user_id: str | None = None
    dims: Dims | None = None
    cart: Cart | None = None


def is_duplicate(state: SessionState | None, event_digest: int) -> bool:
    """``event_digest``: ``id_hash`` of the event's id."""
    return state is not None and event_digest in state.seen


def close_bound(state: SessionState, rules: FunnelRules) -> int:
    """A bound that finalises all of a session and its cart: what expiry finalises it with."""
    return state.last_event_ms + rules.retention_ms + 1


def is_behind(state: SessionState | None, event: Event) -> bool:
    """True if the session already finalised past this event's time.

    Never true in normal operation (the partition rejects such events as late first); it guards
    against a watermark restored older than the sessions it covers.
    """
    return (
        state is not None
        and state.final_bound_ms is not None
        and event.occurred_at_ms < state.final_bound_ms
    )


def accept(
    state: SessionState | None,
    event: Event,
    event_digest: int,
    size: int,
    *,
    floor_ms: int | None = None,
) -> SessionState:
    """Add a new (not duplicate, not late, not capped) event to the session's pending events.

    ``event_digest`` is ``id_hash(event.event_id)`` and ``size`` its ``event_bytes`` against
    this state, both worked out once by the caller, which needed them first.
    ``floor_ms``: for a new session that follows an earlier one with the same id, the bound that
    closed the earlier one; events before it belong to that session and are late for this one.
    """
    t = event.occurred_at_ms
    if state is None:
        state = SessionState(last_event_ms=t, final_bound_ms=floor_ms)
    state.events += 1
    state.item_lines += len(event.items)
    state.state_bytes += size
    state.seen.add(event_digest)
    if t > state.last_event_ms:
        state.last_event_ms = t
    pending = Pending(
        t,
        event.event_type,
        event.event_id,
        event.user_id,
        dims_values(event) if state.dims is None else None,
        event.items,
        event.value,
        event.currency,
        event.order_id,
    )
    queue = state.pending
    if not queue or t > queue[-1].occurred_at_ms:
        queue.append(pending)  # the usual case: events of a session arrive in time order
    else:
        bisect.insort(queue, pending, key=lambda p: p.sort_key)
    return state


def finalise(
    state: SessionState, site_id: str, session_id: str, bound_ms: int, rules: FunnelRules
) -> list[Fact]:
    """Apply, in event-time order, every pending event before ``bound_ms``; return the facts.

    Abandonments fire in between, as soon as every event before the deadline is final: before
    the first event at or after it, or at the end when the deadline is <= ``bound_ms`` (any event
    still to come is at or after the bound, hence after the deadline).
    """
    if state.final_bound_ms is not None and bound_ms <= state.final_bound_ms:
        return []
    pending = state.pending
    if pending and pending[-1].occurred_at_ms < bound_ms:
        ready, state.pending = pending, []  # the usual case: all of them
    else:
        cut = bisect.bisect_left(pending, bound_ms, key=lambda p: p.occurred_at_ms)
        ready, state.pending = pending[:cut], pending[cut:]
    if ready and state.start_ms is None:
        state.start_ms = ready[0].occurred_at_ms
    out = Emitter(state, site_id, session_id)
    for event in ready:
        out.abandon_if_due(event.occurred_at_ms, rules)
        _apply(state, event, rules, out)
    out.abandon_if_due(bound_ms, rules)
    state.final_bound_ms = bound_ms
    return out.facts


def wake_after(state: SessionState, rules: FunnelRules) -> int:
    """The session needs ``finalise`` (or expiry) as soon as the bound is > this time."""
    wake = state.last_event_ms + rules.retention_ms
    if state.pending and state.pending[0].occurred_at_ms < wake:
        wake = state.pending[0].occurred_at_ms
    deadline = carts.abandonment_deadline(state.cart, rules.abandonment_ms)
    if deadline is not None and deadline - 1 < wake:
        wake = deadline - 1  # fires when bound >= deadline
    return wake


def starts_anew(state: SessionState | None, event: Event, rules: FunnelRules) -> bool:
    """Whether ``event`` reuses the session id: more than the retention after the session's
    latest event. Event times alone decide, so the answer is the same whether or not the
    bound has already expired the old state."""
    return state is not None and event.occurred_at_ms > state.last_event_ms + rules.retention_ms


def expired(state: SessionState, bound_ms: int, rules: FunnelRules) -> bool:
    """Whether the state may be dropped, once it has been finalised up to ``bound_ms``.

    By then nothing is pending (every event is <= last_event_ms < bound) and the cart, if open,
    has been abandoned (its deadline is <= last_event_ms + T < bound).
    """
    return bound_ms > state.last_event_ms + rules.retention_ms


def _apply(state: SessionState, event: Pending, rules: FunnelRules, out: Emitter) -> None:
    t = event.occurred_at_ms
    kind = event.event_type
    order_id = event.order_id if event.order_id is not None else event.event_id
    if kind is _PURCHASE:
        order = id_hash(order_id)
        if order in state.orders:
            return  # same order again: changes nothing, not even the latest user id
        state.orders.add(order)
    if state.dims is None and event.dims is not None:
        state.dims = Dims(*event.dims)
    if event.user_id is not None:
        state.user_id = event.user_id
    stage = STAGE_OF_EVENT.get(kind)
    if stage is not None:
        _reach(state, stage, t, rules, out)
    if kind is _ADD:
        state.cart, opened = carts.add_to_cart(
            state.cart, t, event.items, event.value, event.currency
        )
        if opened:
            out.cart_row(state.cart)
    elif kind is _REMOVE:
        carts.remove_from_cart(state.cart, event.items, event.value)
    elif kind is _CHECKOUT:
        carts.checkout(state.cart, t)
    elif kind is _PURCHASE:
        out.order(event, order_id)
        if state.cart is not None and carts.purchase(state.cart, t):
            out.cart_row(state.cart)


def _reach(state: SessionState, stage: Stage, t: int, rules: FunnelRules, out: Emitter) -> None:
    stages = state.stages
    i = stage - 1
    if stages[i] is not None:
        return
    if stage is _PAGE_VIEW_STAGE:
        stages[i] = t
        out.stage(stage, t, None)
        return
    first = stages[0]
    # Events are applied in time order, so stage k-1 being set means it is at or before t.
    if first is None or stages[i - 1] is None or t > first + rules.conversion_window_ms:
        return
    stages[i] = t
    out.stage(stage, t, t - first if stage is _PURCHASE_STAGE else None)
