"""Reference funnel: the product definitions computed the slow, obvious way, as a batch.

Written apart from the engine on purpose (it shares only the Event and fact types): the property
tests check that the streaming engine, whatever the delivery order, batching and restarts, ends
with exactly these facts. Input: every event that should count (each session's events may repeat;
only the first copy of an event_id counts). Everything is taken as final.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
        s, o, c = _session(list(unique.values()), rules)
        stages |= s
        orders |= o
        carts |= c
    return Expected(frozenset(stages), frozenset(orders), frozenset(carts))


def _session(
    events: list[Event], rules: FunnelRules
) -> tuple[set[StageReached], set[OrderPlaced], set[CartChanged]]:
    events.sort(key=lambda e: (e.occurred_at_ms, FUNNEL_ORDER.index(e.event_type), e.event_id))
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
                i for i, e in enumerate(kept) if e.event_type is kind and lo <= e.occurred_at_ms <= hi
            ]
        else:
            hits = []
        if not hits:
            break
        i = hits[0]
        t = kept[i].occurred_at_ms
        stage_time[number] = t
        ttc = t - stage_time[1] if number == 4 else None
        stage_facts.add(StageReached(site, session, user_at[i], dims, Stage(number), t, ttc))

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

    return stage_facts, order_facts, _carts(kept, user_at, dims, rules)


def _carts(
    kept: list[Event], user_at: list[str | None], dims: Dims, rules: FunnelRules
) -> set[CartChanged]:
    rows: set[CartChanged] = set()
    site, session = kept[0].site_id, kept[0].session_id
    seq = 0
    cart: dict[str, object] | None = None  # the latest cart, open or not
    qty: dict[str, int] = {}
    price: dict[str, Decimal] = {}
    extra = Decimal(0)

    def row(status: CartStatus, user: str | None) -> None:
        assert cart is not None
        cart["status"] = status
        rows.add(
            CartChanged(
                site,
                session,
                user,
                dims,
                seq,
                status,
                cart["opened"],  # type: ignore[arg-type]
                cart.get("closed"),  # type: ignore[arg-type]
                cart.get("recovered"),  # type: ignore[arg-type]
                sum((price[k] * q for k, q in qty.items()), extra),
                cart["currency"],  # type: ignore[arg-type]
                tuple(Item(k, qty[k], price[k]) for k in sorted(qty)),
                cart["stage"],  # type: ignore[arg-type]
            )
        )

    for i, e in enumerate(kept):
        t = e.occurred_at_ms
        before = user_at[i - 1] if i else None
        is_open = cart is not None and cart["status"] is CartStatus.OPEN
        if cart is not None and is_open and t >= cart["last"] + rules.abandonment_ms:  # type: ignore[operator]
            cart["closed"] = cart["last"] + rules.abandonment_ms  # type: ignore[operator]
            row(CartStatus.ABANDONED, before)
            is_open = False
        kind = e.event_type
        if kind is EventType.ADD_TO_CART:
            if not is_open:
                seq += 1
                cart = {"opened": t, "currency": None, "stage": Stage.ADD_TO_CART}
                qty, price, extra = {}, {}, Decimal(0)
            assert cart is not None
            cart["last"] = t
            if cart["currency"] is None:
                cart["currency"] = e.currency
            for it in e.items:
                qty[it.sku] = qty.get(it.sku, 0) + it.quantity
                price[it.sku] = it.price
            if not e.items and e.value is not None:
                extra += e.value
            if not is_open:
                row(CartStatus.OPEN, user_at[i])
        elif kind is EventType.REMOVE_FROM_CART and is_open:
            for it in e.items:
                if it.sku in qty:
                    qty[it.sku] -= it.quantity
                    if qty[it.sku] <= 0:
                        del qty[it.sku]
            if not e.items and e.value is not None:
                extra = max(Decimal(0), extra - e.value)
        elif kind is EventType.CHECKOUT and is_open:
            assert cart is not None
            cart["last"] = t
            cart["stage"] = Stage.CHECKOUT
        elif kind is EventType.PURCHASE and cart is not None:
            if is_open:
                cart["closed"] = t
                cart["stage"] = Stage.PURCHASE
                row(CartStatus.CONVERTED, user_at[i])
            elif cart["status"] is CartStatus.ABANDONED:
                cart["recovered"] = t
                cart["stage"] = Stage.PURCHASE
                row(CartStatus.RECOVERED, user_at[i])
    if cart is not None and cart["status"] is CartStatus.OPEN:
        cart["closed"] = cart["last"] + rules.abandonment_ms  # type: ignore[operator]
        row(CartStatus.ABANDONED, user_at[-1])
    return rows
