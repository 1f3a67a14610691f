"""The worker process: its Faust `Worker` keeps the log level it is given, its GC is tuned, and
it runs on uvloop."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator

import faust
import pytest
import uvloop

from streams.worker.run import faust_worker, tune_gc, use_uvloop


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


def test_debug_lines_are_not_built_at_warning(root_logger: logging.Logger) -> None:
    app = faust.App("run-logging", broker="kafka://127.0.0.1:1", autodiscover=False)
    worker = faust_worker(app, loglevel="WARNING")
    worker._setup_logging()  # what the worker does on start
    # Faust's stock Worker turns the root logger to DEBUG here (for its spinner); aiokafka
    # then formats a debug line for every record it produces.
    assert root_logger.getEffectiveLevel() == logging.WARNING
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)


def test_gc_is_tuned_for_a_long_running_worker() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (50_000, 10, 10)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_worker_runs_on_uvloop() -> None:
    before = asyncio.get_event_loop_policy()
    try:
        use_uvloop()
        loop = asyncio.new_event_loop()  # as Faust's consumer thread makes its own
        assert isinstance(loop, uvloop.Loop)
        loop.close()
    finally:
        asyncio.set_event_loop_policy(before)
