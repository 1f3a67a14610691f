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
    if isinstance(exc, ch.DatabaseError) and not isinstance(
        exc, ch.ProgrammingError | ch.DataError
    ):
        code = getattr(exc, "code", None)
        retriable = code is None or code in _RETRIABLE_CODES
        return SinkError(f"ClickHouse error {code}: {exc}", retriable=retriable)
    return SinkError(f"ClickHouse rejected the request: {exc}", retriable=False)
