"""EmbeddedBroker against the real tansu binary, and the tansu defects we work around.

Each `test_defect_*` asserts that tansu still misbehaves *and* that our workaround gives
Kafka's answer. When a tansu upgrade fixes a defect its test fails: drop the workaround.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import faust
import pytest
from aiokafka import (
    AIOKafkaClient,
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.offset import OffsetRequest

from streams.kafka.tansu_compat import TANSU_CLIENT_TIMEOUTS, ClientTimeouts, install_tansu_compat
from streams.kafka.topics import TopicError, create_topics
from streams.local.embedded_broker import EmbeddedBroker, EmbeddedBrokerError

pytestmark = pytest.mark.integration

UniqueTopic = Callable[[str], str]
_LATEST = -1  # ListOffsets timestamp meaning "end of the partition"


async def _raw_latest_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[int, int]:
    """Partition -> tansu's own ListOffsets(latest) answer, past any client-side fix."""
    topics = {tp.topic for tp in tps}
    assert len(topics) == 1
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        (node,) = client.cluster.brokers()
        request = OffsetRequest(-1, 0, [(topics.pop(), [(tp.partition, _LATEST) for tp in tps])])
        response = await client.send(node.nodeId, request)
        return {p: offset for _, parts in response.topics for p, _err, _ts, offset in parts}
    finally:
        await client.close()


