"""Cart-abandonment state machine of one session, fed finalised events in event-time order.

Rules (the product definition):
- A cart opens at an add_to_cart while no cart is open; carts are numbered 1, 2, ... per session.
- Activity = add_to_cart, checkout or purchase. remove_from_cart changes the items and value but
  is NOT activity: it does not push the abandonment deadline.
- An open cart closes as CONVERTED at the first purchase, or as ABANDONED at last activity + T when
  no activity happened before then. An event at exactly last activity + T comes after the
  abandonment.
- A purchase after abandonment, while no newer cart is open, marks the cart RECOVERED.
- An add_to_cart after a close opens a new cart.
- Value = sum(price x quantity) of the cart's items plus the ``value`` of item-less add_to_cart
  events (minus that of item-less remove_from_cart events); quantities and the item-less amount
  are floored at 0. An item's price is the one of its latest add. The currency is the first one an
  add_to_cart names.

Functions mutate the ``Cart`` they are given and say whether its status changed, so the caller
emits one row per transition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from schemas.event import Item
from streams.funnel.facts import CartStatus, Stage

ZERO = Decimal(0)
# Read per finalised event: in Python 3.11 a member read off its class costs ~5x a global.
_OPEN = CartStatus.OPEN


@dataclass(slots=True)
class Cart:
    seq: int
    status: CartStatus
    opened_at_ms: int
    last_activity_ms: int
    last_stage: Stage = Stage.ADD_TO_CART
    closed_at_ms: int | None = None
    recovered_at_ms: int | None = None
    currency: str | None = None
    loose_value: Decimal = ZERO
    # sku -> (quantity, unit price)
    items: dict[str, tuple[int, Decimal]] = field(default_factory=dict)

    @property
    def value(self) -> Decimal:
        return sum((price * qty for qty, price in self.items.values()), self.loose_value)

    def item_tuple(self) -> tuple[Item, ...]:
        return tuple(Item(sku, qty, price) for sku, (qty, price) in sorted(self.items.items()))


def abandonment_deadline(cart: Cart | None, abandonment_ms: int) -> int | None:
    """Event time at which the cart is abandoned if nothing happens first; None if not open."""
    if cart is None or cart.status is not _OPEN:
        return None
    return cart.last_activity_ms + abandonment_ms


def abandon_if_due(cart: Cart | None, now_ms: int, abandonment_ms: int) -> bool:
    """Abandon the open cart if event time ``now_ms`` has reached its deadline."""
    deadline = abandonment_deadline(cart, abandonment_ms)
    if cart is None or deadline is None or now_ms < deadline:
        return False
    cart.status = CartStatus.ABANDONED
    cart.closed_at_ms = deadline
    return True


def add_to_cart(
    cart: Cart | None,
    now_ms: int,
    items: tuple[Item, ...],
    value: Decimal | None,
    currency: str | None,
) -> tuple[Cart, bool]:
    """Apply an add_to_cart; returns the (possibly new) cart and whether it was just opened."""
    if cart is None or cart.status is not _OPEN:
        seq = 1 if cart is None else cart.seq + 1
        cart = Cart(seq=seq, status=CartStatus.OPEN, opened_at_ms=now_ms, last_activity_ms=now_ms)
        opened = True
    else:
        cart.last_activity_ms = now_ms
        opened = False
    if cart.currency is None:
        cart.currency = currency
    if items:
        for item in items:
            qty, _ = cart.items.get(item.sku, (0, item.price))
            cart.items[item.sku] = (qty + item.quantity, item.price)
    elif value is not None:
        cart.loose_value += value
    return cart, opened


def remove_from_cart(cart: Cart | None, items: tuple[Item, ...], value: Decimal | None) -> None:
    """Take items (or an item-less amount) out of the open cart; not activity."""
    if cart is None or cart.status is not CartStatus.OPEN:
        return
    if items:
        for item in items:
            held = cart.items.get(item.sku)
            if held is None:
                continue
            left = held[0] - item.quantity
            if left > 0:
                cart.items[item.sku] = (left, held[1])
            else:
                del cart.items[item.sku]
    elif value is not None:
        cart.loose_value = max(ZERO, cart.loose_value - value)


def checkout(cart: Cart | None, now_ms: int) -> None:
    if cart is None or cart.status is not CartStatus.OPEN:
        return
    cart.last_activity_ms = now_ms
    cart.last_stage = Stage.CHECKOUT


def purchase(cart: Cart, now_ms: int) -> bool:
    """Convert the open cart, or recover the abandoned one; True if the status changed."""
    if cart.status is CartStatus.OPEN:
        cart.status = CartStatus.CONVERTED
        cart.closed_at_ms = now_ms
    elif cart.status is CartStatus.ABANDONED:
        cart.status = CartStatus.RECOVERED
        cart.recovered_at_ms = now_ms
    else:
        return False
    cart.last_activity_ms = now_ms
    cart.last_stage = Stage.PURCHASE
    return True
