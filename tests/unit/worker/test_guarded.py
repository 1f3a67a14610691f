"""The idle tick's guard: a failure exits the worker, except while the worker is stopping."""

from __future__ import annotations

import asyncio
from typing import NoReturn

import pytest

from streams.worker.assembly import guarded


class ExitedError(Exception):
    pass


def fatal(error: BaseException, where: str) -> NoReturn:
    raise ExitedError(f"{where}: {error}")


async def closed_producer() -> None:
    raise RuntimeError("ProducerClosed")


def test_a_failing_tick_is_fatal_while_the_worker_runs() -> None:
    tick = guarded(closed_producer, fatal, "idle tick", stopping=lambda: False)
    with pytest.raises(ExitedError, match="idle tick: ProducerClosed"):
        asyncio.run(tick())


def test_a_tick_cut_short_by_the_worker_stopping_is_not_a_crash() -> None:
    tick = guarded(closed_producer, fatal, "idle tick", stopping=lambda: True)
    asyncio.run(tick())  # returns: the stop goes on and exits 0
