"""The tunable numbers of the funnel, in one frozen object built once at the edge.

All durations are milliseconds of event time, except ``idle_after_ms`` which is wall-clock time
(the only rule the wall clock takes part in, see ``PartitionFunnel.tick``).

- ``conversion_window_ms`` (W, 24 h): a stage after the first counts only if it happens at most W
  after the session's first page view.
- ``lateness_ms`` (L, 5 min): events up to L behind the partition watermark are still accepted and
  give exactly the in-order result; older ones are LATE and change nothing.
- ``abandonment_ms`` (T, 30 min): an open cart with no add-to-cart, checkout or purchase for T of
  event time is ABANDONED at last activity + T.
- ``max_skew_ms`` (1 min): how far an event's own clock may run ahead of what the worker observed
  (the earlier of its Kafka timestamp and the worker's wall clock at consumption) before it is
  flagged future-dated and no longer moves the watermark. Producers set Kafka timestamps from
  their own clocks, so the worker's clock is what bounds one fast storefront.
- ``idle_after_ms`` (30 s): a partition that received nothing for this much wall-clock time lets
  the wall clock advance its watermark, so quiet shops still finalise and abandon carts.
- ``expiry_margin_ms`` (1 h): extra time a session's state is kept after max(W, T) past its last
  event; it is the dedup horizon beyond the conversion window.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class FunnelRules:
    conversion_window_ms: int = 24 * HOUR_MS
    lateness_ms: int = 5 * MINUTE_MS
    abandonment_ms: int = 30 * MINUTE_MS
    max_skew_ms: int = MINUTE_MS
    idle_after_ms: int = 30_000
    expiry_margin_ms: int = HOUR_MS
    # How long after its last event a session's state is kept (then it expires). Derived, and
    # worked out once: the engine reads it a few times per event.
    retention_ms: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_ints(self, "milliseconds")
        for name in ("conversion_window_ms", "abandonment_ms", "idle_after_ms"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be > 0")
        retention = max(self.conversion_window_ms, self.abandonment_ms) + self.expiry_margin_ms
        object.__setattr__(self, "retention_ms", retention)


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """What one session may hold, so no session can outgrow a changelog record (1 MiB).

    Past any limit the session is CAPPED: a further new event is stored raw, flagged and counted,
    but not added to the session (ids already accepted still deduplicate).

    - ``max_events``: events accepted into the session over its life.
    - ``max_item_lines``: item lines over the session's accepted events (an upper bound of its
      distinct cart lines).
    - ``max_pending``: accepted events waiting for the watermark at once.
    - ``max_state_bytes``: a conservative estimate of the encoded state, summed over accepted
      events and never decreased (see ``session.event_bytes``).
    """

    max_events: int = 5_000
    max_item_lines: int = 1_000
    max_pending: int = 2_000
    max_state_bytes: int = 512 * 1024

    def __post_init__(self) -> None:
        _check_ints(self, "a count")
        for f in fields(self):
            if getattr(self, f.name) == 0:
                raise ValueError(f"{f.name} must be > 0")


def _check_ints(obj: Any, unit: str) -> None:
    for f in fields(obj):
        if not f.init:
            continue  # derived from the others
        value = getattr(obj, f.name)
        # bool is an int subclass; True as a duration or a count is always a mistake.
        if type(value) is not int:
            raise TypeError(f"{f.name} must be an int of {unit}, got {value!r}")
        if value < 0:
            raise ValueError(f"{f.name} must be >= 0, got {value}")
