"""What went wrong with the database, in words a nurse can act on (pure: it only looks at the
exception). Every way the database can fail a request (out of reach, restarting, too slow,
storage full, read-only, busy) is answered 503 with Retry-After and one of these reasons;
anything else (a bug, a broken constraint) is not a fault of the database and stays a 500.
StorageFaults remembers the last write that storage refused, for readiness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# A commit cut off by a restart may have landed: the answer cannot say "nothing was saved".
RESEND = (
    "what you sent may not have been saved; try again in a moment (resending with the same "
    "Idempotency-Key is safe: it is saved once)"
)


@dataclass(frozen=True)
class DatabaseFault:
    kind: str  # storage_full, read_only, restarting, unreachable, timeout, busy
    reason: str  # what happened, first words of the answer

    @property
    def detail(self) -> str:
        return f"{self.reason}: {RESEND}."


STORAGE_FULL = DatabaseFault("storage_full", "the server cannot save right now — storage full")
READ_ONLY = DatabaseFault("read_only", "the server cannot save right now — storage is read-only")
RESTARTING = DatabaseFault("restarting", "the database is restarting")
UNREACHABLE = DatabaseFault("unreachable", "the database is out of reach")
TIMEOUT = DatabaseFault("timeout", "the database did not answer in time")
BUSY = DatabaseFault("busy", "the database is busy with other saves")
FAULTS = (STORAGE_FULL, READ_ONLY, RESTARTING, UNREACHABLE, TIMEOUT, BUSY)

# PostgreSQL error classes (SQLSTATE), as asyncpg reports them.
_SQLSTATES = {
    "53100": STORAGE_FULL,  # disk_full
    "25006": READ_ONLY,  # read_only_sql_transaction
    "57P01": RESTARTING,  # admin_shutdown
    "57P02": RESTARTING,  # crash_shutdown
    "57P03": RESTARTING,  # cannot_connect_now
    "57014": TIMEOUT,  # query_canceled (statement timeout)
    "08000": UNREACHABLE,  # connection_exception and its kind
    "08003": UNREACHABLE,
    "08006": UNREACHABLE,
}
# Words of SQLite's (and the system's) messages.
_MESSAGES = (
    ("database or disk is full", STORAGE_FULL),
    ("no space left on device", STORAGE_FULL),
    ("readonly database", READ_ONLY),
    ("read-only file system", READ_ONLY),
    ("database is locked", BUSY),
    ("unable to open database", UNREACHABLE),
    ("connection was closed", RESTARTING),
    ("connection is closed", RESTARTING),
    ("the database system is shutting down", RESTARTING),
    ("the database system is starting up", RESTARTING),
)


def fault_of(error: BaseException) -> DatabaseFault | None:
    """The database fault behind `error`, or None when it is not one."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # the error and what it wraps
        seen.add(id(current))
        fault = _fault_itself(current)
        if fault is not None:
            return fault
        wrapped = current.orig if isinstance(current, DBAPIError) else None
        current = wrapped or current.__cause__ or current.__context__
    return None


def _fault_itself(error: BaseException) -> DatabaseFault | None:
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _SQLSTATES:
        return _SQLSTATES[sqlstate]
    if type(error).__name__ == "ConnectionDoesNotExistError":  # asyncpg: the server went away
        return RESTARTING
    if isinstance(error, PoolTimeout | TimeoutError):
        return TIMEOUT
    if isinstance(error, ConnectionRefusedError):
        return UNREACHABLE
    if isinstance(error, ConnectionError):
        return RESTARTING
    text = str(error).lower()
    for words, fault in _MESSAGES:
        if words in text:
            return fault
    return None


class StorageFaults:
    """The last time a write failed because storage was full or read-only, so readiness does
    not take a probe's one-page write for proof that storage takes writes: a full disk still
    has room for that in SQLite's write-ahead log while every real command fails. Forgotten
    after `remember_seconds` without another such failure (a small commit proves nothing)."""

    def __init__(self, clock: Callable[[], float], remember_seconds: float) -> None:
        self._clock = clock
        self._remember_seconds = remember_seconds
        self._last: tuple[float, DatabaseFault] | None = None

    def failed(self, fault: DatabaseFault) -> None:
        if fault.kind in (STORAGE_FULL.kind, READ_ONLY.kind):
            self._last = (self._clock(), fault)

    def recent(self) -> DatabaseFault | None:
        if self._last is None or self._clock() - self._last[0] > self._remember_seconds:
            return None
        return self._last[1]
