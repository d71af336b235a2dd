"""The doorbell: a service announces a change inside its transaction and rings after the
commit, with (session id, event seq); whoever renders screens listens.

- `Doorbell` (SQLite, one process): announcing does nothing; ringing tells this process's
  listeners.
- `PgDoorbell` (PostgreSQL, several processes): announcing sends `pg_notify` inside the
  committing transaction — PostgreSQL delivers it only if, and when, that transaction commits,
  in commit order, to every process's LISTEN connection (app.live.pg_listener), which rings
  there. Ringing after the commit still tells this process at once; the hub ignores a seq it
  has already shown.

The payload is "session_id:seq", never HTML: each process renders its own screens.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "stepwise_events"


@dataclass(frozen=True)
class Ring:
    session_id: int
    seq: int
    # What the committing command already built of the change (app.session.committed), when
    # it was committed in this process: its screens are rendered from it, not read again.
    known: Any = field(default=None, compare=False, repr=False)


def payload_of(session_id: int, seq: int) -> str:
    return f"{session_id}:{seq}"


def parse_payload(payload: str) -> Ring | None:
    """A ring from a notification's payload, or None for anything malformed."""
    sid, sep, seq = payload.partition(":")
    if not sep or not sid.isdigit() or not seq.isdigit():
        return None
    return Ring(int(sid), int(seq))


@dataclass
class Doorbell:
    queue_size: int = 1000
    _listeners: set[asyncio.Queue[Ring]] = field(default_factory=set)

    async def announce(self, db: AsyncSession, session_id: int, seq: int) -> None:
        """Inside the committing transaction: nothing to do within one process."""

    def ring(self, session_id: int, seq: int, known: Any = None) -> None:
        for listener in list(self._listeners):
            try:
                listener.put_nowait(Ring(session_id, seq, known))
            except asyncio.QueueFull:
                # A listener that cannot keep up catches up from the event table instead.
                continue

    def listen(self) -> asyncio.Queue[Ring]:
        queue: asyncio.Queue[Ring] = asyncio.Queue(self.queue_size)
        self._listeners.add(queue)
        return queue

    def stop_listening(self, queue: asyncio.Queue[Ring]) -> None:
        self._listeners.discard(queue)


@dataclass
class PgDoorbell(Doorbell):
    async def announce(self, db: AsyncSession, session_id: int, seq: int) -> None:
        await db.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": payload_of(session_id, seq)},
        )


def doorbell_for(backend: str) -> Doorbell:
    return PgDoorbell() if backend == "postgresql" else Doorbell()
