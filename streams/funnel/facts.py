"""What the funnel engine emits: immutable facts, each emitted once, on finalisation.

Every fact carries the session (site_id, session_id, session_start_ms), the latest user_id known
from the session's finalised events up to the fact's own event time, and the session's first-touch
``Dims``.

Identities (what a downstream upsert table keys on):
- ``StageReached``: (site_id, session_id, session_start_ms, stage). Once per session and stage.
- ``OrderPlaced``: (site_id, order_id). A purchase counts as an order even without a checkout.
- ``CartChanged``: (site_id, session_id, session_start_ms, cart_seq), with ``status`` as the row
  version: every transition emits the full cart row, and the int value of ``CartStatus`` only
  grows along any path (OPEN -> CONVERTED, OPEN -> ABANDONED -> RECOVERED).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from schemas.event import Device, Event, EventType, Item


class Stage(enum.IntEnum):
    PAGE_VIEW = 1
    ADD_TO_CART = 2
    CHECKOUT = 3
    PURCHASE = 4


# The event type whose earliest in-window occurrence reaches each stage.
STAGE_OF_EVENT: dict[EventType, Stage] = {
    EventType.PAGE_VIEW: Stage.PAGE_VIEW,
    EventType.ADD_TO_CART: Stage.ADD_TO_CART,
    EventType.CHECKOUT: Stage.CHECKOUT,
    EventType.PURCHASE: Stage.PURCHASE,
}


class CartStatus(enum.IntEnum):
    """The value is the row version: it increases with every transition of one cart."""

    OPEN = 1
    ABANDONED = 2
    CONVERTED = 3
    RECOVERED = 4


@dataclass(frozen=True, slots=True)
class Dims:
    """Attribution dimensions of a session: those of its first finalised event (first touch)."""

    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    device: str | None = None
    country: str | None = None
    variant: str | None = None


# The values of a ``Dims``, in its field order: what a pending event keeps until it is final.
DimsValues = tuple[str | None, str | None, str | None, str | None, str | None, str | None]


def dims_values(event: Event) -> DimsValues:
    """The event's attribution dimensions; ``Dims(*dims_values(event))`` is its first touch."""
    return (
        event.utm_source,
        event.utm_medium,
        event.utm_campaign,
        _DEVICE_VALUE[event.device],
        event.country,
        event.variant,
    )


# A dict, not ``device.value``: an enum's value is a property, ten times slower to read.
_DEVICE_VALUE: dict[Device | None, str | None] = {None: None} | {d: d.value for d in Device}


@dataclass(frozen=True, slots=True)
class StageReached:
    site_id: str
    session_id: str
    session_start_ms: int  # tells sessions that reuse one session_id apart
    user_id: str | None
    dims: Dims
    stage: Stage
    reached_at_ms: int
    # PAGE_VIEW -> PURCHASE duration; set on the PURCHASE stage only.
    time_to_convert_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    site_id: str
    session_id: str
    session_start_ms: int  # tells sessions that reuse one session_id apart
    user_id: str | None
    dims: Dims
    order_id: str
    occurred_at_ms: int
    value: Decimal
    currency: str | None
    item_count: int
    # Whether the session had reached CHECKOUT (in its window) at or before this purchase.
    reached_checkout: bool


@dataclass(frozen=True, slots=True)
class CartChanged:
    site_id: str
    session_id: str
    session_start_ms: int  # tells sessions that reuse one session_id apart
    user_id: str | None
    dims: Dims
    cart_seq: int
    status: CartStatus
    opened_at_ms: int
    # converted_at for CONVERTED, abandoned_at for ABANDONED and RECOVERED, None while OPEN.
    closed_at_ms: int | None
    recovered_at_ms: int | None
    value: Decimal
    currency: str | None
    items: tuple[Item, ...]
    # Furthest step this cart got to: ADD_TO_CART, CHECKOUT (a checkout while it was open) or
    # PURCHASE (converted or recovered).
    last_stage: Stage


Fact = StageReached | OrderPlaced | CartChanged
