"""The batch seam leans on Faust internals; any change to them must fail here, loudly.

`streams.worker.faust_batches` overrides private consumer methods and relies on how Faust's
drain loop, `getmany` and commit path call them. If a Faust upgrade renames, re-signs or
rewires any of these, the worker could silently stop handling events or commit wrongly; this
test names the exact assumption that broke. Re-read the module's docstring before updating
`FAUST_VERSION`.
"""

from __future__ import annotations

import asyncio
import inspect
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.tables import TableManager
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.worker.faust_batches import (
    FAUST_VERSION,
    FETCH_MAX_WAIT_MS,
    BatchConsumer,
    BatchTransport,
    PromptTableManager,
    Record,
    install_batch_consumer,
)

Base = faust_consumer.Consumer
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def source(function: Callable[..., Any]) -> str:
    return inspect.getsource(function)


async def _never_called(records: Sequence[Record]) -> asyncio.Future[None]:
    raise AssertionError("no records in this test")


def test_faust_is_the_version_the_seam_was_written_for() -> None:
    assert faust.__version__ == FAUST_VERSION
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert f"faust-streaming=={FAUST_VERSION}" in dependencies


def test_overridden_methods_keep_their_signatures() -> None:
    assert parameters(Base._wait_next_records) == ["self", "timeout"]
    assert parameters(Base._new_offset) == ["self", "tp"]
    assert parameters(Base._filter_tps_with_pending_acks) == ["self", "topics"]
    assert parameters(Base.perform_seek) == ["self"]
    assert parameters(Base.seek) == ["self", "partition", "offset"]
    assert parameters(Base.wait_empty) == ["self"]
    assert parameters(Base.on_partitions_revoked) == ["self", "revoked"]
    assert inspect.iscoroutinefunction(Base._wait_next_records)
    assert not inspect.iscoroutinefunction(Base._new_offset)


def test_every_fetch_goes_through_wait_next_records() -> None:
    # The drain loop fetches only through getmany, and getmany only through
    # _wait_next_records, which returns (records, active partitions).
    assert "getmany(timeout=" in source(Base._drain_messages)
    getmany = source(Base.getmany)
    assert "await self._wait_next_records(timeout)" in getmany
    assert "if records is None" in getmany  # our "flow stopped" answer makes it return
    assert "self._getmany(" in source(Base._wait_next_records)
    assert "self.can_resume_flow" in source(Base._wait_next_records)


def test_commits_take_offsets_from_new_offset() -> None:
    force_commit = source(Base.force_commit)
    assert "self._filter_tps_with_pending_acks(topics)" in force_commit
    filtered = source(Base._filter_committable_offsets)
    assert "self._new_offset(tp)" in filtered
    assert "self._should_commit(tp, offset)" in filtered
    # Revoked partitions are never committed, whatever _new_offset says.
    assert "if tp in assignment:" in source(Base._commit_offsets)


def test_revocation_commits_through_wait_empty_before_the_signal() -> None:
    revoked = source(faust.App._on_partitions_revoked)
    assert revoked.index("consumer.stop_flow") < revoked.index("_consumer_wait_empty")
    assert revoked.index("_consumer_wait_empty") < revoked.index("on_partitions_revoked.send")
    assert "commit" in source(Base.wait_empty)


def test_recovery_seeks_through_perform_seek() -> None:
    from faust.tables import recovery

    assert "consumer.perform_seek()" in source(recovery.Recovery._resume_streams)
    assert "self.seek_to_committed()" in source(Base.perform_seek)


def test_the_transport_builds_our_consumer() -> None:
    assert issubclass(BatchConsumer, faust_aiokafka.Consumer)
    assert issubclass(BatchTransport, faust_aiokafka.Transport)
    assert BatchTransport.Consumer is BatchConsumer
    assert "self.Consumer(" in source(faust.transport.base.Transport.create_consumer)
    assert "self.transport.create_consumer(" in source(faust.App._new_consumer)


def test_the_aiokafka_producer_is_faust_producers_own() -> None:
    # Record batches go straight to the aiokafka producer Faust starts and stops.
    ensure = source(faust_aiokafka.Producer._ensure_producer)
    assert "return self._producer" in ensure
    assert "self._producer = self._new_producer()" in source(faust_aiokafka.Producer.on_start)


def test_the_consumer_thread_and_its_fetch_wait_are_ours() -> None:
    # Faust builds its aiokafka consumer in the thread _new_consumer_thread makes, with a fixed
    # long poll that start() hands to the fetcher; ours replaces that value before start().
    assert "AIOKafkaConsumerThread(self," in source(faust_aiokafka.Consumer._new_consumer_thread)
    create = source(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in create
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in source(AIOKafkaConsumer.start)


def test_the_worker_consumer_long_polls_briefly() -> None:
    async def fetch_wait_ms() -> int:
        app = faust.App("seam-fetch-wait", broker="kafka://127.0.0.1:1", autodiscover=False)
        install_batch_consumer(app, ["events"], _never_called)
        consumer = app.consumer
        assert isinstance(consumer, BatchConsumer)
        thread = consumer._new_consumer_thread()
        transport = app.transport
        assert isinstance(transport, BatchTransport)
        aiokafka_consumer = thread._create_worker_consumer(transport)
        try:
            wait_ms: int = aiokafka_consumer._fetch_max_wait_ms
        finally:
            await aiokafka_consumer.stop()
            # Faust's consumer threads make their own event loops on construction.
            for loop in (consumer._thread.loop, thread.loop):
                loop.close()
        return wait_ms

    assert asyncio.run(fetch_wait_ms()) == FETCH_MAX_WAIT_MS < 1500


def test_the_table_manager_skips_only_the_start_up_sleep() -> None:
    # PromptTableManager.on_start is Faust's without `await self.sleep(1.0)`.
    faust_start = source(TableManager.on_start)
    assert "await self.sleep(1.0)" in faust_start
    ours = source(PromptTableManager.on_start)
    for call in ("await self._update_channels()", "await self.recovery.start()"):
        assert call in faust_start
        assert call in ours
    assert "sleep" not in ours
    app = faust.App("seam-tables", TableManager=PromptTableManager, autodiscover=False)
    assert type(app.tables) is PromptTableManager
