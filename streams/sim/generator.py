"""Deterministic storefront traffic: sessions that browse, add to cart, check out and buy.

Everything is a function of `SimulationConfig` (seed and injected start time included), so a
run can be replayed exactly and its funnel numbers recomputed. Session behaviour lives in
`streams.sim.shopper`, the knobs in `streams.sim.traffic`; this module arranges sessions in event
time and in delivery order.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, NamedTuple

import orjson

from streams.sim.corrupt import CORRUPTION_KINDS, corrupt
from streams.sim.shopper import SessionPlanner
from streams.sim.traffic import Channel, DeviceProfile, SimulationConfig

__all__ = [
    "Channel",
    "DeviceProfile",
    "SimulatedMessage",
    "SimulationConfig",
    "generate",
    "generate_events",
]


class SimulatedMessage(NamedTuple):
    """One Kafka message as the simulator would send it.

    `valid` is False for deliberately broken input (`defect` names the CORRUPTION_KINDS
    entry); `duplicate` marks a re-delivery of an event already sent.
    """

    key: bytes | None
    value: bytes
    valid: bool = True
    duplicate: bool = False
    defect: str | None = None


def generate_events(config: SimulationConfig) -> Iterator[dict[str, Any]]:
    """Valid contract-v1 event dicts, duplicates included, in delivery order."""
    for event, _duplicate in _deliveries(config):
        yield event


def generate(config: SimulationConfig) -> Iterator[SimulatedMessage]:
    """Kafka-ready messages in delivery order, with `config.invalid_rate` broken ones mixed in."""
    # Broken input draws from its own RNG so the valid traffic of a seed is the same
    # whatever invalid_rate is.
    bad_rng = random.Random(f"{config.seed}/invalid")
    for event, duplicate in _deliveries(config):
        key = event["session_id"].encode()
        yield SimulatedMessage(key, orjson.dumps(event), duplicate=duplicate)
        if config.invalid_rate and bad_rng.random() < config.invalid_rate:
            kind = bad_rng.choice(CORRUPTION_KINDS)
            # A fresh id keeps a broken copy from ever deduplicating against the real event.
            source = {**event, "event_id": f"{event['event_id']}-bad"}
            yield SimulatedMessage(key, corrupt(bad_rng, source, kind), valid=False, defect=kind)


def _deliveries(config: SimulationConfig) -> Iterator[tuple[dict[str, Any], bool]]:
    """(event, is_duplicate) ordered by delivery time.

    Delivery time = occurred_at + a uniform delay in [0, out_of_order_ms], so delivery can
    run behind event time by at most out_of_order_ms. A session's events are all known when
    it starts and none is delivered before that, so everything due before the next session
    starts can be released.
    """
    rng = random.Random(config.seed)
    planner = SessionPlanner(config, rng)
    jitter = config.out_of_order_ms
    pending: list[tuple[int, int, dict[str, Any], bool]] = []
    sequence = itertools.count()
    for start_ms in _session_starts(config, rng):
        while pending and pending[0][0] <= start_ms:
            _due, _seq, event, duplicate = heapq.heappop(pending)
            yield event, duplicate
        for occurred_ms, event in planner.plan(start_ms):
            deliver_ms = occurred_ms + (rng.randint(0, jitter) if jitter else 0)
            heapq.heappush(pending, (deliver_ms, next(sequence), event, False))
            if config.duplicate_rate and rng.random() < config.duplicate_rate:
                again_ms = occurred_ms + (rng.randint(0, jitter) if jitter else 0)
                # Later in sequence than the original, so an equal time still sends it second.
                again_ms = max(again_ms, deliver_ms)
                heapq.heappush(pending, (again_ms, next(sequence), copy.deepcopy(event), True))
    while pending:
        _due, _seq, event, duplicate = heapq.heappop(pending)
        yield event, duplicate


def _session_starts(config: SimulationConfig, rng: random.Random) -> Iterator[int]:
    """Session start times (epoch ms): a Poisson process at `session_rate` per second."""
    limit_ms = None if config.duration is None else config.duration // timedelta(milliseconds=1)
    offset_s = 0.0
    start_ms = config.start_ms
    for _ in range(config.sessions) if config.sessions is not None else itertools.count():
        offset_ms = int(offset_s * 1000)
        if limit_ms is not None and offset_ms >= limit_ms:
            return
        yield start_ms + offset_ms
        offset_s += rng.expovariate(config.session_rate)
