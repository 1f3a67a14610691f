"""The funnel of one Kafka partition: watermark, lateness, and when each session must be finalised.

Rules (the product definition, on top of those in ``session``):
- Watermark: the max, over accepted events, of min(occurred_at, kafka_timestamp + max_skew). The
  cap stops one future-dated event from making everything after it late.
- Bound = watermark - lateness. An event with occurred_at < bound (watermark before the event) is
  LATE and changes nothing. Pending events before the bound are finalised at the end of each batch.
  Since no accepted event is ever before a bound already reached, the facts do not depend on where
  batches start and end.
- Idle partitions: ``tick(now_ms)`` is called by the caller every so often with the wall clock.
  A partition that received no events between two ticks at least ``idle_after_ms`` apart is idle,
  and its watermark moves to max(watermark, now - lateness). "No events" is judged between ticks,
  not from Kafka timestamps, so a consumer catching up on a backlog never counts as idle.

Storage: session states live in a ``SessionStore`` (the Faust layer backs it with a changelogged
table). Each touched session is decoded at most once per batch and written (or deleted) at most
once, at the end of the batch; then the watermark, under ``WATERMARK_KEY``, once, after the
sessions, so a crash in between leaves a watermark that is older, never newer, than the sessions.
A store holds ONE partition: the watermark key is the same in every partition.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson

from schemas.event import Event
from streams.funnel.codec import decode_state, encode_state
from streams.funnel.facts import Fact
from streams.funnel.rules import FunnelRules
from streams.funnel.session import (
    SessionState,
    accept,
    expired,
    finalise,
    is_behind,
    is_duplicate,
    wake_after,
)

# Session keys start with a digit (see session_key), so this can never clash with one.
WATERMARK_KEY = "\x00watermark"
_WATERMARK_FORMAT = 1


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    LATE = "late"


class SessionStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def items(self) -> Iterable[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class BatchResult:
    outcomes: tuple[Outcome, ...]  # one per input event, in input order
    facts: tuple[Fact, ...]
    watermark_ms: int | None
    sessions_written: int  # puts + deletes, for the store-writes metric
    sessions_expired: int


def session_key(site_id: str, session_id: str) -> str:
    """Length-prefixed so any site or session id round-trips through ``split_key``."""
    return f"{len(site_id)}:{site_id}{session_id}"


def split_key(key: str) -> tuple[str, str]:
    length, _, rest = key.partition(":")
    n = int(length)
    return rest[:n], rest[n:]


class PartitionFunnel:
    """Feed it one partition's events in offset order; it returns outcomes and final facts."""

    def __init__(self, store: SessionStore, rules: FunnelRules | None = None) -> None:
        self._store = store
        self._rules = rules if rules is not None else FunnelRules()
        self._watermark: int | None = None
        self._idle_since: int | None = None
        # Wake-up index: a session needs attention once the bound is past its wake time. The
        # heap may hold stale entries; the dict says which one is current (lazy deletion).
        self._wake: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._rebuild()

    @property
    def watermark_ms(self) -> int | None:
        return self._watermark

    @property
    def open_sessions(self) -> int:
        return len(self._wake)

    def process_batch(self, events: Sequence[tuple[Event, int]]) -> BatchResult:
        """Process (event, kafka_timestamp_ms) pairs in offset order."""
        if events:
            self._idle_since = None
        watermark_before = self._watermark
        batch = _Batch(self._store)
        facts: list[Fact] = []
        outcomes = tuple(self._offer(batch, event, ts, facts) for event, ts in events)
        return self._finish(batch, outcomes, facts, watermark_before)

    def tick(self, now_ms: int) -> BatchResult:
        """Let the wall clock advance the watermark of an idle partition (see module doc)."""
        watermark_before = self._watermark
        if self._idle_since is None:
            self._idle_since = now_ms
        elif now_ms - self._idle_since >= self._rules.idle_after_ms:
            target = now_ms - self._rules.lateness_ms
            if self._watermark is None or target > self._watermark:
                self._watermark = target
        return self._finish(_Batch(self._store), (), [], watermark_before)

    def _bound(self) -> int | None:
        return None if self._watermark is None else self._watermark - self._rules.lateness_ms

    def _offer(self, batch: _Batch, event: Event, kafka_ts: int, facts: list[Fact]) -> Outcome:
        key = session_key(event.site_id, event.session_id)
        state = batch.get(key)
        bound = self._bound()
        if state is not None and bound is not None and expired(state, bound, self._rules):
            # Expire now rather than at the end of the batch, so that a reused session id
            # starts a new session whatever the batch boundaries.
            facts += finalise(state, event.site_id, event.session_id, bound, self._rules)
            batch.expire(key)
            state = None
        if is_duplicate(state, event):
            return Outcome.DUPLICATE
        t = event.occurred_at_ms
        if (bound is not None and t < bound) or is_behind(state, event):
            return Outcome.LATE
        batch.put(key, accept(state, event))
        mark = min(t, kafka_ts + self._rules.max_skew_ms)
        if self._watermark is None or mark > self._watermark:
            self._watermark = mark
        return Outcome.ACCEPTED

    def _finish(
        self,
        batch: _Batch,
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
        if watermark_before != self._watermark:
            self._store.put(WATERMARK_KEY, orjson.dumps([_WATERMARK_FORMAT, self._watermark]))
        return BatchResult(outcomes, tuple(facts), self._watermark, written, batch.expired)

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
                self._watermark = watermark
            else:
                self._schedule(key, decode_state(raw))


class _Batch:
    """Sessions read and changed during one batch: decoded once, written back once."""

    def __init__(self, store: SessionStore) -> None:
        self._store = store
        self._cache: dict[str, SessionState | None] = {}
        self._stored: set[str] = set()
        self._dirty: dict[str, None] = {}  # insertion-ordered set: deterministic write order
        self.expired = 0

    def get(self, key: str) -> SessionState | None:
        if key not in self._cache:
            raw = self._store.get(key)
            if raw is not None:
                self._stored.add(key)
            self._cache[key] = None if raw is None else decode_state(raw)
        return self._cache[key]

    def put(self, key: str, state: SessionState) -> None:
        self._cache[key] = state
        self._dirty[key] = None

    def expire(self, key: str) -> None:
        self._cache[key] = None
        self._dirty[key] = None
        self.expired += 1

    def changed(self) -> list[tuple[str, SessionState | None]]:
        return [(key, self._cache[key]) for key in self._dirty]

    def flush(self) -> int:
        writes = 0
        for key in self._dirty:
            state = self._cache[key]
            if state is not None:
                self._store.put(key, encode_state(state))
                writes += 1
            elif key in self._stored:
                self._store.delete(key)
                writes += 1
        return writes
