"""Small helpers shared by the funnel tests: event builder, dict-backed store, run-to-the-end."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from schemas.event import Event, EventType, Item
from streams.funnel.facts import CartChanged, Fact, OrderPlaced, Stage, StageReached
from streams.funnel.partition import PartitionFunnel
from streams.funnel.rules import MINUTE_MS, FunnelRules
from streams.funnel.session import SessionState, accept, id_hash
from streams.funnel.session_size import event_bytes
from streams.funnel.store import DictStore

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
RULES = FunnelRules()
DAY_MS = 24 * 60 * MINUTE_MS
_ids = itertools.count()

PV = EventType.PAGE_VIEW
ADD = EventType.ADD_TO_CART
REMOVE = EventType.REMOVE_FROM_CART
CHECKOUT = EventType.CHECKOUT
BUY = EventType.PURCHASE


def ev(kind: EventType, at_ms: int, **fields: Any) -> Event:
    """An event of session s1/x at ``at_ms``; any Event field can be overridden."""
    fields.setdefault("event_id", f"e{next(_ids)}")
    fields.setdefault("site_id", "s1")
    fields.setdefault("session_id", "x")
    return Event(event_type=kind, occurred_at_ms=at_ms, **fields)


def item(sku: str, quantity: int = 1, price: str = "10") -> Item:
    return Item(sku, quantity, Decimal(price))


def accept_event(state: SessionState | None, event: Event) -> SessionState:
    """``session.accept`` given the id digest and size the partition works out first."""
    size = event_bytes(event, with_dims=state is None or state.dims is None)
    return accept(state, event, id_hash(event.event_id), size)


def flush(funnel: PartitionFunnel, now_ms: int, rules: FunnelRules = RULES) -> list[Fact]:
    """Two ticks idle_after apart, far after everything: finalises and expires all sessions."""
    facts = list(funnel.tick(now_ms).facts)
    facts += funnel.tick(now_ms + rules.idle_after_ms).facts
    return facts


def run(events: Sequence[Event], rules: FunnelRules = RULES) -> list[Fact]:
    """Deliver in the given order (Kafka timestamp = occurred_at), one batch, then flush."""
    funnel = PartitionFunnel(DictStore(), rules)
    facts = list(funnel.process_batch([(e, e.occurred_at_ms) for e in events]).facts)
    end = max(e.occurred_at_ms for e in events)
    return facts + flush(funnel, end + rules.retention_ms + 10 * DAY_MS, rules)


def stage_times(facts: Iterable[Fact]) -> dict[Stage, int]:
    return {f.stage: f.reached_at_ms for f in facts if isinstance(f, StageReached)}


def orders(facts: Iterable[Fact]) -> list[OrderPlaced]:
    return [f for f in facts if isinstance(f, OrderPlaced)]


def carts(facts: Iterable[Fact]) -> list[CartChanged]:
    return [f for f in facts if isinstance(f, CartChanged)]
