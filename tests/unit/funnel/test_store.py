"""Session keys, the warm-state LRU and the one-write-per-batch view."""

import pytest

from streams.funnel.session import SessionState
from streams.funnel.store import (
    WATERMARK_KEY,
    BatchView,
    DictStore,
    WarmStates,
    session_key,
    split_key,
)


def test_session_keys_round_trip_whatever_the_ids() -> None:
    for site, session in [("s1", "x"), ("a:b", "1:c"), ("", ""), ("12", ":")]:
        assert split_key(session_key(site, session)) == (site, session)
    assert not session_key("s", "x").startswith(WATERMARK_KEY[0])


def test_warm_states_evict_the_least_recently_given_back() -> None:
    warm = WarmStates(capacity=2)
    states = {k: SessionState(last_event_ms=i) for i, k in enumerate("abc")}
    for key, state in states.items():
        warm.give_back(key, state)
    assert warm.take("a") is None
    assert warm.take("b") is states["b"]
    assert warm.take("b") is None  # taken out while in use


def test_zero_capacity_keeps_nothing() -> None:
    warm = WarmStates(capacity=0)
    warm.give_back("a", SessionState(last_event_ms=0))
    assert warm.take("a") is None
    with pytest.raises(ValueError, match="capacity"):
        WarmStates(capacity=-1)


def test_batch_view_writes_changed_sessions_once_and_deletes_only_stored_ones() -> None:
    store = DictStore()
    view = BatchView(store, WarmStates(0))
    state = SessionState(last_event_ms=1)
    view.put("k", state)
    view.put("k", state)
    view.put("gone", state)
    view.expire("gone")  # created and expired in one batch: nothing to delete
    assert view.get("other") is None  # read, never changed: not written
    assert view.flush() == 1
    assert list(store.data) == ["k"]
    assert store.writes == 1

    view = BatchView(store, WarmStates(0))
    assert view.get("k") == state
    view.expire("k")
    assert (view.flush(), view.expired, store.data) == (1, 1, {})
