"""Reference funnel: the product definitions computed the slow, obvious way, as a batch.

Written apart from the engine on purpose (it shares only the Event and fact types): the property
tests check that the streaming engine, whatever the delivery order, batching and restarts, ends
with exactly these facts. Input: every event that should count (each session's events may repeat;
only the first copy of an event_id counts). Everything is taken as final.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from schemas.event import Event, EventType, Item
from streams.funnel.facts import CartChanged, CartStatus, Dims, OrderPlaced, Stage, StageReached
from streams.funnel.rules import FunnelRules

FUNNEL_ORDER = [
    EventType.PAGE_VIEW,
    EventType.ADD_TO_CART,
    EventType.REMOVE_FROM_CART,
    EventType.CHECKOUT,
    EventType.PURCHASE,
]
STAGE_TYPES = [EventType.PAGE_VIEW, EventType.ADD_TO_CART, EventType.CHECKOUT, EventType.PURCHASE]


@dataclass(frozen=True)
class Expected:
    stages: frozenset[StageReached]
    orders: frozenset[OrderPlaced]
    carts: frozenset[CartChanged]  # every transition row, not only the last


def reference(events: Iterable[Event], rules: FunnelRules) -> Expected:
    by_session: dict[tuple[str, str], dict[str, Event]] = {}
    for e in events:
        by_session.setdefault((e.site_id, e.session_id), {}).setdefault(e.event_id, e)
    stages: set[StageReached] = set()
    orders: set[OrderPlaced] = set()
    carts: set[CartChanged] = set()
    for unique in by_session.values():
        for visit in _visits(list(unique.values()), rules):
            s, o, c = _session(visit, rules)
            stages |= s
            orders |= o
            carts |= c
    return Expected(frozenset(stages), frozenset(orders), frozenset(carts))


def _visits(events: list[Event], rules: FunnelRules) -> list[list[Event]]:
    """One session id's events split into sessions: a gap over the retention starts a new one."""
    events.sort(key=lambda e: e.occurred_at_ms)
    visits: list[list[Event]] = []
    for e in events:
        if not visits or e.occurred_at_ms - visits[-1][-1].occurred_at_ms > rules.retention_ms:
            visits.append([])
        visits[-1].append(e)
    return visits


def _session(
    events: list[Event], rules: FunnelRules
) -> tuple[set[StageReached], set[OrderPlaced], set[CartChanged]]:
    events.sort(key=lambda e: (e.occurred_at_ms, FUNNEL_ORDER.index(e.event_type), e.event_id))
    start = events[0].occurred_at_ms  # before repeated orders are dropped: they count for it
    # A purchase repeating an order id is as if it never happened.
    kept: list[Event] = []
    order_ids: set[str] = set()
    for e in events:
        if e.event_type is EventType.PURCHASE:
            oid = e.order_id or e.event_id
            if oid in order_ids:
                continue
            order_ids.add(oid)
        kept.append(e)
    site, session = kept[0].site_id, kept[0].session_id
    first = kept[0]
    dims = Dims(
        first.utm_source,
        first.utm_medium,
        first.utm_campaign,
        first.device.value if first.device else None,
        first.country,
        first.variant,
    )
    # user_at[i]: latest user id among kept[0..i]
    user_at: list[str | None] = []
    for e in kept:
        user_at.append(e.user_id if e.user_id is not None else (user_at[-1] if user_at else None))

    # Stages straight from the definition.
    stage_time: dict[int, int] = {}
    stage_facts: set[StageReached] = set()
    for number, kind in enumerate(STAGE_TYPES, start=1):
        if number == 1:
            hits = [i for i, e in enumerate(kept) if e.event_type is kind]
        elif number - 1 in stage_time:
            lo, hi = stage_time[number - 1], stage_time[1] + rules.conversion_window_ms
            hits = [
                i
                for i, e in enumerate(kept)
                if e.event_type is kind and lo <= e.occurred_at_ms <= hi
            ]
        else:
            hits = []
        if not hits:
            break
        i = hits[0]
        t = kept[i].occurred_at_ms
        stage_time[number] = t
        ttc = t - stage_time[1] if number == 4 else None
        stage_facts.add(StageReached(site, session, start, user_at[i], dims, Stage(number), t, ttc))

    order_facts: set[OrderPlaced] = set()
    for i, e in enumerate(kept):
        if e.event_type is EventType.PURCHASE:
            value = e.value
            if value is None:
                value = sum((it.price * it.quantity for it in e.items), Decimal(0))
            order_facts.add(
                OrderPlaced(
                    site,
                    session,
                    start,
                    user_at[i],
                    dims,
                    e.order_id or e.event_id,
                    e.occurred_at_ms,
                    value,
                    e.currency,
                    sum(it.quantity for it in e.items),
                    3 in stage_time and stage_time[3] <= e.occurred_at_ms,
                )
            )

    return stage_facts, order_facts, _carts(kept, start, user_at, dims, rules)


