"""Sink failures, typed at the boundary so callers decide on `retriable`, never on library types."""

from __future__ import annotations

from clickhouse_connect.driver import exceptions as ch

# ClickHouse server error codes that clear up by themselves (load, merges, replicas, network).
_RETRIABLE_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        319,  # UNKNOWN_STATUS_OF_INSERT
        425,  # SYSTEM_ERROR
        999,  # KEEPER_EXCEPTION
    }
)


# Out of disk on the ClickHouse side: NOT_ENOUGH_SPACE, or the OS's ENOSPC in a write error.
# Not retriable: it does not clear up by itself, and a worker retrying it forever looks alive
# while it consumes nothing. The worker exits instead (see streams/worker/fatal.py).
_DISK_FULL_CODES = frozenset({243})
_ENOSPC = "No space left on device"


class SinkError(Exception):
    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


def translate(exc: Exception) -> SinkError:
    """Map a clickhouse-connect error to a SinkError with the retry decision made once, here."""
    if isinstance(exc, SinkError):
        return exc
    if isinstance(exc, ch.OperationalError):
        # Refused or dropped connections, timeouts: the server may come back.
        return SinkError(f"ClickHouse unreachable: {exc}", retriable=True)
    code = getattr(exc, "code", None)
    if code in _DISK_FULL_CODES or _ENOSPC in str(exc):
        return SinkError(f"ClickHouse disk full (code {code}): {exc}", retriable=False)
    if isinstance(exc, ch.DatabaseError) and not isinstance(
        exc, ch.ProgrammingError | ch.DataError
    ):
        retriable = code is None or code in _RETRIABLE_CODES
        return SinkError(f"ClickHouse error {code}: {exc}", retriable=retriable)
    return SinkError(f"ClickHouse rejected the request: {exc}", retriable=False)
