"""`Publisher`: sends go straight to the producer, `delivered()` waits for every one of the
calling task's sends and fails the batch if any failed (typed), so its offsets are never acked;
another task's sends are not its business."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from streams.worker.publisher import DeliveryError, Publisher


class Producer:
    """Faust's `producer.send` contract: returns a future settled when the broker answers.

    A broker refusing a record cannot be produced on demand, hence this stand-in."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[Any]] = []
        self.calls: list[tuple[Any, ...]] = []

    async def send(self, *args: Any) -> asyncio.Future[Any]:
        self.calls.append(args)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


def test_delivered_waits_for_every_send_of_the_batch_and_only_those() -> None:
    async def scenario() -> list[str]:
        producer = Producer()
        publisher = Publisher(SimpleNamespace(producer=producer))  # type: ignore[arg-type]

        async def agent_batch() -> None:
            await publisher.send("t", key=b"k", value=b"v", partition=3, headers=[("h", b"1")])
            await publisher.send("t", key=None, value=None)
            await publisher.delivered()

        async def idle_tick() -> None:  # another task: its record is its own business
            await publisher.send("t", key=b"tick", value=b"v")
            await publisher.delivered()

        batch = asyncio.create_task(agent_batch())
        await asyncio.sleep(0)
        tick = asyncio.create_task(idle_tick())
        await asyncio.sleep(0)
        assert producer.calls == [("t", b"k", b"v", 3, None, [("h", b"1")]),
                                  ("t", None, None, None, None, None),
                                  ("t", b"tick", b"v", None, None, None)]  # fmt: skip
        seen: list[str] = []
        producer.futures[0].set_result("ok")
        producer.futures[2].set_exception(ConnectionError("tick record refused"))
        await asyncio.sleep(0)
        seen.append("done" if batch.done() else "waiting")
        producer.futures[1].set_result("ok")
        await batch  # the tick's failure is not the batch's
        seen.append("done")
        with pytest.raises(DeliveryError, match="tick record refused"):
            await tick
        await publisher.delivered()  # nothing pending: returns at once
        return seen

    assert asyncio.run(scenario()) == ["waiting", "done"]


def test_a_failed_delivery_fails_the_batch() -> None:
    async def scenario() -> None:
        producer = Producer()
        publisher = Publisher(SimpleNamespace(producer=producer))  # type: ignore[arg-type]
        await publisher.send("t", key=b"k", value=b"v")
        producer.futures[0].set_exception(ConnectionError("broker gone"))
        await publisher.delivered()

    with pytest.raises(DeliveryError, match="broker gone"):
        asyncio.run(scenario())
