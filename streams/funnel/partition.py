"""The funnel of one Kafka partition: watermark, lateness, and when each session must be finalised.

Rules (the product definition, on top of those in ``session``):
- Watermark: the max occurred_at of the partition's own on-time events that are not future-dated
  (see ``watermark``): a storefront whose clock runs hours fast can neither make honest events
  late nor abandon carts early. Such an event is still accepted and counted at its own time.
- Limits: an event that would take its session past ``SessionLimits`` is CAPPED: not added to
  the session, but still evidence of time.
- Bound = watermark - lateness. An event with occurred_at < bound (watermark before the event) is
  LATE and changes nothing. Pending events before the bound are finalised at the end of each batch.
  Since no accepted event is ever before a bound already reached, the facts do not depend on where
  batches start and end.
- Idle partitions: ``tick(now_ms)`` is called by the caller every so often with the wall clock.
  A partition that received no events between two ticks at least ``idle_after_ms`` apart is idle,
  and its watermark moves to max(watermark, now - lateness). "No events" is judged between ticks,
  not from Kafka timestamps, so a consumer catching up on a backlog never counts as idle.
- Forwarded events (repartitioned from other source partitions, see ``progress``) arrive with
  their source's lateness verdict and do not move this partition's watermark. ``hold_ms`` caps
  the watermark sessions are finalised against (the slowest source's progress), so a forwarded
  event still on its way is never behind a finalised session. ``watermark_ms`` is that effective
  watermark: min(own watermark, hold).

Storage (see ``store``): session states live in a ``SessionStore``. Each touched session is
decoded at most once per batch and written (or deleted) at most once, at the end of the batch;
then the watermark, under ``WATERMARK_KEY``, once, after the sessions, so a crash in between
leaves a watermark that is older, never newer, than the sessions. A store holds ONE partition.
The funnel is the single writer of its store; if a call raises, discard the funnel and build a
new one from the store (it rebuilds its index from ``store.items()``).
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from schemas.event import Event
from streams.funnel.codec import decode_state
from streams.funnel.facts import Fact
from streams.funnel.rules import FunnelRules, SessionLimits
from streams.funnel.session import (
    SessionState,
    accept,
    close_bound,
    expired,
    finalise,
    id_hash,
    is_behind,
    is_duplicate,
    starts_anew,
    wake_after,
)
from streams.funnel.session_size import capped, event_bytes
from streams.funnel.store import (
    INTERNAL_PREFIX,
    WATERMARK_KEY,
    BatchView,
    SessionStore,
    WarmStates,
    session_key,
    split_key,
)
from streams.funnel.watermark import Watermark, is_future

_WATERMARK_FORMAT = 1
UNHELD = 2**62
"""``hold_ms`` of a partition no other source can forward to (the default)."""


class Outcome(enum.StrEnum):
    """What became of one consumed event; the value is the `outcome` metric label.

    The engine decides the first three; the worker decides the others before an event reaches
    the engine. One enum, so every label the metric can carry is listed here.
    """

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"
    CAPPED = "capped"  # not added: its session is at its size limits (stored raw, flagged)
    INVALID = "invalid"  # rejected by the decoder, dead-lettered
    REPARTITIONED = "repartitioned"  # read outside its session's partition, forwarded there
    REVOKED = "revoked"  # its partition moved away mid-batch; the new owner replays it


# Returned per event: in Python 3.11 a member read off its class costs ~5x a global.
_ACCEPTED, _DUPLICATE, _LATE, _CAPPED = (
    Outcome.ACCEPTED,
    Outcome.DUPLICATE,
    Outcome.LATE,
    Outcome.CAPPED,
)


@dataclass(frozen=True, slots=True)
class BatchResult:
    outcomes: tuple[Outcome, ...]  # one per input event, in input order
    facts: tuple[Fact, ...]
    watermark_ms: int | None
    sessions_written: int  # puts + deletes, for the store-writes metric
    sessions_expired: int


class PartitionFunnel:
    """Feed it one partition's events in offset order; it returns outcomes and final facts.

    ``warm_sessions`` bounds the LRU of decoded states kept between batches (about 2.5 KiB
    each) so that sessions active in consecutive batches are not decoded every time.
    """

    def __init__(
        self,
        store: SessionStore,
        rules: FunnelRules | None = None,
        *,
        limits: SessionLimits | None = None,
        warm_sessions: int = 1024,
    ) -> None:
        self._store = store
        self._rules = rules if rules is not None else FunnelRules()
        self._limits = limits if limits is not None else SessionLimits()
        self._warm = WarmStates(warm_sessions)
        self._own = Watermark(self._rules)
        self.hold_ms: int | None = UNHELD  # None: some source's progress is not known yet
        # Wake-up index: a session needs attention once the bound is past its wake time. The
        # heap may hold stale entries; the dict says which one is current (lazy deletion).
        self._wake: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._rebuild()

    @property
    def watermark_ms(self) -> int | None:
        own = self._own.value
        if own is None or self.hold_ms is None:
            return None
        return min(own, self.hold_ms)

    @property
    def open_sessions(self) -> int:
        return len(self._wake)

    def process_batch(
        self,
        events: Sequence[tuple[Event, int]],
        forwarded: Sequence[tuple[Event, bool]] = (),
    ) -> BatchResult:
        """Process (event, observed_ms) pairs in offset order, then forwarded
        (event, late_at_source) pairs; outcomes are in that order. ``observed_ms`` is the
        earlier of the Kafka timestamp and the worker's wall clock when it consumed the event."""
        if events or forwarded:
            self._own.saw_events()
        watermark_before = self._own.value
        batch = BatchView(self._store, self._warm)
        facts: list[Fact] = []
        offer, is_late = self._offer, self._own.is_late
        outcomes = [
            offer(batch, event, is_late(event.occurred_at_ms), facts, ts) for event, ts in events
        ]
        outcomes += [offer(batch, event, late, facts) for event, late in forwarded]
        return self._finish(batch, tuple(outcomes), facts, watermark_before)

    def tick(self, now_ms: int) -> BatchResult:
        """Let the wall clock advance the watermark of an idle partition (see module doc)."""
        watermark_before = self._own.value
        self._own.tick(now_ms)
        return self._finish(BatchView(self._store, self._warm), (), [], watermark_before)

    def _bound(self) -> int | None:
        """The bound sessions are finalised against: own bound, capped by the hold."""
        watermark = self.watermark_ms
        return None if watermark is None else watermark - self._rules.lateness_ms

    def _bound_after(self, event: Event, observed_ms: int | None) -> int | None:
        own = self._own.value
        t = event.occurred_at_ms
        if observed_ms is not None and not is_future(t, observed_ms, self._rules):
            own = t if own is None else max(own, t)
        if own is None or self.hold_ms is None:
            return None
        return min(own, self.hold_ms) - self._rules.lateness_ms

    def _offer(
        self,
        batch: BatchView,
        event: Event,
        late: bool,
        facts: list[Fact],
        observed_ms: int | None = None,
    ) -> Outcome:
        """``observed_ms`` is given for the partition's own events, which move its watermark."""
        rules = self._rules
        key = session_key(event.site_id, event.session_id)
        state = batch.get(key)
        floor = None
        if state is not None:
            after = self._bound_after(event, observed_ms)
            if starts_anew(state, event, rules) or (
                after is not None and expired(state, after, rules)
            ):
                # A reuse is decided by event times alone (not holds, ticks or partition
                # count). A state the bound this event brings expires is closed now too, so the
                # outcome (late, not duplicate) does not depend on where batches end.
                floor = close_bound(state, rules)
                facts += finalise(state, event.site_id, event.session_id, floor, rules)
                batch.expire(key)
                state = None
        digest = id_hash(event.event_id)
        if is_duplicate(state, digest):
            return _DUPLICATE
        t = event.occurred_at_ms
        bound = self._bound()
        if late or (bound is not None and t < bound) or is_behind(state, event):
            return _LATE
        size = event_bytes(event, with_dims=state is None or state.dims is None)
        outcome = _CAPPED
        if not capped(state, event, size, self._limits):
            batch.put(key, accept(state, event, digest, size, floor_ms=floor))
            outcome = _ACCEPTED
        if observed_ms is not None:
            self._own.advance(t, observed_ms)
        return outcome

    def _finish(
        self,
        batch: BatchView,
        outcomes: tuple[Outcome, ...],
        facts: list[Fact],
        watermark_before: int | None,
    ) -> BatchResult:
        for key, state in batch.changed():
            self._schedule(key, state)
        bound = self._bound()
        while bound is not None and self._heap and self._heap[0][0] < bound:
            wake, key = heapq.heappop(self._heap)
            if self._wake.get(key) != wake:
                continue  # stale entry
            state = batch.get(key)
            if state is None:
                raise RuntimeError(f"session {key!r} is indexed but missing from the store")
            site_id, session_id = split_key(key)
            facts += finalise(state, site_id, session_id, bound, self._rules)
            if expired(state, bound, self._rules):
                batch.expire(key)
                del self._wake[key]
            else:
                batch.put(key, state)
                self._schedule(key, state)
        written = batch.flush()
        if watermark_before != self._own.value:
            self._store.put(WATERMARK_KEY, orjson.dumps([_WATERMARK_FORMAT, self._own.value]))
        return BatchResult(outcomes, tuple(facts), self.watermark_ms, written, batch.expired)

    def _schedule(self, key: str, state: SessionState | None) -> None:
        if state is None:
            self._wake.pop(key, None)
            return
        wake = wake_after(state, self._rules)
        if self._wake.get(key) == wake:
            return
        self._wake[key] = wake
        heapq.heappush(self._heap, (wake, key))
        # Bound the stale entries: rebuild from the dict when they outnumber the live ones.
        if len(self._heap) > 2 * len(self._wake) + 64:
            self._heap = [(w, k) for k, w in self._wake.items()]
            heapq.heapify(self._heap)

    def _rebuild(self) -> None:
        for key, raw in self._store.items():
            if key == WATERMARK_KEY:
                version, watermark = orjson.loads(raw)
                if version != _WATERMARK_FORMAT:
                    raise ValueError(f"unknown watermark format version {version!r}")
                self._own.value = watermark
            elif not key.startswith(INTERNAL_PREFIX):
                self._schedule(key, decode_state(raw))
