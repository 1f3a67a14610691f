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
    size = 64 + _texts(event.event_id, event.user_id, event.order_id)
    if event.value is not None:
        size += 24
    for line in event.items:
        size += 40 + _texts(line.sku)
    if with_dims:
        size += _texts(
            event.utm_source, event.utm_medium, event.utm_campaign, event.country, event.variant
        )
    return size


def _texts(*texts: str | None) -> int:
    size = 0
    for text in texts:
        if text is not None:
            # An ASCII string's length is its UTF-8 size: no need to encode it.
            size += 2 * (len(text) if text.isascii() else len(text.encode())) + 2
    return size


def capped(state: SessionState | None, event: Event, size: int, limits: SessionLimits) -> bool:
    """True if accepting the event would take the session past one of its limits.

    ``size``: the event's ``event_bytes`` against this state (with dims while it has none).
    """
    if state is None:  # a new session: only the event itself counts
        events = item_lines = pending = state_bytes = 0
    else:
        events, item_lines, pending = state.events, state.item_lines, len(state.pending)
        state_bytes = state.state_bytes
    return (
        events + 1 > limits.max_events
        or item_lines + len(event.items) > limits.max_item_lines
        or pending + 1 > limits.max_pending
        or state_bytes + size > limits.max_state_bytes
    )
