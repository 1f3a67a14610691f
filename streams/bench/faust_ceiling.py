"""Faust's own ceiling: a minimal app whose one agent takes batches and does nothing else.

Same broker settings and batch shape as the worker (`take_events(5000, within=0.25)`), no
decoding, no state, no sink: what the worker could reach if its own work cost nothing. The
parent starts it as `python -m streams.bench.faust_ceiling ...`; once it has counted N events
it writes its timings (CLOCK_MONOTONIC, shared by the processes of one machine) to a file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import faust
import orjson

from streams.bench.procs import ChildProcess, child_env
from streams.bench.results import Run
from streams.bench.stats import STEADY_FROM
from streams.kafka.tansu_compat import TANSU_CLIENT_TIMEOUTS, install_tansu_compat
from streams.worker.run import faust_worker

BATCH_MAX = 5_000
BATCH_WITHIN_S = 0.25
_POLL_S = 0.2


def create_ceiling_app(
    *, app_id: str, bootstrap: str, topic: str, partitions: int, data_dir: Path,
    on_batch: Callable[[int], None],
) -> faust.App:  # fmt: skip
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(data_dir),
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=2.0,
        topic_partitions=partitions,
        topic_replication_factor=1,
        web_enabled=False,
        autodiscover=False,
        **TANSU_CLIENT_TIMEOUTS.faust_settings(),
    )
    events = app.topic(topic, key_serializer="raw", value_serializer="raw", internal=False)

    async def take(stream: faust.StreamT[bytes]) -> None:
        # take_events exists on Stream but faust's StreamT interface does not declare it.
        batches = stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S)  # type: ignore[attr-defined]
        async for batch in batches:
            on_batch(len(batch))

    app.agent(events, name="bench-ceiling")(take)
    return app


class _Counter:
    """Counts events; writes the timings once, when `events` have been seen."""

    def __init__(self, events: int, result: Path) -> None:
        self._events = events
        self._result = result
        self._count = 0
        self._steady: tuple[float, int] | None = None

    def __call__(self, taken: int) -> None:
        done = self._count >= self._events
        self._count += taken
        now = time.monotonic()
        if self._steady is None and self._count >= STEADY_FROM * self._events:
            self._steady = (now, self._count)
        if not done and self._count >= self._events:
            steady_at, steady_count = self._steady or (now, self._count)
            doc = {"done": now, "count": self._count, "steady_at": steady_at}
            doc["steady_count"] = steady_count
            partial = self._result.with_suffix(".tmp")
            partial.write_bytes(orjson.dumps(doc))
            partial.rename(self._result)  # the parent never reads half a file


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("bootstrap", "topic", "app-id", "data-dir", "result"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    args = parser.parse_args(argv)
    install_tansu_compat()
    app = create_ceiling_app(
        app_id=args.app_id,
        bootstrap=args.bootstrap,
        topic=args.topic,
        partitions=args.partitions,
        data_dir=Path(args.data_dir),
        on_batch=_Counter(args.events, Path(args.result)),
    )
    faust_worker(app, loglevel="WARNING").execute_from_commandline()


def ceiling_run(
    *, bootstrap: str, topic: str, partitions: int, events: int, app_id: str, work_dir: Path,
    timeout_s: float,
) -> Run:  # fmt: skip
    """Start the app as a process; timed from process start to the N-th event taken."""
    work_dir.mkdir(parents=True, exist_ok=True)
    result = work_dir / "result.json"
    argv = [
        sys.executable, "-m", "streams.bench.faust_ceiling", "--bootstrap", bootstrap,
        "--topic", topic, "--partitions", str(partitions), "--events", str(events),
        "--app-id", app_id, "--data-dir", str(work_dir / "faust"), "--result", str(result),
    ]  # fmt: skip
    with ChildProcess(argv, env=child_env({}), log_path=work_dir / "faust.log") as child:
        while not result.exists():
            child.check_alive("the Faust ceiling app")
            if time.monotonic() - child.started > timeout_s:
                return Run(events=events, wall_s=None, note=f"timed out after {timeout_s:.0f} s")
            time.sleep(_POLL_S)
    doc = orjson.loads(result.read_bytes())
    steady_s = doc["done"] - doc["steady_at"]
    steady = (doc["count"] - doc["steady_count"]) / steady_s if steady_s > 0 else None
    return Run(events=events, wall_s=doc["done"] - child.started, steady_events_per_s=steady)


if __name__ == "__main__":
    main()
