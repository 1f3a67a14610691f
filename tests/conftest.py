"""Fixtures shared by every test: one tansu broker per session, unique topic names."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest

from streams.kafka.tansu_compat import install_tansu_compat
from streams.local.embedded_broker import EmbeddedBroker

# Kafka topic names allow only these characters (and at most 249 of them).
_NOT_IN_TOPIC_NAME = re.compile(r"[^a-zA-Z0-9._-]+")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A tansu broker shared by the session; its log is kept in the pytest tmp dir.

    Tests share it and stay apart through unique topic and group names. The tansu
    end-offset fix is installed first, since every consumer of this broker needs it.
    """
    install_tansu_compat()
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("tansu")) as running:
        yield running


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Make topic names no other test (or earlier run) uses: `unique_topic("events")`."""
    test_name = _NOT_IN_TOPIC_NAME.sub("-", request.node.name)[:80]

    def make(prefix: str = "topic") -> str:
        return f"{prefix}-{test_name}-{uuid.uuid4().hex[:8]}"

    return make
