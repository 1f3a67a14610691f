"""One real `funnel worker` process for a benchmark part: its own consumer group and chDB."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from sinks.report_queries import ReportQuery
from streams.bench.procs import ChildProcess, child_env
from streams.bench.system import cpu_seconds, rss_bytes
from streams.local.live_view import Samples, scrape
from streams.local.ports import free_port, local_worker_env
from streams.report.numbers import ReportRequest
from streams.report.store import QUERY_HOST

# Once a partition has nothing left to read, the worker's 1 s timer lets the wall clock move
# its watermark after this long; that is what finalises the last sessions of a finite run.
IDLE_AFTER_S = 1.0


class BenchWorker(ChildProcess):
    def __init__(
        self,
        *,
        bootstrap: str,
        app_id: str,
        events_topic: str,
        partitions: int,
        data_dir: Path,
        rules_env: Mapping[str, str],
    ) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        local = local_worker_env(
            bootstrap=bootstrap,
            data_dir=data_dir,
            partitions=partitions,
            metrics_port=self.metrics_port,
        )
        self.query_port = int(local["FUNNEL_QUERY_PORT"])
        env = child_env(
            {
                **local,
                "FUNNEL_APP_ID": app_id,
                "FUNNEL_EVENTS_TOPIC": events_topic,
                "FUNNEL_DLQ_TOPIC": f"{app_id}.dlq",
                "FUNNEL_ABANDONED_TOPIC": f"{app_id}.abandoned",
                "FUNNEL_IDLE_AFTER_S": str(IDLE_AFTER_S),
                **rules_env,
            }
        )
        argv = [sys.executable, "-m", "streams", "worker"]
        super().__init__(argv, env=env, log_path=data_dir / "worker.log")

    def metrics(self) -> Samples:
        """Empty while the worker is not serving yet."""
        return scrape(self.metrics_port)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def report(self, site: str, start: datetime, end: datetime) -> dict[str, Any] | None:
        """The worker's report (JSON) for [start, end); None while it cannot answer."""
        request = ReportRequest(ReportQuery(site, start, end), as_json=True)
        url = f"http://{QUERY_HOST}:{self.query_port}/report?{urlencode(request.as_params())}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body: dict[str, Any] = orjson.loads(response.read())
        except OSError:
            return None
        return body


def stage_sessions(report: Mapping[str, Any]) -> dict[str, int]:
    """Sessions per stage name from a report's JSON."""
    return {entry["stage"]: entry["sessions"] for entry in report["stages"]}
