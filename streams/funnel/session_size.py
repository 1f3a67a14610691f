"""How much a session holds, against ``SessionLimits``: what makes a session capped.

Counted as events are accepted (``session.accept``) and kept in the state, so the check costs
nothing per event beyond the event's own estimate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.event import Event
from streams.funnel.rules import SessionLimits

if TYPE_CHECKING:
    from streams.funnel.session import SessionState


def event_bytes(event: Event, *, with_dims: bool) -> int:
    """Upper estimate of what accepting the event adds to the encoded state, in bytes.

    Counts its remembered id, its pending entry (later its cart lines, never larger) and, while
    the session has no first touch yet, its dims. Strings count twice their UTF-8 size, a margin
    for JSON escapes.
    """
    size = 64 + _text(event.event_id) + _text(event.user_id) + _text(event.order_id)
    if event.value is not None:
        size += 24
    for line in event.items:
        size += 40 + _text(line.sku)
    if with_dims:
        size += sum(
            _text(text)
            for text in (
                event.utm_source,
                event.utm_medium,
                event.utm_campaign,
                event.country,
                event.variant,
            )
        )
    return size


def _text(text: str | None) -> int:
    return 0 if text is None else 2 * len(text.encode()) + 2


def capped(state: SessionState | None, event: Event, limits: SessionLimits) -> bool:
    """True if accepting the event would take the session past one of its limits."""
    if state is None:  # a new session: only the event itself counts
        events = item_lines = pending = state_bytes = 0
        with_dims = True
    else:
        events, item_lines, pending = state.events, state.item_lines, len(state.pending)
        state_bytes, with_dims = state.state_bytes, state.dims is None
    return (
        events + 1 > limits.max_events
        or item_lines + len(event.items) > limits.max_item_lines
        or pending + 1 > limits.max_pending
        or state_bytes + event_bytes(event, with_dims=with_dims) > limits.max_state_bytes
    )
