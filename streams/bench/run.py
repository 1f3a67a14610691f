"""Run the selected parts, one after the other, on one embedded broker; collect the results.

Parts never overlap: on a small machine each would steal the others' cores.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from streams.bench import dataset
from streams.bench.baseline import baseline_run
from streams.bench.engine import Expected, decoded_batches, run_engine, time_decoder
from streams.bench.faust_ceiling import ceiling_run
from streams.bench.latency import latency_run
from streams.bench.markdown import rate_text, seconds_text
from streams.bench.memory import VARIANTS, memory_run
from streams.bench.options import BenchOptions
from streams.bench.results import BenchResults, Latency, LatencyRun, MemoryRun, Part, Run
from streams.bench.system import git_commit, machine
from streams.bench.throughput import timeout_s, worker_run
from streams.bench.worker_proc import IDLE_AFTER_S
from streams.clock import wall_clock_ms
from streams.funnel.rules import FunnelRules
from streams.kafka.producer import EventProducer
from streams.kafka.tansu_compat import install_tansu_compat
from streams.kafka.topics import create_topics
from streams.local.embedded_broker import EmbeddedBroker
from streams.sim.generator import SimulatedMessage

TOPIC = "bench.events"
MIXED_TOPIC = "bench.events.mixed"
UNKEYED_SHARE = 0.3
THROUGHPUT_PARTS = frozenset(
    {"baseline", "decode", "engine", "faust", "worker", "mixed", "workers2"}
)
_REPO = Path(__file__).resolve().parents[2]
_TITLES = {
    "baseline": "aiokafka getmany + orjson.loads (baseline)",
    "decode": "decode_event alone (JSON + contract validation)",
    "engine": "funnel engine alone (PartitionFunnel, decoded events)",
    "faust": "Faust ceiling (take_events, nothing else)",
    "worker": "funnel worker, everything on",
    "workers2": "two funnel workers in one group (2 cores, shared with the broker)",
    "mixed": "funnel worker, 30 % of messages unkeyed (repartitioned)",
}


class _Runner:
    def __init__(self, options: BenchOptions, log: TextIO, work: Path) -> None:
        self.options = options
        self.wanted = frozenset(options.parts)
        self.log = log
        self.work = work
        self.parts: list[Part] = []

    def say(self, text: str) -> None:
        print(text, file=self.log, flush=True)

    def repeat(self, key: str, one: Callable[[int], Run], times: int) -> Part:
        return Part(key, _TITLES[key], tuple(self.once(key, one, i) for i in range(times)))

    def once(self, key: str, one: Callable[[int], Run], i: int) -> Run:
        run = one(i)
        note = f" ({run.note})" if run.note else ""
        self.say(f"  {key} #{i + 1}: {rate_text(run.events_per_s)}{note}")
        return run

    def timed(self, key: str, one: Callable[[int], Run]) -> None:
        if key in self.wanted:
            self.parts.append(self.repeat(key, one, self.options.repeat))

    def side_by_side(self, parts: dict[str, Callable[[int], Run]]) -> None:
        """Repetitions alternate between the parts, so a noisy stretch hits both alike."""
        wanted = {key: one for key, one in parts.items() if key in self.wanted}
        runs: dict[str, list[Run]] = {key: [] for key in wanted}
        for i in range(self.options.repeat):
            for key, one in wanted.items():
                runs[key].append(self.once(key, one, i))
        self.parts += [Part(key, _TITLES[key], tuple(runs[key])) for key in wanted]

    def throughput(self, bootstrap: str) -> None:
        o = self.options
        now = datetime.now(UTC)
        self.say(f"simulating {o.events:,} messages…")
        messages = dataset.throughput_messages(o.events, now=now, seed=o.seed)
        self.fill(bootstrap, TOPIC, messages)
        if "mixed" in self.wanted:
            # The same messages, a share of them without a key, as HTTP collectors send them.
            mixed = dataset.without_keys(messages, UNKEYED_SHARE, seed=o.seed)
            self.fill(bootstrap, MIXED_TOPIC, mixed)
        n, limit = len(messages), timeout_s(len(messages))
        self.timed(
            "baseline",
            lambda _: asyncio.run(baseline_run(bootstrap, TOPIC, o.partitions, n, limit)),
        )
        self.timed("decode", lambda _: time_decoder(messages, wall_clock_ms()))
        expected = (
            self.engine(messages)
            if self.wanted & {"engine", "worker", "mixed", "workers2"}
            else None
        )
        self.timed(
            "faust",
            lambda i: ceiling_run(
                bootstrap=bootstrap, topic=TOPIC, partitions=o.partitions, events=n,
                app_id=f"bench-ceiling-{i}", work_dir=self.work / f"ceiling-{i}",
                timeout_s=limit,
            ),
        )  # fmt: skip
        if expected is not None:
            start = dataset.throughput_config(n, now=now, seed=o.seed).start
            span = (start - timedelta(days=1), datetime.now(UTC) + timedelta(days=1))
            self.side_by_side(
                {
                    "worker": lambda i: self.worker(bootstrap, expected, n, span, i),
                    "mixed": lambda i: self.worker(
                        bootstrap, expected, n, span, i, topic=MIXED_TOPIC
                    ),
                    "workers2": lambda i: self.worker(bootstrap, expected, n, span, i, workers=2),
                }
            )

    def fill(self, bootstrap: str, topic: str, messages: Sequence[SimulatedMessage]) -> None:
        asyncio.run(create_topics(bootstrap, {topic: self.options.partitions}))
        started = time.monotonic()
        sent = asyncio.run(_produce(bootstrap, topic, messages))
        elapsed = time.monotonic() - started
        self.say(f"filled {topic}: {sent:,} messages in {elapsed:.1f} s ({sent / elapsed:,.0f}/s)")

    def engine(self, messages: Sequence[SimulatedMessage]) -> Expected:
        """Time the engine (when asked for) and keep its counts: the worker's reference."""
        batches, rejected = decoded_batches(messages, wall_clock_ms(), self.options.partitions)
        rules = FunnelRules(idle_after_ms=round(IDLE_AFTER_S * 1000))
        expected: list[Expected] = []

        def one(_: int) -> Run:
            run, counts = run_engine(batches, rejected, rules, wall_clock_ms())
            expected.append(counts)
            return run

        part = self.repeat("engine", one, self.options.repeat if "engine" in self.wanted else 1)
        if "engine" in self.wanted:
            self.parts.append(part)
        self.say(f"  expected rows {expected[0].rows}, open sessions {expected[0].open_sessions:,}")
        return expected[0]

    def worker(
        self,
        bootstrap: str,
        expected: Expected,
        n: int,
        span: tuple[datetime, datetime],
        i: int,
        *,
        topic: str = TOPIC,
        workers: int = 1,
    ) -> Run:
        name = f"{topic.replace('.', '-')}-{workers}-{i}"
        data_dir = self.work / name
        try:
            return worker_run(
                bootstrap=bootstrap, topic=topic, partitions=self.options.partitions,
                expected=expected, events=n, app_id=f"bench-{name}", data_dir=data_dir,
                report_range=span, workers=workers,
            )  # fmt: skip
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    def latency(self, bootstrap: str) -> Latency:
        o = self.options
        self.say(f"latency: {o.rate:,.0f} ev/s for {o.latency_seconds:.0f} s")
        runs: list[LatencyRun] = []
        for i in range(o.repeat):
            data_dir = self.work / f"latency-{i}"
            try:
                run = latency_run(
                    bootstrap=bootstrap, rate=o.rate, seconds=o.latency_seconds,
                    app_id=f"bench-latency-{i}", partitions=o.partitions, data_dir=data_dir,
                    seed=o.seed + i,
                )  # fmt: skip
            finally:
                shutil.rmtree(data_dir, ignore_errors=True)
            s = run.summary
            self.say(
                f"  latency #{i + 1}: p50 {seconds_text(s.p50_s)}, p99 {seconds_text(s.p99_s)}, "
                f"max {seconds_text(s.max_s)}; {s.visible:,}/{s.events:,} stage entries seen, "
                f"sent {run.achieved_rate:,.0f} ev/s" + (f" ({run.note})" if run.note else "")
            )
            runs.append(run)
        return Latency(tuple(runs))

    def memory(self) -> list[MemoryRun]:
        runs = []
        for variant in VARIANTS:
            run = memory_run(variant, self.options.sessions, 120 + self.options.sessions / 1000)
            self.say(
                f"  memory ({variant}): {run.rss_per_session:,.0f} B RSS, "
                f"{run.stored_per_session:,.0f} B stored per session"
            )
            runs.append(run)
        return runs


def run_benchmarks(options: BenchOptions, log: TextIO) -> BenchResults:
    started = datetime.now(UTC)
    latency: Latency | None = None
    memory: list[MemoryRun] = []
    with tempfile.TemporaryDirectory(prefix="funnel-bench-") as tmp:
        runner = _Runner(options, log, Path(tmp))
        if runner.wanted & (THROUGHPUT_PARTS | {"latency"}):
            install_tansu_compat()
            with EmbeddedBroker(log_dir=Path(tmp)) as broker:
                if runner.wanted & THROUGHPUT_PARTS:
                    runner.throughput(broker.bootstrap)
                if "latency" in runner.wanted:
                    latency = runner.latency(broker.bootstrap)
        if "memory" in runner.wanted:
            memory = runner.memory()
    return BenchResults(
        started_at=started.isoformat(timespec="seconds"),
        commit=git_commit(_REPO),
        machine=machine(),
        options=options.shown(),
        parts=tuple(runner.parts),
        latency=latency,
        memory=tuple(memory),
    )


async def _produce(bootstrap: str, topic: str, messages: Sequence[SimulatedMessage]) -> int:
    async with EventProducer(bootstrap, topic) as producer:
        return await producer.send_raw_many((m.key, m.value) for m in messages)
