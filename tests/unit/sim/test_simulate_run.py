"""Pacing simulated traffic: token bucket and the stop conditions, on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from streams.sim.generator import SimulationConfig, generate
from streams.sim.sender import TokenBucket, run_simulation

CONFIG = SimulationConfig(
    start=datetime(2026, 11, 20, 10, 0, tzinfo=UTC), seed=5, sessions=200, invalid_rate=0.05
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


class FakeSender:
    def __init__(self, time: FakeTime | None = None, cost_s: float = 0.0) -> None:
        self.batches: list[list[tuple[bytes | None, bytes]]] = []
        self._time = time
        self._cost_s = cost_s

    async def send_raw_many(self, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
        batch = list(messages)
        self.batches.append(batch)
        if self._time is not None:
            self._time.now += self._cost_s
        return len(batch)

    @property
    def sent(self) -> list[tuple[bytes | None, bytes]]:
        return [message for batch in self.batches for message in batch]


def test_token_bucket_starts_full_then_paces() -> None:
    bucket = TokenBucket(rate=100.0, burst=10.0, now=0.0)
    assert bucket.reserve(10, now=0.0) == 0.0
    assert bucket.reserve(10, now=0.0) == pytest.approx(0.1)
    # The debt is paid back before new tokens count.
    assert bucket.reserve(10, now=0.1) == pytest.approx(0.1)
    assert bucket.reserve(5, now=10.0) == 0.0


def test_unlimited_sends_everything_in_order_and_counts() -> None:
    time, sender = FakeTime(), FakeSender()
    stats = asyncio.run(run_simulation(sender, CONFIG, batch_size=64, clock=time.clock))
    expected = list(generate(CONFIG))
    assert sender.sent == [(m.key, m.value) for m in expected]
    assert max(len(b) for b in sender.batches) == 64
    assert stats.sent == len(expected)
    assert stats.invalid == sum(not m.valid for m in expected) > 0
    assert stats.valid + stats.invalid == stats.sent
    assert time.slept == 0.0


def test_rate_limit_paces_in_small_batches() -> None:
    time, sender = FakeTime(), FakeSender()
    stats = asyncio.run(
        run_simulation(
            sender, CONFIG, rate_limit=200.0, max_messages=500, clock=time.clock, sleep=time.sleep
        )
    )
    assert stats.sent == 500
    assert max(len(b) for b in sender.batches) == 10  # 200/s in 20 sends per second
    # The first batch goes at once; the other 490 messages take 490/200 s.
    assert time.slept == pytest.approx(490 / 200)
    assert stats.rate == pytest.approx(500 / (490 / 200))


def test_stop_after_seconds() -> None:
    time = FakeTime()
    sender = FakeSender(time, cost_s=1.0)
    config = replace(CONFIG, sessions=None)
    stats = asyncio.run(
        run_simulation(sender, config, batch_size=10, stop_after_s=5.0, clock=time.clock)
    )
    assert len(sender.batches) == 5
    assert stats.sent == 50
    assert stats.elapsed_s == pytest.approx(5.0)


def test_stop_event_ends_the_run_between_batches() -> None:
    time = FakeTime()
    stop = asyncio.Event()

    class StoppingSender(FakeSender):
        async def send_raw_many(self, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
            stop.set()
            return await super().send_raw_many(messages)

    sender = StoppingSender()
    config = replace(CONFIG, sessions=None)
    stats = asyncio.run(run_simulation(sender, config, batch_size=7, stop=stop, clock=time.clock))
    assert stats.sent == 7


@pytest.mark.parametrize(
    ("options", "message"),
    [({"rate_limit": 0.0}, "rate_limit"), ({"batch_size": 0}, "batch_size")],
)
def test_bad_options(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        asyncio.run(run_simulation(FakeSender(), CONFIG, **options))  # type: ignore[arg-type]
