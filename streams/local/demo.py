"""`funnel demo`: the whole pipeline on one machine, no Docker, no network.

Starts the embedded broker, sends eight weeks of past traffic (returning customers), starts a
real `funnel worker` process with embedded chDB, and the simulator at a steady rate with an
incident part-way; shows a live view from the worker's /metrics and
ends with the report. Lateness and the cart timeout are shortened so a one-minute run finalises
sessions and abandons carts while you watch.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time as clock
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TextIO

from sinks.customer_queries import CustomersQuery
from sinks.marketing_queries import MarketingQuery
from sinks.report_queries import ReportQuery
from streams.dashboard.access import dashboard_url
from streams.kafka.producer import EventProducer
from streams.kafka.tansu_compat import install_tansu_compat
from streams.kafka.topics import create_topics
from streams.local.embedded_broker import EmbeddedBroker
from streams.local.live_view import Progress, Samples, render, scrape, total
from streams.local.ports import free_port, local_worker_env, loopback_port
from streams.report.client import answer, report_output
from streams.report.customers import CustomersRequest
from streams.report.marketing import MarketingRequest
from streams.report.numbers import DEFAULT_MIN_SESSIONS, ReportRequest
from streams.report.spend_import import import_spend_file
from streams.report.store import endpoint_url
from streams.settings import Settings
from streams.sim.generator import SimulationConfig
from streams.sim.incidents import parse_incident
from streams.sim.sender import SimulationStats, run_simulation
from streams.sim.spend import SpendTally
from streams.sim.traffic import MESSAGES_PER_SESSION
from streams.worker.stopped_endpoint import serve_stopped

DEMO_CUSTOMERS = 50
DEMO_RULES = {"FUNNEL_LATENESS_S": "5", "FUNNEL_ABANDONMENT_TIMEOUT_S": "20"}
# Eight weeks of past traffic from the same customers, sent before the worker starts, so the
# customers summary ends with real cohorts, repeat buyers and spread-out recency.
HISTORY = timedelta(weeks=8)
HISTORY_SESSIONS = 4_000
HISTORY_LOGGED_IN = 0.6


@dataclass(frozen=True, slots=True)
class DemoOptions:
    duration_s: float
    rate: float
    keep: bool
    incident: str
    sites: tuple[str, ...]
    seed: int


def run_demo(settings: Settings, options: DemoOptions, out: TextIO) -> Path:
    """Run the demo; returns the data directory the worker wrote (kept only with --keep)."""
    parse_incident(options.incident)  # fail before starting anything
    data_dir = settings.data_dir if options.keep else Path(tempfile.mkdtemp(prefix="funnel-demo-"))
    # A fresh broker starts empty, so last run's tables would only confuse the report.
    shutil.rmtree(data_dir / "chdb", ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    install_tansu_compat()
    with EmbeddedBroker(log_dir=data_dir) as broker:
        asyncio.run(
            create_topics(
                broker.bootstrap,
                {
                    settings.events_topic: settings.topic_partitions,
                    settings.dlq_topic: settings.topic_partitions,
                    settings.abandoned_topic: settings.topic_partitions,
                },
            )
        )
        history = asyncio.run(_send_history(settings, broker.bootstrap, options, datetime.now(UTC)))
        metrics_port = free_port()
        # The worker serves the dashboard; the user's FUNNEL_QUERY_PORT when it is free.
        settings = settings.model_copy(update={"query_port": loopback_port(settings.query_port)})
        worker = _start_worker(settings, broker.bootstrap, data_dir, metrics_port)
        until = "until Ctrl-C" if options.keep else "while the demo runs"
        token_set = bool(settings.dashboard_token.get_secret_value())
        url = dashboard_url(endpoint_url(settings), None, token_set=token_set)
        banner = f"dashboard: {url}  (live {until})"
        print(banner, file=out, flush=True)
        try:
            started = datetime.now(UTC)
            stats, tally = asyncio.run(
                _simulate_and_watch(
                    settings, broker.bootstrap, options, (metrics_port, banner), started, out
                )
            )
            _drain(metrics_port, history + stats.sent, out)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
    ended = datetime.now(UTC)
    demo_settings = settings.model_copy(update={"data_dir": data_dir, "clickhouse_dsn": ""})
    for site in options.sites:
        request = ReportRequest(
            ReportQuery(site, started, ended, None), DEFAULT_MIN_SESSIONS, False
        )
        print(f"\n=== report for {site}, {started:%H:%M:%S} to {ended:%H:%M:%S} UTC ===", file=out)
        out.write(report_output(demo_settings, request).decode())
    _business_tables(demo_settings, options.sites, tally, data_dir / "spend", started, ended, out)
    if options.keep:
        print(f"\nworker log: {data_dir / 'worker.log'}", file=out)
        print(
            f"data kept in {data_dir}: FUNNEL_DATA_DIR={data_dir} funnel report --site "
            f"{options.sites[0]} --from {started.isoformat()} --to {ended.isoformat()}",
            file=out,
        )
        _keep_serving(demo_settings, out)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return data_dir


async def _send_history(
    settings: Settings, bootstrap: str, options: DemoOptions, now: datetime
) -> int:
    """The customers' past: HISTORY of sessions ending the day before today (so the demo's
    marketing days hold only the live traffic and its spend)."""
    end = datetime.combine(now.date(), time(), UTC) - timedelta(days=1)
    config = SimulationConfig(
        start=end - HISTORY,
        seed=options.seed + 1,
        sites=options.sites,
        sessions=HISTORY_SESSIONS,
        session_rate=HISTORY_SESSIONS / HISTORY.total_seconds(),
        logged_in_share=HISTORY_LOGGED_IN,
        customer_pool=DEMO_CUSTOMERS,
    )
    async with EventProducer(bootstrap, settings.events_topic) as producer:
        return (await run_simulation(producer, config)).sent


def _start_worker(
    settings: Settings, bootstrap: str, data_dir: Path, metrics_port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **local_worker_env(
            bootstrap=bootstrap,
            data_dir=data_dir,
            partitions=settings.topic_partitions,
            metrics_port=metrics_port,
        ),
        "FUNNEL_IDLE_AFTER_S": "2",
        "FUNNEL_QUERY_PORT": str(settings.query_port),
        "FUNNEL_MAX_EVENT_AGE_S": str(int((HISTORY + timedelta(days=3)).total_seconds())),
        **DEMO_RULES,
    }
    log = (data_dir / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "streams", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def _simulate_and_watch(
    settings: Settings,
    bootstrap: str,
    options: DemoOptions,
    watch: tuple[int, str],  # the worker's metrics port, the dashboard banner
    started: datetime,
    out: TextIO,
) -> tuple[SimulationStats, SpendTally]:
    metrics_port, banner = watch
    config = SimulationConfig(
        start=started,
        seed=options.seed,
        sites=options.sites,
        sessions=None,
        session_rate=options.rate / MESSAGES_PER_SESSION,
        duplicate_rate=0.01,
        out_of_order_ms=2_000,
        invalid_rate=0.01,
        incidents=(parse_incident(options.incident),),
        # Sessions take minutes in real life; a tenth of that lets a one-minute demo show
        # checkouts, purchases and abandonments.
        pace=0.1,
        customer_pool=DEMO_CUSTOMERS,  # returning customers, so cohorts and segments fill
    )
    stop = asyncio.Event()
    tally = SpendTally(config)
    async with EventProducer(bootstrap, settings.events_topic) as producer:
        sending = asyncio.create_task(
            run_simulation(
                producer, config, rate_limit=options.rate, stop=stop, observe=tally.observe
            )
        )
        clock_start = clock.monotonic()
        before: Samples = {}
        tty = out.isatty()
        while (elapsed := clock.monotonic() - clock_start) < options.duration_s:
            await asyncio.sleep(1.0)
            now = await asyncio.to_thread(scrape, metrics_port)
            sent = round(elapsed * options.rate)
            progress = Progress(elapsed, options.duration_s, sent, options.incident)
            lines = render(now, before, 1.0, progress)
            if tty:  # the screen is cleared each second: keep the dashboard address on it
                out.write("\x1b[H\x1b[2J" + "\n".join([banner, "", *lines]) + "\n")
            elif int(elapsed) % 10 == 0:
                out.write("\n".join(lines) + "\n\n")
            out.flush()
            before = now
        stop.set()
        return await sending, tally


def _business_tables(
    settings: Settings,
    sites: tuple[str, ...],
    tally: SpendTally,
    spend_dir: Path,
    started: datetime,
    ended: datetime,
    out: TextIO,
) -> None:
    """Import the spend matching the traffic; the marketing table of the whole days and the
    customers summary with weekly cohorts and segments."""
    for path in tally.write_csvs(spend_dir):
        import_spend_file(settings, path, site=None, skip_invalid=False)
    # Spend is per UTC day, so the marketing range is the days the demo ran in.
    first = datetime.combine(started.date(), time(), UTC)
    last = datetime.combine(ended.date(), time(), UTC) + timedelta(days=1)
    for site in sites:
        request = MarketingRequest(MarketingQuery(site, first, last))
        print(f"\n=== marketing for {site} ===", file=out)
        out.write(answer(settings, "marketing", request).decode())
        customers = CustomersRequest(
            CustomersQuery(site, ended), "week", HISTORY.days // 7, segments=True
        )
        print(f"\n=== customers of {site} ===", file=out)
        out.write(answer(settings, "customers", customers).decode())


def _keep_serving(settings: Settings, out: TextIO) -> None:
    """--keep: the dashboard over the kept data, at the URL printed at the start."""

    def announce(url: str) -> None:
        print(f"\ndashboard: {url}  (serving the kept data until Ctrl-C)", file=out, flush=True)

    serve_stopped(settings, announce)


def _drain(metrics_port: int, sent: int, out: TextIO, timeout_s: float = 120) -> None:
    """Wait until the worker consumed everything and finalised what lateness allows."""
    print(f"\nsimulator stopped after {sent:,} messages; letting the worker catch up…", file=out)
    deadline = clock.monotonic() + timeout_s
    while clock.monotonic() < deadline:
        if total(scrape(metrics_port), "funnel_events_consumed_total") >= sent:
            break
        clock.sleep(0.5)
    # Idle partitions advance their watermark from the wall clock after FUNNEL_IDLE_AFTER_S;
    # give that and the shortened lateness time to finalise the last sessions.
    clock.sleep(2 + 2 * int(DEMO_RULES["FUNNEL_LATENESS_S"]) + 2)
