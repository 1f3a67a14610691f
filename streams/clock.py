"""Wall-clock time in epoch milliseconds: the one real clock, injected everywhere as `Clock`."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""Wall clock in epoch milliseconds; injected so tests control time."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000
