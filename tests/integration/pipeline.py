"""Run real `funnel worker` processes against the test broker and read what they wrote."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clickhouse_connect
from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client

from streams.kafka.producer import EventProducer
from streams.local.live_view import Samples, scrape
from streams.local.live_view import total as sample_total
from streams.local.ports import free_port, local_worker_env
from streams.local.processes import stop_process_group
from streams.settings import Settings
from streams.sim.generator import SimulatedMessage
from streams.worker.run import ensure_topics


@dataclass
class PipelineConfig:
    """One isolated pipeline: its own topics, consumer group and ClickHouse database."""

    bootstrap: str
    name: str
    data_dir: Path
    partitions: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def events_topic(self) -> str:
        return f"{self.name}.events"

    @property
    def dlq_topic(self) -> str:
        return f"{self.name}.dlq"

    @property
    def abandoned_topic(self) -> str:
        return f"{self.name}.abandoned"

    def create_topics(self) -> None:
        """The worker's own topic set, created the way the worker creates it."""
        ensure_topics(
            Settings(
                kafka_bootstrap=self.bootstrap,
                app_id=self.name,  # names the repartition topic, as FUNNEL_APP_ID below
                topic_partitions=self.partitions,
                events_topic=self.events_topic,
                dlq_topic=self.dlq_topic,
                abandoned_topic=self.abandoned_topic,
            )
        )

    def env(self, *, data_dir: Path, metrics_port: int) -> dict[str, str]:
        return {
            **os.environ,
            **local_worker_env(
                bootstrap=self.bootstrap,
                data_dir=data_dir,
                partitions=self.partitions,
                metrics_port=metrics_port,
            ),
            "FUNNEL_APP_ID": self.name,
            "FUNNEL_EVENTS_TOPIC": self.events_topic,
            "FUNNEL_DLQ_TOPIC": self.dlq_topic,
            "FUNNEL_ABANDONED_TOPIC": self.abandoned_topic,
            "FUNNEL_IDLE_AFTER_S": "2",
            "FUNNEL_COMMIT_INTERVAL_S": "0.5",
            **self.extra_env,
        }


class WorkerProcess:
    """A `funnel worker` subprocess; its chDB lives in `data_dir` (one open path per process)."""

    def __init__(self, config: PipelineConfig, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.metrics_port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "worker.log"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker"],
                env=config.env(data_dir=data_dir, metrics_port=self.metrics_port),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def metrics(self) -> Samples:
        """Samples keyed by (name, sorted labels); empty while the worker is not up yet."""
        return scrape(self.metrics_port)

    def total(self, name: str, **labels: str) -> float:
        return sample_total(self.metrics(), name, **labels)

    def wait_until(self, condition: Callable[[], bool], *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(
                    f"worker exited ({self._process.returncode}):\n{self.log_tail()}"
                )
            if condition():
                return
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log_tail()}")

    def wait_exit(self, timeout: float) -> int:
        """The exit code of a worker expected to stop by itself."""
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker still running:\n{self.log_tail()}") from None

    def stop(self, timeout: float = 60) -> int:
        return stop_process_group(self._process, timeout)

    def kill(self) -> None:
        """kill -9 the worker's whole process group: no shutdown, no final commit."""
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(30)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def watermarks_past(worker: WorkerProcess, bound_s: float) -> Callable[[], bool]:
    """All four partitions' watermarks at or past `bound_s`: everything before is final."""

    def check() -> bool:
        marks = [v for (n, _), v in worker.metrics().items() if n == "funnel_watermark_seconds"]
        return len(marks) == 4 and min(marks) >= bound_s

    return check


@contextmanager
def clickhouse(data_dir: Path) -> Iterator[Client]:
    """The worker's embedded ClickHouse, opened after the worker stopped, closed after use."""
    client = clickhouse_connect.get_client(dsn=f"chdb:///{(data_dir / 'chdb').resolve()}")
    try:
        yield client
    finally:
        client.close()


def query(
    data_dir: Path, sql: str, parameters: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    with clickhouse(data_dir) as client:
        return [tuple(row) for row in client.query(sql, parameters=parameters).result_rows]


async def produce(bootstrap: str, topic: str, messages: Iterable[SimulatedMessage]) -> int:
    async with EventProducer(bootstrap, topic) as producer:
        return await producer.send_raw_many((m.key, m.value) for m in messages)


async def read_all(bootstrap: str, topic: str, count: int) -> list[object]:
    """The records of `topic` from the start: `count` of them, and any more a second later."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None,
        fetch_max_bytes=8 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    await consumer.start()
    records: list[object] = []
    try:
        async with asyncio.timeout(60):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=500)
                records.extend(itertools.chain.from_iterable(batches.values()))
        # Anything beyond `count` would be a duplicate (dead letter, abandoned cart): let it show.
        extra = await consumer.getmany(timeout_ms=1000)
        records.extend(itertools.chain.from_iterable(extra.values()))
    finally:
        await consumer.stop()
    return records
