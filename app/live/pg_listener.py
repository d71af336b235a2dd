"""One LISTEN connection per process on PostgreSQL: every process hears every commit.

It turns each notification (app.doorbell.PgDoorbell) into a ring of this process's
doorbell. It checks its connection every few seconds; when the connection is lost (network,
restart, pg_terminate_backend) it reconnects with backoff, listens again, and catches up from
the event table for every session this process has screens for — notifications sent while it
was away are gone, the event table is not. A periodic catch-up covers anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import DEFERRED_BEGIN
from app.doorbell import CHANNEL, Doorbell, parse_payload
from app.session.models import SessionEvent

logger = logging.getLogger(__name__)

APPLICATION_NAME = "stepwise-listen"  # with the process id: "stepwise-listen 4242"


def asyncpg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgListener:
    def __init__(
        self,
        database_url: str,
        doorbell: Doorbell,
        sessionmaker: async_sessionmaker[AsyncSession],
        watched: Callable[[], list[int]],
        *,
        health_seconds: float = 5.0,
        catch_up_seconds: float = 30.0,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.doorbell = doorbell
        self.sessionmaker = sessionmaker
        self.watched = watched  # the sessions this process has screens for
        self.health_seconds = health_seconds
        self.catch_up_seconds = catch_up_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.connections = 0  # how many times it has (re)connected
        self.listening = asyncio.Event()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        ring = parse_payload(payload)
        if ring is not None:
            self.doorbell.ring(ring.session_id, ring.seq)

    async def catch_up(self) -> int:
        """Ring the newest seq of every watched session; the hub shows only what is new."""
        ids = self.watched()
        if not ids:
            return 0
        async with self.sessionmaker() as db:
            await db.connection(execution_options=DEFERRED_BEGIN)
            rows = list(
                await db.execute(
                    select(SessionEvent.session_id, func.max(SessionEvent.seq))
                    .where(SessionEvent.session_id.in_(ids))
                    .group_by(SessionEvent.session_id)
                )
            )
            await db.rollback()
        for session_id, seq in rows:
            self.doorbell.ring(session_id, seq)
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.25
        while not stop.is_set():
            connection = None
            try:
                connection = await asyncpg.connect(
                    self.dsn,
                    server_settings={"application_name": f"{APPLICATION_NAME} {os.getpid()}"},
                )
                await connection.add_listener(CHANNEL, self._on_notify)
                self.connections += 1
                self.listening.set()
                backoff = 0.25
                await self.catch_up()  # what was committed while nobody here listened
                since_catch_up = 0.0
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.health_seconds)
                    if stop.is_set():
                        break
                    await asyncio.wait_for(connection.fetchval("SELECT 1"), self.health_seconds)
                    since_catch_up += self.health_seconds
                    if since_catch_up >= self.catch_up_seconds:
                        since_catch_up = 0.0
                        await self.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the connection is gone: listen again
                logger.warning("LISTEN connection lost (%s); reconnecting", error)
            finally:
                self.listening.clear()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
