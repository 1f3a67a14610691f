"""Produce straight through the Kafka client and confirm delivery once per batch.

Faust's `send_soon` goes through a 100-message buffer drained one message at a time, and its
consumer stops fetching while that buffer is full: with a changelog write per dirty session it
throttled the whole worker. Sends here are batched by the client itself; `delivered()` waits
for all of a batch's records before its offsets are acked, so a failed send fails the batch
instead of being lost behind a later commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import faust


class Publisher:
    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._pending: list[Awaitable[Any]] = []

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        delivery = await self._app.producer.send(topic, key, value, partition, None, headers)
        self._pending.append(delivery)

    async def delivered(self) -> None:
        pending, self._pending = self._pending, []
        await asyncio.gather(*pending)
