"""The validated, normalised storefront event: what every agent downstream of the decoder sees."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class EventType(enum.StrEnum):
    PAGE_VIEW = "page_view"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    CHECKOUT = "checkout"
    PURCHASE = "purchase"


class Device(enum.StrEnum):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    quantity: int
    price: Decimal

    def as_json(self) -> dict[str, Any]:
        """The contract's form of a cart line: the price as a decimal string, never a float."""
        return {"sku": self.sku, "quantity": self.quantity, "price": str(self.price)}


@dataclass(frozen=True, slots=True)
class Event:
    """One accepted event. Times are epoch milliseconds, UTC."""

    event_id: str
    event_type: EventType
    occurred_at_ms: int
    site_id: str
    session_id: str
    user_id: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    referrer: str | None = None
    device: Device | None = None
    country: str | None = None
    variant: str | None = None
    page: str | None = None
    items: tuple[Item, ...] = ()
    value: Decimal | None = None
    currency: str | None = None
    order_id: str | None = None
    cart_id: str | None = None
