"""The benchmark's command line: one frozen options object, with a quick preset."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

PARTS = (
    "baseline", "decode", "engine", "faust", "worker", "mixed", "workers2", "latency", "memory",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BenchOptions:
    events: int = 1_000_000
    repeat: int = 3
    latency_seconds: float = 60.0
    rate: float = 5_000.0
    sessions: int = 1_000_000
    partitions: int = 8
    seed: int = 0
    parts: tuple[str, ...] = PARTS
    quick: bool = False
    out_dir: Path = Path("bench-results")
    markdown: Path = Path("BENCHMARKS.md")

    def __post_init__(self) -> None:
        for name in ("events", "repeat", "sessions", "partitions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.latency_seconds <= 0 or self.rate <= 0:
            raise ValueError("latency seconds and rate must be positive")
        unknown = set(self.parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown part(s) {sorted(unknown)}; choose from {PARTS}")

    def shown(self) -> dict[str, float | int | bool | str]:
        """What goes into the results file, so a figure can be traced to how it was made."""
        return {
            "events": self.events,
            "repeat": self.repeat,
            "latency_seconds": self.latency_seconds,
            "rate": self.rate,
            "sessions": self.sessions,
            "partitions": self.partitions,
            "seed": self.seed,
            "parts": ",".join(self.parts),
            "quick": self.quick,
        }


# Minutes instead of an hour: enough to see a regression, not to quote.
QUICK = BenchOptions(events=30_000, latency_seconds=20.0, sessions=100_000, quick=True)
FULL = BenchOptions()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m streams.bench",
        description="Side-by-side throughput, latency and memory of the pipeline on the "
        "embedded stack (tansu + chDB). Writes a JSON file and a row of BENCHMARKS.md.",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help=f"small run: {QUICK.events:,} events, {QUICK.latency_seconds:.0f} s latency run, "
        f"{QUICK.sessions:,} sessions for memory",
    )  # fmt: skip
    parser.add_argument("--events", type=int, help=f"messages in the topic ({FULL.events:,})")
    parser.add_argument("--repeat", type=int, help=f"runs of each timed part ({FULL.repeat})")
    parser.add_argument(
        "--latency-seconds", type=float, help=f"measured window ({FULL.latency_seconds:.0f})"
    )
    parser.add_argument("--rate", type=float, help=f"latency run ev/s ({FULL.rate:,.0f})")
    parser.add_argument(
        "--sessions", type=int, help=f"open sessions for memory ({FULL.sessions:,})"
    )
    parser.add_argument("--seed", type=int, help="simulator seed (0)")
    parser.add_argument(
        "--parts", help=f"comma-separated subset of {','.join(PARTS)} (worker also runs engine)"
    )
    parser.add_argument("--out-dir", type=Path, help="where the JSON goes (bench-results)")
    parser.add_argument("--markdown", type=Path, help="file a row is appended to (BENCHMARKS.md)")
    return parser


def parse_options(argv: Sequence[str] | None = None) -> BenchOptions:
    parser = build_parser()
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    chosen: dict[str, Any] = {
        "events": args.events,
        "repeat": args.repeat,
        "latency_seconds": args.latency_seconds,
        "rate": args.rate,
        "sessions": args.sessions,
        "seed": args.seed,
        "out_dir": args.out_dir,
        "markdown": args.markdown,
    }
    if args.parts:
        chosen["parts"] = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    try:
        return replace(base, **{k: v for k, v in chosen.items() if v is not None})
    except ValueError as exc:
        parser.error(str(exc))
