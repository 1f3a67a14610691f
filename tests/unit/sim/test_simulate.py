"""The traffic generator: determinism, funnel shape, incidents, duplicates, ordering, contract."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.decode import DecodeLimits, Rejection, decode_event
from schemas.event import Device
from streams.sim.corrupt import CORRUPTION_KINDS
from streams.sim.generator import (
    Channel,
    DeviceProfile,
    SimulationConfig,
    generate,
    generate_events,
)
from streams.sim.incidents import parse_incident

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
BASE = SimulationConfig(start=START, seed=7, sessions=300)

# --- contract v1, restated here so the generator is checked independently of the decoder ---
REQUIRED = ("event_id", "event_type", "occurred_at", "site_id", "session_id")
OPTIONAL_TEXT = (
    "user_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "referrer",
    "variant",
    "page",
    "order_id",
    "cart_id",
)
KNOWN = {*REQUIRED, *OPTIONAL_TEXT, "device", "country", "items", "value", "currency"}
EVENT_TYPES = {"page_view", "add_to_cart", "remove_from_cart", "checkout", "purchase"}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
MONEY = re.compile(r"\d+\.\d{2}")


def occurred_ms(event: dict[str, Any]) -> int:
    value = event["occurred_at"]
    if isinstance(value, int):
        return value
    return round(datetime.fromisoformat(value).timestamp() * 1000)


def assert_contract(event: dict[str, Any]) -> None:
    assert set(event) <= KNOWN, set(event) - KNOWN
    for name in REQUIRED[:2] + REQUIRED[3:]:
        assert isinstance(event[name], str)
        assert event[name]
    assert 1 <= len(event["event_id"]) <= 128
    assert event["event_type"] in EVENT_TYPES
    occurred = event["occurred_at"]
    if isinstance(occurred, str):
        assert RFC3339.fullmatch(occurred), occurred
    else:
        assert type(occurred) is int
    for name in OPTIONAL_TEXT:
        assert name not in event or (isinstance(event[name], str) and event[name])
    assert event.get("device", "desktop") in {d.value for d in Device}
    assert re.fullmatch(r"[A-Z]{2}", event.get("country", "DE"))
    if "value" in event:
        assert MONEY.fullmatch(event["value"])
        assert re.fullmatch(r"[A-Z]{3}", event["currency"])
    if event["event_type"] == "purchase":
        assert event["order_id"]
    if event["event_type"] in {"add_to_cart", "remove_from_cart", "checkout", "purchase"}:
        assert event["items"]
        assert event["cart_id"]
        total = Decimal("0")
        for line in event["items"]:
            assert set(line) == {"sku", "quantity", "price"}
            assert isinstance(line["sku"], str)
            assert line["sku"]
            assert type(line["quantity"]) is int
            assert line["quantity"] >= 1
            assert MONEY.fullmatch(line["price"])
            total += Decimal(line["price"]) * line["quantity"]
        assert Decimal(event["value"]) == total


def by_session(events: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        sessions[event["session_id"]].append(event)
    return sessions


# --- determinism ---


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

CHANNEL_A = Channel("alpha", "cpc", "a", None, 1.0, add_to_cart=0.3, checkout=0.6, purchase=0.7)
CHANNEL_B = Channel("beta", "email", None, None, 1.0, add_to_cart=0.15, checkout=0.45, purchase=0.6)
DESKTOP = DeviceProfile(Device.DESKTOP, 1.0)
MOBILE = DeviceProfile(Device.MOBILE, 1.0, add_to_cart=0.9, checkout=0.75, purchase=0.9)


def stage_rates(sessions: Iterable[list[dict[str, Any]]]) -> tuple[float, float, float]:
    """P(cart | view), P(checkout | cart), P(purchase | checkout), counted per session."""
    counts: Counter[str] = Counter()
    for events in sessions:
        counts.update({e["event_type"] for e in events})
    return (
        counts["add_to_cart"] / counts["page_view"],
        counts["checkout"] / counts["add_to_cart"],
        counts["purchase"] / counts["checkout"],
    )


def test_stage_probabilities_follow_channel_and_device() -> None:
    config = SimulationConfig(
        start=START,
        seed=3,
        sessions=20_000,
        channels=(CHANNEL_A, CHANNEL_B),
        devices=(DESKTOP, MOBILE),
        mean_page_views=1,
        readd_rate=0,
    )
    segments: dict[tuple[str, str], list[list[dict[str, Any]]]] = defaultdict(list)
    for events in by_session(generate_events(config)).values():
        segments[events[0]["utm_source"], events[0]["device"]].append(events)
    for channel in (CHANNEL_A, CHANNEL_B):
        for device in (DESKTOP, MOBILE):
            cart, checkout, purchase = stage_rates(segments[channel.utm_source, device.device])
            assert cart == pytest.approx(channel.add_to_cart * device.add_to_cart, abs=0.03)
            assert checkout == pytest.approx(channel.checkout * device.checkout, abs=0.06)
            assert purchase == pytest.approx(channel.purchase * device.purchase, abs=0.08)


def test_defaults_are_realistic_and_mobile_leaks_at_checkout() -> None:
    config = replace(BASE, sessions=6000, mean_page_views=1, readd_rate=0)
    sessions = list(by_session(generate_events(config)).values())
    cart, checkout, purchase = stage_rates(sessions)
    assert 0.08 <= cart <= 0.15
    assert 0.40 <= checkout <= 0.60
    assert 0.60 <= purchase <= 0.75
    desktop = stage_rates(s for s in sessions if s[0]["device"] == "desktop")
    mobile = stage_rates(s for s in sessions if s[0]["device"] == "mobile")
    assert mobile[1] < desktop[1] - 0.08


def test_incident_hits_one_transition_of_one_segment_in_its_window() -> None:
    even = Channel("alpha", "cpc", None, None, 1.0, add_to_cart=0.5, checkout=0.5, purchase=0.5)
    config = SimulationConfig(
        start=START,
        seed=11,
        sessions=18_000,
        session_rate=10.0,  # 30 minutes of sessions
        channels=(even,),
        devices=(DeviceProfile(Device.DESKTOP, 1.0), DeviceProfile(Device.MOBILE, 1.0)),
        mean_page_views=1,
        readd_rate=0,
        incidents=(parse_incident("checkout:mobile:-70%@10m-20m"),),
    )
    segments: dict[tuple[str, str], list[list[dict[str, Any]]]] = defaultdict(list)
    for events in by_session(generate_events(config)).values():
        minute = (min(map(occurred_ms, events)) - config.start_ms) / 60_000
        period = "before" if minute < 10 else "during" if minute < 20 else "after"
        segments[events[0]["device"], period].append(events)
    for key, sessions in segments.items():
        cart, checkout, purchase = stage_rates(sessions)
        assert cart == pytest.approx(0.5, abs=0.04), key
        expected = 0.15 if key == ("mobile", "during") else 0.5
        assert checkout == pytest.approx(expected, abs=0.05), key
        assert purchase == pytest.approx(0.5, abs=0.12), key


# --- delivery: duplicates, order, broken input ---


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
