"""`StagedTableStore`: writes wait for `apply()`, which writes the local table and returns
Faust's own changelog records for the partition's changelog partition, sent later; a partition
sees and discards only its own keys."""

from __future__ import annotations

import asyncio

from streams.worker.table_store import StagedTableStore, keep_only
from tests.unit.worker.fakes import RecordingPublisher, sessions_table


def test_writes_are_staged_until_applied_then_reach_table_and_changelog() -> None:
    table = sessions_table()
    table.data[b"2|old"] = b"v0"
    store = StagedTableStore(table, partition=2)
    store.put("new", b"v1")
    store.delete("old")
    # Reads see the staged changes; the table does not yet.
    assert (store.get("new"), store.get("old")) == (b"v1", None)
    assert dict(table.data) == {b"2|old": b"v0"}

    changes = store.apply()
    assert dict(table.data) == {b"2|new": b"v1"}
    publisher = RecordingPublisher([])
    assert publisher.sent == []  # nothing is sent until the batch's rows are flushed
    asyncio.run(changes.send(publisher))
    changelog = table.changelog_topic.get_topic_name()
    assert sorted(publisher.sent, key=repr) == sorted(
        [(changelog, b"2|new", b"v1", 2), (changelog, b"2|old", None, 2)], key=repr
    )
    # Applied once: a second apply has nothing left to send.
    assert store.apply().records == []


def test_a_partition_lists_its_own_keys_and_discard_forgets_only_staged_writes() -> None:
    table = sessions_table()
    table.data.update({b"1|a": b"1a", b"1|b": b"1b", b"12|a": b"12a", b"2|a": b"2a"})
    one = StagedTableStore(table, partition=1)
    assert sorted(one.items()) == [("a", b"1a"), ("b", b"1b")]
    one.put("c", b"staged")
    one.discard()
    # Kept: Faust recovers a partition kept across a rebalance only from where it stopped.
    assert dict(table.data) == {b"1|a": b"1a", b"1|b": b"1b", b"12|a": b"12a", b"2|a": b"2a"}
    assert one.get("c") is None


def test_keep_only_drops_the_keys_of_partitions_not_assigned() -> None:
    table = sessions_table()
    table.data.update({b"1|a": b"1a", b"12|a": b"12a", b"2|a": b"2a"})
    keep_only(table, {2, 12})
    assert dict(table.data) == {b"12|a": b"12a", b"2|a": b"2a"}
