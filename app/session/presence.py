"""Which sessions have a bedside screen open, across processes: the facts behind "lost contact".

Each process counts its own open session screens (the hub tells it) and writes them to
``bedside_presence``, one row per (session, process): within a second of a screen opening or
closing, and every few seconds while any is open. Each row carries two times: ``seen_at`` on
the session clock (when a screen last showed the session: lost contact is measured from it, as
the protocol's times are) and ``refreshed_at`` on the wall clock (a row not refreshed for a few
periods belongs to a process that died, and claims no screen). Writes are batched: a reconnect
storm of hundreds of screens costs a handful of transactions, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.clock import Clock
from app.session.models import BedsidePresence

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
REFRESH_SECONDS = 5.0
# A row not refreshed for this many refresh periods belongs to a process that is gone.
STALE_PERIODS = 3


def process_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Seen:
    connected: bool  # a screen of some process shows the session now
    last_seen: datetime | None  # when a screen last showed it; None: never


def stale_after(refresh_seconds: float = REFRESH_SECONDS) -> timedelta:
    """How long (wall time) a row counts without being refreshed."""
    return timedelta(seconds=STALE_PERIODS * refresh_seconds)


def wall_now() -> datetime:
    return datetime.now(UTC)


async def seen(db: AsyncSession, session_id: int, allowance: timedelta) -> Seen:
    rows = list(
        await db.scalars(select(BedsidePresence).where(BedsidePresence.session_id == session_id))
    )
    fresh = wall_now() - allowance
    connected = any(r.screens > 0 and r.refreshed_at >= fresh for r in rows)
    return Seen(connected, max((r.seen_at for r in rows), default=None))


class Presence:
    """This process's open session screens, kept in the database."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        process: str | None = None,
        flush_seconds: float = FLUSH_SECONDS,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.process = process or process_name()
        self.flush_seconds = flush_seconds
        self.refresh_seconds = refresh_seconds
        self.counts: dict[int, int] = {}
        self.dirty: set[int] = set()

    def opened(self, session_id: int) -> None:
        self.counts[session_id] = self.counts.get(session_id, 0) + 1
        self.dirty.add(session_id)

    def closed(self, session_id: int) -> None:
        self.counts[session_id] = max(self.counts.get(session_id, 0) - 1, 0)
        self.dirty.add(session_id)

    async def run(self, stop: asyncio.Event) -> None:
        last_refresh = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                if loop.time() - last_refresh >= self.refresh_seconds:
                    self.dirty.update(s for s, n in self.counts.items() if n > 0)
                    last_refresh = loop.time()
                await self.flush()
            except Exception:  # the next pass retries; presence is advisory, never fatal
                logger.exception("bedside presence not written")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_seconds)
        with contextlib.suppress(Exception):
            await self.flush()  # screens closing at shutdown say so

    async def flush(self) -> None:
        if not self.dirty:
            return
        batch, self.dirty = self.dirty, set()
        now, wall = self.clock.now(), wall_now()
        rows = [
            {
                "session_id": s,
                "process": self.process,
                "screens": self.counts.get(s, 0),
                "seen_at": now,
                "refreshed_at": wall,
            }
            for s in sorted(batch)
        ]
        try:
            async with self.sessionmaker() as db:
                dialect = db.get_bind().dialect.name
                insert = pg_insert if dialect == "postgresql" else sqlite_insert
                statement = insert(BedsidePresence).values(rows)
                statement = statement.on_conflict_do_update(
                    index_elements=["session_id", "process"],
                    set_={
                        "screens": statement.excluded.screens,
                        "seen_at": statement.excluded.seen_at,
                        "refreshed_at": statement.excluded.refreshed_at,
                    },
                )
                await db.execute(statement)
                await db.commit()
        except Exception:
            self.dirty |= batch  # written next time
            raise
        for session_id in batch:
            if self.counts.get(session_id) == 0:
                del self.counts[session_id]
