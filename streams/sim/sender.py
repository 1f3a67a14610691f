"""Send simulated traffic at a target wall-clock rate (or as fast as the broker takes it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from streams.kafka.producer import RawSender
from streams.sim.generator import SimulatedMessage, SimulationConfig, generate

# When rate-limited, send about this often so traffic is smooth, not a burst per second.
_SENDS_PER_SECOND = 20


@dataclass(frozen=True, slots=True)
class SimulationStats:
    sent: int
    valid: int
    invalid: int
    duplicates: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Messages per second of wall-clock time."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


class TokenBucket:
    """Rate limiter that hands out reservations: the caller sleeps as long as it is told.

    Starts full, so the first `burst` messages go at once; a reservation beyond the
    balance puts the bucket in debt, which later refills pay off, keeping the long-run
    rate exact whatever the batch sizes.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._updated = now

    def reserve(self, count: int, now: float) -> float:
        """Take `count` tokens; returns the seconds to wait before using them."""
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._updated = now
        self._tokens -= count
        return -self._tokens / self._rate if self._tokens < 0 else 0.0


async def run_simulation(
    producer: RawSender,
    config: SimulationConfig,
    *,
    rate_limit: float | None = None,
    max_messages: int | None = None,
    stop_after_s: float | None = None,
    stop: asyncio.Event | None = None,
    observe: Callable[[Sequence[SimulatedMessage]], None] | None = None,
    batch_size: int = 5_000,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SimulationStats:
    """Send `generate(config)` in batches, each delivered before the next is taken.

    `rate_limit` is messages per wall-clock second (None: as fast as possible). The run
    ends when the simulation does, after `max_messages`, once `stop_after_s` have passed
    or when `stop` is set, whichever comes first; checks happen between batches, which
    are at most 1/20 s of traffic when rate-limited. `observe` sees each batch once sent
    (the spend tally).
    """
    if rate_limit is not None and rate_limit <= 0:
        raise ValueError("rate_limit must be positive")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    messages: Iterator[SimulatedMessage] = generate(config)
    if max_messages is not None:
        messages = islice(messages, max_messages)
    started = clock()
    bucket = None
    if rate_limit is not None:
        batch_size = max(1, min(batch_size, int(rate_limit / _SENDS_PER_SECOND)))
        bucket = TokenBucket(rate_limit, batch_size, started)
    sent = valid = duplicates = 0
    while not (stop is not None and stop.is_set()):
        if stop_after_s is not None and clock() - started >= stop_after_s:
            break
        batch = list(islice(messages, batch_size))
        if not batch:
            break
        if bucket is not None and (wait := bucket.reserve(len(batch), clock())) > 0:
            await sleep(wait)
        sent += await producer.send_raw_many((m.key, m.value) for m in batch)
        if observe is not None:
            observe(batch)
        valid += sum(m.valid for m in batch)
        duplicates += sum(m.duplicate for m in batch)
    return SimulationStats(
        sent=sent,
        valid=valid,
        invalid=sent - valid,
        duplicates=duplicates,
        elapsed_s=clock() - started,
    )
