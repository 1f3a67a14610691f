"""What a benchmark run measured: plain frozen records, medians over repetitions derived here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.bench.stats import LatencySummary, median


@dataclass(frozen=True, slots=True)
class Run:
    """One repetition of a throughput part: `events` done in `wall_s` (None: timed out)."""

    events: int
    wall_s: float | None
    steady_events_per_s: float | None = None
    extra: Mapping[str, float] = field(default_factory=dict)  # part-specific figures
    note: str = ""

    @property
    def events_per_s(self) -> float | None:
        return None if self.wall_s is None or self.wall_s <= 0 else self.events / self.wall_s


@dataclass(frozen=True, slots=True)
class Part:
    """A throughput part (baseline, decoder, engine, Faust ceiling, worker), repeated."""

    key: str
    title: str
    runs: tuple[Run, ...]

    @property
    def events_per_s(self) -> float | None:
        return median([r.events_per_s for r in self.runs], higher_is_better=True)

    @property
    def steady_events_per_s(self) -> float | None:
        return median([r.steady_events_per_s for r in self.runs], higher_is_better=True)

    def figure(self, name: str) -> float | None:
        """Median of a part-specific figure over the runs that have it."""
        values = [r.extra[name] for r in self.runs if name in r.extra]
        return median(values, higher_is_better=True) if values else None


@dataclass(frozen=True, slots=True)
class LatencyRun:
    """One fixed-rate run: produce-to-visible latency of the events that change an aggregate."""

    rate: float  # asked for, events/s
    achieved_rate: float  # what the producer managed
    sent: int
    summary: LatencySummary
    polls: int  # scrapes of the worker's stage counter
    note: str = ""  # where the engine, the counter and ClickHouse disagree on the final counts


@dataclass(frozen=True, slots=True)
class Latency:
    runs: tuple[LatencyRun, ...]

    @property
    def p50_s(self) -> float | None:
        return median([r.summary.p50_s for r in self.runs], higher_is_better=False)

    @property
    def p99_s(self) -> float | None:
        return median([r.summary.p99_s for r in self.runs], higher_is_better=False)

    @property
    def max_s(self) -> float | None:
        return median([r.summary.max_s for r in self.runs], higher_is_better=False)


@dataclass(frozen=True, slots=True)
class MemoryRun:
    """RSS growth of one process holding `sessions` open sessions in the funnel engine."""

    variant: str  # "pending" (nothing finalised yet) or "finalised" (stages set, carts open)
    sessions: int
    rss_growth_bytes: int
    stored_value_bytes: int  # encoded states in the store
    stored_key_bytes: int

    @property
    def rss_per_session(self) -> float:
        return self.rss_growth_bytes / self.sessions

    @property
    def stored_per_session(self) -> float:
        return (self.stored_value_bytes + self.stored_key_bytes) / self.sessions


@dataclass(frozen=True, slots=True)
class Machine:
    cores: int
    cpu_model: str
    memory_bytes: int
    python: str
    platform: str
    versions: Mapping[str, str]  # distribution -> version, for the libraries on the hot path


@dataclass(frozen=True, slots=True)
class BenchResults:
    started_at: str  # ISO 8601, UTC
    commit: str | None
    machine: Machine
    options: Mapping[str, float | int | bool | str]
    parts: tuple[Part, ...]
    latency: Latency | None
    memory: tuple[MemoryRun, ...]

    def part(self, key: str) -> Part | None:
        return next((p for p in self.parts if p.key == key), None)
