"""The traffic generator: determinism, funnel shape, incidents, duplicates, ordering, contract."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.decode import DecodeLimits, Rejection, decode_event
from streams.sim.corrupt import CORRUPTION_KINDS
from streams.sim.generator import (
    SimulationConfig,
    generate,
    generate_events,
)
from tests.unit.sim.samples import (
    BASE,
    EVENT_TYPES,
    START,
    assert_contract,
    by_session,
    occurred_ms,
)


def test_same_seed_same_bytes_and_other_seed_differs() -> None:
    config = replace(BASE, duplicate_rate=0.05, out_of_order_ms=3000, invalid_rate=0.05)
    first = list(generate(config))
    assert first == list(generate(config))
    assert first != list(generate(replace(config, seed=8)))


def test_valid_traffic_does_not_depend_on_invalid_rate() -> None:
    clean = list(generate(BASE))
    noisy = list(generate(replace(BASE, invalid_rate=0.3)))
    assert [m for m in noisy if m.valid] == clean
    assert len(noisy) > len(clean)


def test_start_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulationConfig(start=datetime(2026, 11, 20))  # noqa: DTZ001 - the point of the test


def test_duration_bounds_session_starts() -> None:
    config = replace(BASE, sessions=None, duration=timedelta(minutes=2), session_rate=2.0)
    starts = {min(map(occurred_ms, s)) for s in by_session(generate_events(config)).values()}
    start_ms = config.start_ms
    assert all(start_ms <= t < start_ms + 120_000 for t in starts)
    assert 180 < len(starts) < 300  # Poisson around 240


# --- the contract ---


def test_every_generated_event_satisfies_the_contract_and_the_decoder() -> None:
    config = replace(BASE, sites=("shop-1", "shop-2"), duplicate_rate=0.05, out_of_order_ms=5000)
    limits = DecodeLimits(max_future_ms=10**12)
    events, messages = list(generate_events(config)), list(generate(config))
    assert len(events) == len(messages)
    for event, message in zip(events, messages, strict=True):
        assert_contract(event)
        assert message.key == event["session_id"].encode()
        assert orjson.loads(message.value) == event
        decoded = decode_event(message.value, now_ms=config.start_ms, limits=limits)
        assert not isinstance(decoded, Rejection), decoded
    kinds = Counter(type(e["occurred_at"]) for e in events)
    assert kinds[int] > 0
    assert kinds[str] > 0
    assert any(str(e["occurred_at"]).endswith(("+01:00", "-05:00")) for e in events)
    assert {e["currency"] for e in events if "currency" in e} == {"EUR", "USD"}
    assert {e["site_id"] for e in events} == {"shop-1", "shop-2"}
    assert Counter(e["event_type"] for e in events).keys() == EVENT_TYPES


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    duplicate_rate=st.floats(min_value=0, max_value=0.5),
    out_of_order_ms=st.integers(min_value=0, max_value=60_000),
    readd_rate=st.floats(min_value=0, max_value=1),
)
def test_contract_holds_for_any_seed_and_knobs(
    seed: int, duplicate_rate: float, out_of_order_ms: int, readd_rate: float
) -> None:
    config = SimulationConfig(
        start=START,
        seed=seed,
        sessions=40,
        duplicate_rate=duplicate_rate,
        out_of_order_ms=out_of_order_ms,
        readd_rate=readd_rate,
    )
    for event in generate_events(config):
        assert_contract(event)


def test_session_story_is_coherent() -> None:
    config = replace(BASE, sessions=2000, readd_rate=0.5)
    readds = 0
    for events in by_session(generate_events(config)).values():
        events.sort(key=occurred_ms)
        assert events[0]["event_type"] == "page_view"
        assert len({e.get("user_id") for e in events}) == 1
        assert len({(e["device"], e["country"], e["utm_source"]) for e in events}) == 1
        carts = list(dict.fromkeys(e["cart_id"] for e in events if "cart_id" in e))
        readds += len(carts) > 1
        for cart in carts:
            steps = [e for e in events if e.get("cart_id") == cart]
            order = [e["event_type"] for e in steps if e["event_type"] != "remove_from_cart"]
            stage = order.index("checkout") if "checkout" in order else len(order)
            assert set(order[:stage]) == {"add_to_cart"}
            assert order[stage:] in ([], ["checkout"], ["checkout", "purchase"])
        if len(carts) > 1:
            gaps = [b - a for a, b in pairwise(map(occurred_ms, events))]
            assert max(gaps) >= 40 * 60_000  # the return after a long pause
    assert readds > 10


# --- funnel shape ---


def test_duplicates_repeat_the_identical_event() -> None:
    config = replace(BASE, sessions=1000, duplicate_rate=0.1, out_of_order_ms=2000)
    messages = list(generate(config))
    by_id: dict[str, list[bytes]] = defaultdict(list)
    for message in messages:
        by_id[orjson.loads(message.value)["event_id"]].append(message.value)
    repeated = {i: values for i, values in by_id.items() if len(values) > 1}
    assert all(len(values) == 2 and values[0] == values[1] for values in repeated.values())
    assert len(repeated) == sum(m.duplicate for m in messages)
    assert 0.07 < len(repeated) / len(by_id) < 0.13
    # The original is always the one delivered first.
    seen: set[str] = set()
    for message in messages:
        event_id = orjson.loads(message.value)["event_id"]
        assert message.duplicate == (event_id in seen)
        seen.add(event_id)


def test_no_duplicates_unless_asked() -> None:
    ids = [e["event_id"] for e in generate_events(replace(BASE, sessions=1000))]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("bound_ms", [0, 1500, 30_000])
def test_delivery_runs_behind_event_time_by_at_most_the_bound(bound_ms: int) -> None:
    config = replace(BASE, sessions=1000, session_rate=20.0, out_of_order_ms=bound_ms)
    latest = 0
    worst = 0
    for event in generate_events(config):
        occurred = occurred_ms(event)
        latest = max(latest, occurred)
        worst = max(worst, latest - occurred)
    assert worst <= bound_ms
    if bound_ms:
        assert worst > bound_ms / 2  # shuffled, not merely allowed to be


def test_within_a_session_order_is_shuffled_when_asked() -> None:
    config = replace(BASE, sessions=1000, session_rate=20.0, out_of_order_ms=20_000)
    sessions = by_session(generate_events(config)).values()
    times = [[occurred_ms(e) for e in events] for events in sessions]
    assert any(t != sorted(t) for t in times)


def test_invalid_messages_cover_every_kind_and_are_all_rejected() -> None:
    config = replace(BASE, sessions=1000, invalid_rate=0.2)
    limits = DecodeLimits()
    bad = [m for m in generate(config) if not m.valid]
    assert {m.defect for m in bad} == set(CORRUPTION_KINDS)
    assert all(m.key is not None and m.key.startswith(b"s-") for m in bad)
    for message in bad:
        result = decode_event(message.value, now_ms=config.start_ms, limits=limits)
        assert isinstance(result, Rejection), (message.defect, message.value[:200])