async def _produce(bootstrap: str, topic: str, batches: Mapping[int, list[int]]) -> None:
    """Write `{partition: [batch sizes]}`, each size as one record batch, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for partition, sizes in batches.items():
            for size in sizes:
                batch = producer.create_batch()
                for i in range(size):
                    assert batch.append(key=None, value=b"v%d" % i, timestamp=None) is not None
                # Awaiting delivery before the next batch keeps batches apart.
                await (await producer.send_batch(batch, topic, partition=partition))
    finally:
        await producer.stop()


def _port_accepts(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


def test_broker_starts_on_loopback_and_stops_twice(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_dir=tmp_path)
    with broker:
        bootstrap = broker.bootstrap
        assert bootstrap.startswith("127.0.0.1:")
        assert _port_accepts(bootstrap)
    broker.stop()

    assert not _port_accepts(bootstrap)
    with pytest.raises(EmbeddedBrokerError, match="not running"):
        _ = broker.bootstrap
    assert broker.log_path is not None
    assert "listening on" in broker.log_path.read_text()


def test_broker_starts_from_inside_an_event_loop() -> None:
    async def main() -> str:
        with EmbeddedBroker() as broker:
            client = AIOKafkaClient(bootstrap_servers=broker.bootstrap)
            await client.bootstrap()
            await client.close()
            return broker.bootstrap

    assert asyncio.run(main()).startswith("127.0.0.1:")


def _fake_tansu(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-tansu"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    # Like tansu when its port is taken: says why on stderr, exits with status 0.
    fake = _fake_tansu(tmp_path, 'echo "boom: address in use" >&2; exit 0')

    with pytest.raises(EmbeddedBrokerError, match=r"(?s)exited with status 0.*boom: address"):
        EmbeddedBroker(log_dir=tmp_path, binary=fake).start()


def test_start_timeout_kills_even_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    fake = _fake_tansu(tmp_path, f"trap '' TERM; echo $$ > \"{pid_file}\"; exec sleep 30")
    broker = EmbeddedBroker(log_dir=tmp_path, binary=fake, startup_timeout=0.5, stop_timeout=0.2)

    with pytest.raises(EmbeddedBrokerError, match="did not accept Kafka connections"):
        broker.start()

    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_defect_unknown_topics_get_four_partitions(
    broker: EmbeddedBroker, unique_topic: UniqueTopic
) -> None:
    auto, single, triple = unique_topic("auto"), unique_topic("one"), unique_topic("three")

    async def main() -> dict[str, int]:
        await _produce(broker.bootstrap, auto, {0: [1]})
        await create_topics(broker.bootstrap, {single: 1, triple: 3})
        # Again, and over the auto-created topic: existing topics with the count are fine.
        await create_topics(broker.bootstrap, {single: 1, triple: 3, auto: 4})
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics([auto, single, triple])
        finally:
            await admin.close()
        return {d["topic"]: len(d["partitions"]) for d in described}

    assert asyncio.run(main()) == {auto: 4, single: 1, triple: 3}


def test_create_topics_refuses_a_different_partition_count(
    broker: EmbeddedBroker, unique_topic: UniqueTopic
) -> None:
    topic = unique_topic("events")
    asyncio.run(create_topics(broker.bootstrap, {topic: 2}))

    with pytest.raises(TopicError, match="exists with 2 partitions, not 3"):
        asyncio.run(create_topics(broker.bootstrap, {topic: 3}))


def test_defect_list_offsets_latest_stops_at_the_last_batch_start(
    broker: EmbeddedBroker, unique_topic: UniqueTopic
) -> None:
    topic = unique_topic("changelog")
    # p0: two lone records then a batch of 3 -> offsets 0..4, last batch starts at 2.
    # p1: one batch of 4. p2: lone records only, where tansu happens to be right.
    layout = {0: [1, 1, 3], 1: [4], 2: [1, 1, 1]}
    true_ends = {TopicPartition(topic, p): sum(sizes) for p, sizes in layout.items()}
    tps = list(true_ends)
    install_tansu_compat()

    async def main() -> None:
        await create_topics(broker.bootstrap, {topic: len(layout)})
        await _produce(broker.bootstrap, topic, layout)

        assert await _raw_latest_offsets(broker.bootstrap, tps) == {0: 3, 1: 1, 2: 3}

        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            assert await consumer.end_offsets(tps) == true_ends
            assert await consumer.beginning_offsets(tps) == dict.fromkeys(tps, 0)
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            assert {tp: await consumer.position(tp) for tp in tps} == true_ends
        finally:
            await consumer.stop()

        # auto_offset_reset="latest" goes through the same ListOffsets call.
        latest = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="latest")
        await latest.start()
        try:
            latest.assign(tps)
            assert {tp: await latest.position(tp) for tp in tps} == true_ends
        finally:
            await latest.stop()

    asyncio.run(main())


def test_install_tansu_compat_is_idempotent() -> None:
    install_tansu_compat()
    patched = Fetcher._proc_offset_request
    install_tansu_compat()

    assert Fetcher._proc_offset_request is patched
    # One layer of wrapping, not one per call.
    assert not hasattr(patched.__wrapped__, "__wrapped__")


def test_defect_compaction_is_accepted_but_never_applied(
    broker: EmbeddedBroker, unique_topic: UniqueTopic
) -> None:
    topic = unique_topic("compacted")
    eager_compaction = {
        "cleanup.policy": "compact",
        "segment.ms": "1",
        "min.cleanable.dirty.ratio": "0.001",
        "min.compaction.lag.ms": "0",
    }
    tp = TopicPartition(topic, 0)

    async def main() -> tuple[dict[str, str], list[bytes]]:
        await create_topics(broker.bootstrap, {topic: 1}, config=eager_compaction)
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
        finally:
            await admin.close()
        (resource,) = described.resources
        config = {name: value for name, value, *_ in resource[4]}

        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        try:
            for version in range(5):
                await producer.send_and_wait(topic, b"v%d" % version, key=b"same-key", partition=0)
        finally:
            await producer.stop()
        # tansu has no log cleaner, so there is no moment worth waiting for: if these
        # reads ever lose old values, tansu grew compaction and module docs need a look.
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, 0)
            values: list[bytes] = []
            # Several fetches may be needed; an empty one means there is no more.
            while len(values) < 5 and (fetched := await consumer.getmany(tp, timeout_ms=1000)):
                values += [record.value for record in fetched[tp]]
        finally:
            await consumer.stop()
        return config, values

    config, values = asyncio.run(main())
    assert config["cleanup.policy"] == "compact"
    assert values == [b"v%d" % version for version in range(5)]


# aiokafka ships no type hints, so its base class is Any to mypy.
class _AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked: object) -> None:
        pass

    async def on_partitions_assigned(self, assigned: object) -> None:
        self.assigned.set()


def test_defect_group_join_waits_half_the_session_timeout(
    broker: EmbeddedBroker, unique_topic: UniqueTopic
) -> None:
    topic = unique_topic("joins")
    timeouts = ClientTimeouts(session=2.0, rebalance=2.0, heartbeat=0.5)

    async def join_seconds() -> float:
        await create_topics(broker.bootstrap, {topic: 1})
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap,
            group_id=unique_topic("group"),
            session_timeout_ms=round(timeouts.session * 1000),
            rebalance_timeout_ms=round(timeouts.rebalance * 1000),
            heartbeat_interval_ms=round(timeouts.heartbeat * 1000),
        )
        listener = _AssignmentListener()
        consumer.subscribe([topic], listener=listener)
        started = time.monotonic()
        await consumer.start()
        try:
            await asyncio.wait_for(listener.assigned.wait(), timeout=timeouts.session * 2)
            return time.monotonic() - started
        finally:
            await consumer.stop()

    elapsed = asyncio.run(join_seconds())
    # Kafka answers a lone member's join at once; tansu holds it for session / 2.
    assert 0.45 * timeouts.session <= elapsed < timeouts.session


def test_recommended_timeouts_are_valid_faust_settings() -> None:
    app = faust.App("tansu-timeouts", **TANSU_CLIENT_TIMEOUTS.faust_settings())
    conf = app.conf

    assert conf.broker_session_timeout == TANSU_CLIENT_TIMEOUTS.session
    assert conf.broker_rebalance_timeout == TANSU_CLIENT_TIMEOUTS.rebalance
    assert conf.broker_heartbeat_interval == TANSU_CLIENT_TIMEOUTS.heartbeat
    # Faust refuses a session timeout above the request timeout; Kafka wants
    # heartbeats well inside the session.
    assert conf.broker_session_timeout <= conf.broker_request_timeout
    assert 3 * conf.broker_heartbeat_interval <= conf.broker_session_timeout
