"""Session state encoding: round trip, versioning, and what an open session costs."""

import sys
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import pytest

from schemas.event import Device, Event
from streams.funnel.codec import FORMAT_VERSION, decode_state, encode_state
from streams.funnel.session import SessionState, finalise
from tests.unit.funnel.builders import ADD, BUY, PV, REMOVE, RULES, T0, accept_event, ev, item

L = RULES.lateness_ms


def _state(events: list[Event], bound_ms: int) -> SessionState:
    state = None
    for e in events:
        state = accept_event(state, e)
    assert state is not None
    finalise(state, "s1", "x", bound_ms, RULES)
    return state


def _typical_open_session() -> SessionState:
    """3 page views and an open cart with two items, everything finalised."""
    dims: dict[str, Any] = {
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring-sale",
        "device": Device.MOBILE,
        "country": "DE",
        "variant": "B",
    }
    events = [
        ev(PV, T0, event_id="0b6f1c9e-8d1f-4f7e-9a43-5f0c2d8e1a01", user_id="user-123", **dims),
        ev(PV, T0 + 20_000, event_id="0b6f1c9e-8d1f-4f7e-9a43-5f0c2d8e1a02", **dims),
        ev(PV, T0 + 45_000, event_id="0b6f1c9e-8d1f-4f7e-9a43-5f0c2d8e1a03", **dims),
        ev(
            ADD,
            T0 + 60_000,
            event_id="0b6f1c9e-8d1f-4f7e-9a43-5f0c2d8e1a04",
            items=(item("SKU-10021", 1, "29.90"), item("SKU-20417", 2, "4.50")),
            currency="EUR",
            **dims,
        ),
    ]
    return _state(events, T0 + 2 * 60_000)


def test_round_trip_of_a_busy_state() -> None:
    events = [
        ev(PV, T0, utm_source="ads", device=Device.TABLET, user_id="u1"),
        ev(ADD, T0 + 1, items=(item("a", 2, "1.10"),), currency="EUR"),
        ev(ADD, T0 + 2, value=Decimal("3.333")),
        ev(REMOVE, T0 + 3, items=(item("a"),)),
        ev(BUY, T0 + 4, order_id="o1", value=Decimal("5")),
        ev(ADD, T0 + 5, items=(item("b"),)),
        # still pending after finalising to T0 + 6:
        ev(PV, T0 + 7, utm_source="x"),
        ev(BUY, T0 + 8, order_id="o2", items=(item("c", 3, "0.01"),), currency="USD"),
    ]
    state = _state(events, T0 + 6)
    assert len(state.pending) == 2
    decoded = decode_state(encode_state(state))
    # The first touch is known, so pending events' dims can no longer matter and are dropped.
    assert decoded.pending == [replace(p, dims=None) for p in state.pending]
    assert decoded.seen == state.seen
    assert decoded.orders == state.orders
    assert (decoded.stages, decoded.dims, decoded.user_id) == (state.stages, state.dims, "u1")
    assert decoded.cart == state.cart
    assert (decoded.last_event_ms, decoded.final_bound_ms) == (T0 + 8, T0 + 6)
    assert encode_state(decoded) == encode_state(state)


def test_pending_dims_are_kept_until_the_first_touch_is_known() -> None:
    state = _state([ev(PV, T0, utm_source="ads")], T0)
    decoded = decode_state(encode_state(state))
    assert decoded.pending == state.pending
    assert decoded.pending[0].dims is not None


def test_unknown_version_is_refused() -> None:
    raw = orjson.loads(encode_state(_typical_open_session()))
    raw[0] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=f"version {FORMAT_VERSION + 1}"):
        decode_state(orjson.dumps(raw))
    with pytest.raises(ValueError, match="version"):
        decode_state(b"{}")


def _deep_size(obj: object, seen: set[int] | None = None) -> int:
    """sys.getsizeof summed over the object graph (shared objects counted once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or obj is None or isinstance(obj, bool):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(_deep_size(v, seen) for v in obj)
    elif hasattr(obj, "__slots__") and not isinstance(obj, str | int | Decimal):
        slots = [s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())]
        size += sum(_deep_size(getattr(obj, s, None), seen) for s in slots)
    return size


def test_bytes_per_open_session(capsys: pytest.CaptureFixture[str]) -> None:
    state = _typical_open_session()
    encoded = encode_state(state)
    in_memory = _deep_size(state)
    with capsys.disabled():
        print(f"\nopen session (3 page views + open cart): {len(encoded)} B encoded, "
              f"~{in_memory} B decoded in memory")  # fmt: skip
    assert len(encoded) <= 512
    assert in_memory <= 4096


def test_version_1_states_are_upgraded_with_a_legacy_start() -> None:
    state = _typical_open_session()
    row = orjson.loads(encode_state(state))
    v1 = orjson.dumps([1, *row[1:10]])
    upgraded = decode_state(v1)
    assert upgraded.start_ms == 0  # the rows it already wrote carry 0
    assert upgraded.events == len(state.seen)
    assert upgraded.state_bytes == len(v1)
    assert upgraded.pending == state.pending
