"""`funnel`: the one console script. Settings are built here, once, from FUNNEL_* variables."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from pydantic import ValidationError

from sinks.report_queries import BREAKDOWN_DIMENSIONS, ReportQuery
from streams.cli_analytics import add_analytics_commands, instant, print_answer
from streams.kafka.config import aiokafka_security, install_flavor_workarounds
from streams.kafka.producer import EventProducer, send_lines
from streams.local.demo import DemoOptions, run_demo
from streams.report.client import ReportError
from streams.report.numbers import DEFAULT_MIN_SESSIONS, ReportRequest
from streams.settings import Settings
from streams.sim.generator import SimulationConfig
from streams.sim.incidents import parse_incident
from streams.sim.sender import run_simulation
from streams.sim.spend import SpendTally
from streams.worker.run import ensure_topics, run_migrations, run_worker
from streams.worker.stopped_endpoint import serve_stopped

Command = Callable[[Settings, argparse.Namespace], int]


def _worker(settings: Settings, _: argparse.Namespace) -> int:
    run_worker(settings)
    return 0


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    applied = run_migrations(settings)
    print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def _settings(settings: Settings, _: argparse.Namespace) -> int:
    sys.stdout.buffer.write(orjson.dumps(settings.masked(), option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def _producer(settings: Settings) -> EventProducer:
    install_flavor_workarounds(settings)
    return EventProducer(
        settings.kafka_bootstrap,
        settings.events_topic,
        client_options=aiokafka_security(settings),
    )


def _send(settings: Settings, args: argparse.Namespace) -> int:
    async def send(lines: Iterable[bytes]) -> int:
        async with _producer(settings) as producer:
            return await send_lines(producer, lines)

    if args.file == "-":
        sent = asyncio.run(send(sys.stdin.buffer))
    else:
        with Path(args.file).open("rb") as lines:
            sent = asyncio.run(send(lines))
    print(f"sent {sent} messages to {settings.events_topic}", file=sys.stderr)
    return 0


def simulation_config(args: argparse.Namespace, *, now: datetime) -> SimulationConfig:
    start = datetime.fromisoformat(args.start) if args.start else now
    return SimulationConfig(
        start=start,
        seed=args.seed,
        sites=tuple(args.site or ["shop-1"]),
        sessions=args.sessions,
        duration=timedelta(seconds=args.duration) if args.duration else None,
        session_rate=args.session_rate,
        duplicate_rate=args.duplicates,
        out_of_order_ms=args.out_of_order_ms,
        invalid_rate=args.invalid_rate,
        customer_pool=args.customers,
        logged_in_share=args.logged_in_share,
        incidents=tuple(parse_incident(text) for text in args.incident or ()),
    )


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    config = simulation_config(args, now=datetime.now(UTC))
    ensure_topics(settings)

    tally = SpendTally(config)

    async def simulate() -> None:
        async with _producer(settings) as producer:
            stats = await run_simulation(
                producer, config, rate_limit=args.rate, observe=tally.observe
            )
        print(
            f"sent {stats.sent} messages ({stats.valid} valid, {stats.invalid} invalid, "
            f"{stats.duplicates} duplicates) in {stats.elapsed_s:.1f}s",
            file=sys.stderr,
        )

    asyncio.run(simulate())
    if args.spend_dir:
        for path in tally.write_csvs(Path(args.spend_dir)):
            print(f"spend: {path} (funnel spend import {path})", file=sys.stderr)
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    options = DemoOptions(
        duration_s=args.duration,
        rate=args.rate,
        keep=args.keep,
        incident=args.incident or f"checkout:mobile:-70%@{args.duration / 3:.0f}s",
        sites=tuple(args.site or ["shop-1", "shop-2"]),
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(2**31),
    )
    print(f"demo seed {options.seed}; Ctrl-C ends it early", file=sys.stderr)
    run_demo(settings, options, sys.stdout)
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    def build() -> ReportRequest:
        query = ReportQuery(args.site, args.start, args.end, args.by)
        return ReportRequest(query, args.min_sessions, args.json)

    return print_answer(settings, "report", build)


def _dashboard(settings: Settings, _: argparse.Namespace) -> int:
    def announce(url: str) -> None:
        print(f"dashboard: {url}  (Ctrl-C ends it)", file=sys.stderr, flush=True)

    try:
        serve_stopped(settings, announce)
    except ReportError as exc:
        print(f"funnel dashboard: {exc}", file=sys.stderr)
        return 1
    return 0


def add_simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (reproducible runs)")
    parser.add_argument("--site", action="append", help="site id; repeat for several")
    parser.add_argument("--sessions", type=int, default=None, help="number of sessions")
    parser.add_argument("--duration", type=float, help="event-time seconds of traffic")
    parser.add_argument("--session-rate", type=float, default=5.0, help="new sessions per s")
    parser.add_argument("--start", help="event time of the first session (ISO 8601); default now")
    parser.add_argument("--rate", type=float, help="messages per wall-clock second (default max)")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share re-sent verbatim")
    parser.add_argument("--out-of-order-ms", type=int, default=0, help="max delivery shuffle")
    parser.add_argument("--invalid-rate", type=float, default=0.0, help="share of bad messages")
    parser.add_argument(
        "--customers", type=int, default=1_000_000,
        help="logged-in sessions draw user ids from this many (small: returning customers)",
    )  # fmt: skip
    parser.add_argument(
        "--logged-in-share", type=float, default=0.3,
        help="share of sessions with a user_id (with --customers: how often customers return)",
    )  # fmt: skip
    parser.add_argument(
        "--incident",
        action="append",
        help="e.g. 'checkout:mobile:-70%%@10m' (STAGE[:FILTER]...:±P%%@T[-U]); repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funnel",
        description="Funnelstream: real-time e-commerce funnels. Configure with FUNNEL_* "
        "environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Command, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    command("worker", _worker, "Run a stream worker (validate, funnel state, sink).")
    command("migrate", _migrate, "Create or upgrade the ClickHouse schema.")
    command("settings", _settings, "Print the effective settings, secrets masked.")
    send = command("send", _send, "Send JSON lines (one event per line) to the events topic.")
    send.add_argument("file", nargs="?", default="-", help="file to read; - for stdin")
    simulate = command("simulate", _simulate, "Send simulated storefront traffic.")
    add_simulation_options(simulate)
    simulate.add_argument(
        "--spend-dir", help="write the matching ad spend there, a CSV per day (spend-DATE.csv)"
    )
    demo = command("demo", _demo, "Run broker, worker and simulator locally; live view, report.")
    demo.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    demo.add_argument("--rate", type=float, default=500.0, help="messages per second")
    demo.add_argument("--keep", action="store_true", help="keep the data in FUNNEL_DATA_DIR")
    demo.add_argument("--incident", help="default: mobile checkouts drop 70%% a third in")
    demo.add_argument("--site", action="append", help="site id; repeat for several")
    demo.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    command("dashboard", _dashboard, "Serve the web dashboard over a stopped worker's data.")
    report = command("report", _report, "Funnel numbers of one site over [--from, --to).")
    report.add_argument("--site", required=True, help="site id")
    report.add_argument("--from", dest="start", required=True, type=instant, metavar="ISO")
    report.add_argument("--to", dest="end", required=True, type=instant, metavar="ISO")
    report.add_argument("--by", choices=BREAKDOWN_DIMENSIONS, help="break down by a dimension")
    report.add_argument("--json", action="store_true", help="JSON instead of a table")
    report.add_argument(
        "--min-sessions", type=int, default=DEFAULT_MIN_SESSIONS,
        help="sessions a step needs before it can be the worst step",
    )  # fmt: skip
    add_analytics_commands(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    try:
        settings = Settings()
    except ValidationError as exc:
        # One line per bad variable, no stack trace: a configuration mistake, not a bug.
        problems = "; ".join(error["msg"] for error in exc.errors())
        print(f"funnel: invalid FUNNEL_* settings: {problems}", file=sys.stderr)
        return 2
    return handler(settings, args)
