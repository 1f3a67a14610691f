"""The worker's Faust `Worker` keeps the log level it is given."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import faust
import pytest

from streams.worker.run import faust_worker


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