@dataclass
class _Cart:
    seq: int
    opened: int
    last: int
    status: CartStatus = CartStatus.OPEN
    closed: int | None = None
    recovered: int | None = None
    currency: str | None = None
    stage: Stage = Stage.ADD_TO_CART
    extra: Decimal = Decimal(0)
    qty: dict[str, int] = field(default_factory=dict)
    price: dict[str, Decimal] = field(default_factory=dict)


def _carts(
    kept: list[Event], start: int, user_at: list[str | None], dims: Dims, rules: FunnelRules
) -> set[CartChanged]:
    rows: set[CartChanged] = set()
    site, session = kept[0].site_id, kept[0].session_id
    cart: _Cart | None = None  # the latest cart, open or not

    def row(c: _Cart, status: CartStatus, user: str | None) -> None:
        c.status = status
        value = sum((c.price[k] * q for k, q in c.qty.items()), c.extra)
        items = tuple(Item(k, c.qty[k], c.price[k]) for k in sorted(c.qty))
        rows.add(
            CartChanged(
                site, session, start, user, dims, c.seq, status, c.opened, c.closed, c.recovered,
                value, c.currency, items, c.stage,
            )
        )  # fmt: skip

    for i, e in enumerate(kept):
        t = e.occurred_at_ms
        kind = e.event_type
        if cart and cart.status is CartStatus.OPEN and t >= cart.last + rules.abandonment_ms:
            cart.closed = cart.last + rules.abandonment_ms
            row(cart, CartStatus.ABANDONED, user_at[i - 1])  # i > 0: the cart's add came first
        open_cart = cart if cart and cart.status is CartStatus.OPEN else None
        if kind is EventType.ADD_TO_CART:
            if open_cart is None:
                open_cart = _Cart(seq=cart.seq + 1 if cart else 1, opened=t, last=t)
            open_cart.last = t
            open_cart.currency = open_cart.currency or e.currency
            for it in e.items:
                open_cart.qty[it.sku] = open_cart.qty.get(it.sku, 0) + it.quantity
                open_cart.price[it.sku] = it.price
            if not e.items and e.value is not None:
                open_cart.extra += e.value
            if open_cart is not cart:
                cart = open_cart
                row(cart, CartStatus.OPEN, user_at[i])
        elif kind is EventType.REMOVE_FROM_CART and open_cart:
            for it in e.items:
                if it.sku in open_cart.qty:
                    open_cart.qty[it.sku] -= it.quantity
                    if open_cart.qty[it.sku] <= 0:
                        del open_cart.qty[it.sku]
            if not e.items and e.value is not None:
                open_cart.extra = max(Decimal(0), open_cart.extra - e.value)
        elif kind is EventType.CHECKOUT and open_cart:
            open_cart.last = t
            open_cart.stage = Stage.CHECKOUT
        elif kind is EventType.PURCHASE and open_cart:
            open_cart.closed = t
            open_cart.stage = Stage.PURCHASE
            row(open_cart, CartStatus.CONVERTED, user_at[i])
        elif kind is EventType.PURCHASE and cart and cart.status is CartStatus.ABANDONED:
            cart.recovered = t
            cart.stage = Stage.PURCHASE
            row(cart, CartStatus.RECOVERED, user_at[i])
    if cart and cart.status is CartStatus.OPEN:
        cart.closed = cart.last + rules.abandonment_ms
        row(cart, CartStatus.ABANDONED, user_at[-1])
    return rows
