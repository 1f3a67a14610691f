"""The full pipeline: one `funnel worker` from an empty state over the filled events topic.

Timed from the worker's process start to the moment the last aggregate is queryable: its
sink has written (INSERT returned, so a query sees them) every row the pure engine says the
data set produces, table by table (`funnel_sink_rows_written_total`), after all N messages were
consumed (`funnel_events_consumed_total`). Then the worker's report endpoint is asked for the
stage counts, as a check that what is queryable is also right.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from streams.bench.dataset import SITES
from streams.bench.engine import Expected
from streams.bench.results import Run
from streams.bench.stats import steady_rate
from streams.bench.worker_proc import BenchWorker, stage_sessions
from streams.local.live_view import Samples, total

# Each scrape costs the worker ~5 ms of CPU: poll slowly through the bulk, then finely for the
# end, whose moment is the figure.
POLL_SLOW_S = 1.0
POLL_FAST_S = 0.1
FAST_FROM = 0.9  # share of the messages consumed
# A worker slower than this is recorded as timed out rather than waited for.
MIN_RATE_EPS = 1_000
TIMEOUT_BASE_S = 60.0


def timeout_s(events: int) -> float:
    return TIMEOUT_BASE_S + events / MIN_RATE_EPS


@dataclass
class _Watch:
    """What the polls saw: progress, and when (seconds since the worker's start) things happened."""

    progress: list[tuple[float, int]] = field(default_factory=list)
    started_s: float | None = None  # first poll with events consumed
    started_rss: int = 0  # the worker's RSS then: loaded, chDB open, one batch in
    started_cpu_s: float = 0.0  # and its CPU time: start-up left out of the per-event figure
    consumed_s: float | None = None  # first poll with every message consumed


def worker_run(
    *,
    bootstrap: str,
    topic: str,
    partitions: int,
    expected: Expected,
    events: int,
    app_id: str,
    data_dir: Path,
    report_range: tuple[datetime, datetime],
    workers: int = 1,
) -> Run:
    """`workers` > 1 runs that many in one consumer group (each its own chDB); their counters
    are summed, and the report check (one worker's chDB holds only its partitions) is skipped."""
    limit = timeout_s(events)
    watch = _Watch()
    with ExitStack() as stack:
        group = [
            stack.enter_context(
                BenchWorker(
                    bootstrap=bootstrap,
                    app_id=app_id,
                    events_topic=topic,
                    partitions=partitions,
                    data_dir=data_dir / f"w{i}",
                    rules_env={},  # the product defaults: lateness 5 min, abandonment 30 min
                )
            )
            for i in range(workers)
        ]
        worker = group[0]
        while True:
            summed: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for member in group:
                member.check_alive("funnel worker")
                for key, value in member.metrics().items():
                    summed[key] = summed.get(key, 0.0) + value
            samples: Samples = summed
            at_s = time.monotonic() - worker.started
            consumed = int(total(samples, "funnel_events_consumed_total"))
            watch.progress.append((at_s, consumed))
            if watch.started_s is None and consumed > 0:
                watch.started_s, watch.started_rss = at_s, worker.rss_bytes()
                watch.started_cpu_s = worker.cpu_seconds()
            if watch.consumed_s is None and consumed >= events:
                watch.consumed_s = at_s
            if watch.consumed_s is not None and _all_written(samples, expected):
                break
            if at_s > limit:
                return Run(
                    events=events,
                    wall_s=None,
                    note=f"timed out after {limit:.0f} s: {consumed:,} of {events:,} consumed; "
                    f"rows written {_written(samples, expected)}, expected {expected.rows}",
                )
            time.sleep(POLL_FAST_S if consumed >= FAST_FROM * events else POLL_SLOW_S)
        rss, cpu_s = worker.rss_bytes(), worker.cpu_seconds()
        note = _check_report(worker, expected, report_range) if workers == 1 else ""
    open_sessions = total(samples, "funnel_open_sessions") if workers == 1 else 0
    extra = {
        "startup_s": watch.started_s or 0.0,
        "consumed_s": watch.consumed_s,
        "tail_s": at_s - watch.consumed_s,
        "rss_bytes": float(rss),
        # CPU per event barely depends on what else the machine runs, unlike wall time.
        "cpu_us_per_event": (cpu_s - watch.started_cpu_s) / events * 1e6,
        "open_sessions": open_sessions,
    }
    if open_sessions:
        extra["rss_per_open_session"] = rss / open_sessions
        extra["rss_growth_per_open_session"] = (rss - watch.started_rss) / open_sessions
    return Run(
        events=events,
        wall_s=at_s,
        steady_events_per_s=steady_rate(watch.progress, events, at_s),
        extra=extra,
        note=note,
    )


def _written(samples: Samples, expected: Expected) -> dict[str, int]:
    return {
        table: int(total(samples, "funnel_sink_rows_written_total", table=table))
        for table in expected.rows
    }


def _all_written(samples: Samples, expected: Expected) -> bool:
    written = _written(samples, expected)
    return all(written[table] >= rows for table, rows in expected.rows.items())


def _check_report(worker: BenchWorker, expected: Expected, span: tuple[datetime, datetime]) -> str:
    """'' when the report's stage counts are the engine's; otherwise what differs."""
    problems = []
    for site in SITES:
        report = worker.report(site, *span)
        if report is None:
            problems.append(f"no report for {site}")
            continue
        for stage, sessions in stage_sessions(report).items():
            want = expected.stage_sessions.get((site, stage), 0)
            if sessions != want:
                problems.append(f"{site} {stage}: report {sessions}, engine {want}")
    return "; ".join(problems)
