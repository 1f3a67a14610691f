"""The simulated funnel's shape: channel and device rates, realistic defaults, incidents."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from schemas.event import Device
from streams.sim.generator import (
    Channel,
    DeviceProfile,
    SimulationConfig,
    generate_events,
)
from streams.sim.incidents import parse_incident
from tests.unit.sim.samples import (
    BASE,
    START,
    by_session,
    occurred_ms,
)

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
