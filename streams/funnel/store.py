"""Where session states live between batches, and how one batch reads and writes them.

``SessionStore`` is the contract the Faust layer implements over a changelogged table (and tests
over a dict). Every write to it costs a changelog record, so a batch decodes each session it
touches at most once, and writes (or deletes) each changed session exactly once, at the end.

Decoded states of recently touched sessions are also kept in a small LRU (``WarmStates``) so that
a session active in consecutive batches is not decoded again every batch. This is only correct
while the funnel is the single writer of its store: build a new funnel (and cache) after a
rebalance or a restore.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Protocol

from streams.funnel.codec import decode_state, encode_state
from streams.funnel.session import SessionState

# Session keys start with a digit (see session_key), so internal keys can never clash with one.
INTERNAL_PREFIX = "\x00"
WATERMARK_KEY = INTERNAL_PREFIX + "watermark"
PROGRESS_KEY = INTERNAL_PREFIX + "progress"


class SessionStore(Protocol):
    """One partition's states; the watermark key is the same in every partition."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...

    def items(self) -> Iterable[tuple[str, bytes]]: ...


class DictStore:
    """`SessionStore` over a plain dict, for the benchmark and tests: the worker's table is a
    dict in memory too. Counts writes as the changelog would."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.writes = 0

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self.data[key] = value
        self.writes += 1

    def delete(self, key: str) -> None:
        del self.data[key]
        self.writes += 1

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self.data.items()))


def session_key(site_id: str, session_id: str) -> str:
    """Length-prefixed so any site or session id round-trips through ``split_key``."""
    return f"{len(site_id)}:{site_id}{session_id}"


def split_key(key: str) -> tuple[str, str]:
    length, _, rest = key.partition(":")
    n = int(length)
    return rest[:n], rest[n:]


class WarmStates:
    """LRU of decoded states that match the store, as of the end of the last batch."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self._capacity = capacity
        self._states: OrderedDict[str, SessionState] = OrderedDict()

    def take(self, key: str) -> SessionState | None:
        # Taken out while a batch mutates it: if the batch fails, the store's copy is used next.
        return self._states.pop(key, None)

    def give_back(self, key: str, state: SessionState | None) -> None:
        if state is None or self._capacity == 0:
            return
        self._states[key] = state
        if len(self._states) > self._capacity:
            self._states.popitem(last=False)


class BatchView:
    """Sessions read and changed during one batch: decoded once, written back once."""

    def __init__(self, store: SessionStore, warm: WarmStates) -> None:
        self._store = store
        self._warm = warm
        self._states: dict[str, SessionState | None] = {}
        self._stored: set[str] = set()
        self._dirty: dict[str, None] = {}  # insertion-ordered set: deterministic write order
        self.expired = 0

    def get(self, key: str) -> SessionState | None:
        if key not in self._states:
            state = self._warm.take(key)
            if state is None:
                raw = self._store.get(key)
                state = None if raw is None else decode_state(raw)
            if state is not None:
                self._stored.add(key)
            self._states[key] = state
        return self._states[key]

    def put(self, key: str, state: SessionState) -> None:
        self._states[key] = state
        self._dirty[key] = None

    def expire(self, key: str) -> None:
        self._states[key] = None
        self._dirty[key] = None
        self.expired += 1

    def changed(self) -> list[tuple[str, SessionState | None]]:
        return [(key, self._states[key]) for key in self._dirty]

    def flush(self) -> int:
        """Write every changed session once; returns the number of store writes."""
        writes = 0
        for key in self._dirty:
            state = self._states[key]
            if state is not None:
                self._store.put(key, encode_state(state))
                writes += 1
            elif key in self._stored:
                self._store.delete(key)
                writes += 1
        for key, state in self._states.items():
            self._warm.give_back(key, state)
        return writes
