"""Capped exponential backoff with full jitter; pure, with the randomness injected."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.1
    cap_s: float = 10.0
    multiplier: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        ceiling = min(self.cap_s, self.initial_s * self.multiplier**attempt)
        return rng.uniform(0, ceiling)
