"""Loopback ports and `funnel worker` children for local, single-machine runs."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A loopback port free right now (for local, single-machine runs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def loopback_port(preferred: int) -> int:
    """`preferred` if it is free on loopback now (a stable URL to remember), else any free one."""
    if preferred:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", preferred))
            except OSError:
                pass
            else:
                return preferred
    return free_port()


def local_worker_env(
    *, bootstrap: str, data_dir: Path, partitions: int, metrics_port: int
) -> dict[str, str]:
    """FUNNEL_* variables of a `funnel worker` child on this machine's embedded broker.

    Shared by the demo, the benchmark and the tests; callers add what differs (topics, rules).
    """
    return {
        "FUNNEL_KAFKA_BOOTSTRAP": bootstrap,
        "FUNNEL_KAFKA_FLAVOR": "tansu",
        "FUNNEL_TOPIC_PARTITIONS": str(partitions),
        "FUNNEL_DATA_DIR": str(data_dir),
        "FUNNEL_METRICS_PORT": str(metrics_port),
        "FUNNEL_METRICS_HOST": "127.0.0.1",
        # Several local workers must not fight over the default report port.
        "FUNNEL_QUERY_PORT": str(free_port()),
        "FUNNEL_LOG_LEVEL": "WARNING",
        # Local traffic is our own simulator's: every site is labelled from its first session.
        "FUNNEL_SITE_LABEL_MIN_SESSIONS": "1",
    }
