"""Builds a session's facts with its identity, start, first touch and latest user id."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from streams.funnel import cart as carts
from streams.funnel.cart import Cart
from streams.funnel.facts import CartChanged, Dims, Fact, OrderPlaced, Stage, StageReached
from streams.funnel.rules import FunnelRules

if TYPE_CHECKING:
    from streams.funnel.session import Pending, SessionState


class Emitter:
    """Builds facts with the session's identity, first touch and latest user id."""

    __slots__ = ("facts", "session_id", "site_id", "state")

    def __init__(self, state: SessionState, site_id: str, session_id: str) -> None:
        self.state = state
        self.site_id = site_id
        self.session_id = session_id
        self.facts: list[Fact] = []

    @property
    def start_ms(self) -> int:
        # Set by finalise before any event is applied, so before any fact.
        assert self.state.start_ms is not None
        return self.state.start_ms

    @property
    def dims(self) -> Dims:
        # Facts only follow an applied event, and the first one set the first touch.
        assert self.state.dims is not None
        return self.state.dims

    def stage(self, stage: Stage, at_ms: int, time_to_convert_ms: int | None) -> None:
        self.facts.append(
            StageReached(
                site_id=self.site_id,
                session_id=self.session_id,
                session_start_ms=self.start_ms,
                user_id=self.state.user_id,
                dims=self.dims,
                stage=stage,
                reached_at_ms=at_ms,
                time_to_convert_ms=time_to_convert_ms,
            )
        )

    def order(self, event: Pending, order_id: str) -> None:
        s = self.state
        items_value = sum((i.price * i.quantity for i in event.items), Decimal(0))
        self.facts.append(
            OrderPlaced(
                site_id=self.site_id,
                session_id=self.session_id,
                session_start_ms=self.start_ms,
                user_id=s.user_id,
                dims=self.dims,
                order_id=order_id,
                occurred_at_ms=event.occurred_at_ms,
                value=items_value if event.value is None else event.value,
                currency=event.currency,
                item_count=sum(i.quantity for i in event.items),
                reached_checkout=s.stages[Stage.CHECKOUT - 1] is not None,
            )
        )

    def cart_row(self, cart: Cart) -> None:
        s = self.state
        self.facts.append(
            CartChanged(
                site_id=self.site_id,
                session_id=self.session_id,
                session_start_ms=self.start_ms,
                user_id=s.user_id,
                dims=self.dims,
                cart_seq=cart.seq,
                status=cart.status,
                opened_at_ms=cart.opened_at_ms,
                closed_at_ms=cart.closed_at_ms,
                recovered_at_ms=cart.recovered_at_ms,
                value=cart.value,
                currency=cart.currency,
                items=cart.item_tuple(),
                last_stage=cart.last_stage,
            )
        )

    def abandon_if_due(self, now_ms: int, rules: FunnelRules) -> None:
        cart = self.state.cart
        if cart is not None and carts.abandon_if_due(cart, now_ms, rules.abandonment_ms):
            self.cart_row(cart)
