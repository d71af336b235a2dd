"""Keeping every process on the database's clock (PostgreSQL, several processes).

Each process measures how far its own time line (app.clock.SteadyClock: the monotonic clock
counted from the wall time at start) is from the database server's clock, the way NTP does
over one round trip: the database's reading is taken to be from the middle of the round trip,
and of several samples the one with the shortest round trip is kept (its error is at most half
of it). The first measurement is taken before the process serves anything (until one
succeeds it is not ready and fires no timer); later ones, every minute and a few seconds
after one failed (the database restarting), are slewed towards, never stepped to. A step of
the machine's clock moves nothing.

SQLite needs none of this: it is one process, and the database's clock is that process's own
(its steady clock slews towards the machine's wall clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.clock import SteadyClock, require_aware

logger = logging.getLogger(__name__)

SAMPLES = 5
ALIGN_EVERY_SECONDS = 60.0
RETRY_SECONDS = 5.0
# An offset this large means a machine's clock is badly set; say so in the log.
WARN_OFFSET = timedelta(seconds=1)


@dataclass(frozen=True)
class Measurement:
    offset: timedelta  # database time minus local time
    round_trip: timedelta  # the error of the offset is at most half of this


async def measure(engine: AsyncEngine, wall: SteadyClock, samples: int = SAMPLES) -> Measurement:
    best: Measurement | None = None
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # connect first, outside the timed samples
        for _ in range(samples):
            sent = wall.local()
            answer: datetime = await conn.scalar(text("SELECT clock_timestamp()"))
            received = wall.local()
            trip = received - sent
            sample = Measurement(require_aware(answer, "database time") - (sent + trip / 2), trip)
            if best is None or sample.round_trip < best.round_trip:
                best = sample
    assert best is not None
    return best


async def align(engine: AsyncEngine, wall: SteadyClock) -> Measurement:
    """Measure and hand in the offset; log it when the machine's clock is far off."""
    measured = await measure(engine, wall)
    wall.align(measured.offset)
    level = logging.WARNING if abs(measured.offset) > WARN_OFFSET else logging.DEBUG
    logger.log(
        level,
        "clock aligned to the database: offset %.3f s (round trip %.1f ms)",
        measured.offset.total_seconds(),
        measured.round_trip.total_seconds() * 1000,
    )
    return measured


async def keep_aligned(
    engine: AsyncEngine,
    wall: SteadyClock,
    stop: asyncio.Event,
    every_seconds: float = ALIGN_EVERY_SECONDS,
) -> None:
    """Re-measure every ``every_seconds`` until ``stop`` is set, and RETRY_SECONDS after a
    failed measurement (which keeps the last offset: the database being away is the health
    check's business), so a reconnected database is measured again soon."""
    pause = every_seconds
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
        if stop.is_set():
            return
        try:
            await align(engine, wall)
            pause = every_seconds
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            logger.warning("clock not aligned this time: %s", type(error).__name__)
            pause = min(every_seconds, RETRY_SECONDS)
