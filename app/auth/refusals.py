"""Throttled sign-in attempts counted in this process between writes.

A flood of refused attempts (tens a second) must not queue on the database's write lock, which
a nurse's next entry needs. Once a throttle's row exists, its refusals are counted here and
added to the row at most once per `FLUSH_INTERVAL` per throttle, and when the throttle ends in
this process. Nothing here does I/O; app.auth.service does the writing.

What this costs: another process reporting the end of a throttle misses the refusals this
process counted in the last interval, and a process that stops loses as much. The audit
entry of the first refusal is never deferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

FLUSH_INTERVAL = timedelta(seconds=1)

# (database, user name key or "*", client address)
Where = tuple[str, str, str]


@dataclass
class _Pending:
    count: int
    written_at: datetime  # when this process last added its count to the row


class RefusalBuffer:
    def __init__(self, interval: timedelta = FLUSH_INTERVAL) -> None:
        self.interval = interval
        self._pending: dict[Where, _Pending] = {}

    def hold(self, where: Where, now: datetime) -> bool:
        """Count one refusal here, if this process wrote the row less than an interval ago.
        False: the caller writes now, with `take(where) + 1`, then calls `written`."""
        entry = self._pending.get(where)
        if entry is None or not timedelta(0) <= now - entry.written_at < self.interval:
            return False
        entry.count += 1
        return True

    def take(self, where: Where) -> int:
        """The refusals held for `where`, forgotten here: the caller adds them to the row."""
        entry = self._pending.pop(where, None)
        return entry.count if entry else 0

    def written(self, where: Where, now: datetime, forget_before: datetime) -> None:
        self._pending[where] = _Pending(0, now)
        # Throttles that ended elsewhere leave entries behind; keep the dictionary small.
        for old in [w for w, e in self._pending.items() if e.written_at < forget_before]:
            del self._pending[old]

    def __len__(self) -> int:
        return len(self._pending)


BUFFER = RefusalBuffer()
