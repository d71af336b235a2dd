"""Keeping every process on the database's clock (PostgreSQL, several processes).

Each process measures how far its own clock is from the database server's, the way NTP does
over one round trip: the database's reading is taken to be from the middle of the round trip,
and of several samples the one with the shortest round trip is kept (its error is at most half
of it). The offset is measured before the process serves anything and again every minute, so
a machine whose clock drifts or is stepped does not fire timers early or late.

SQLite needs none of this: it is one process, and the database's clock is that process's own.
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

from app.clock import AlignedClock, require_aware

logger = logging.getLogger(__name__)

SAMPLES = 5
ALIGN_EVERY_SECONDS = 60.0
# An offset this large means a machine's clock is badly set; say so in the log.
WARN_OFFSET = timedelta(seconds=1)


@dataclass(frozen=True)
class Measurement:
    offset: timedelta  # database time minus local time
    round_trip: timedelta  # the error of the offset is at most half of this


async def measure(engine: AsyncEngine, wall: AlignedClock, samples: int = SAMPLES) -> Measurement:
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


async def align(engine: AsyncEngine, wall: AlignedClock) -> Measurement:
    """Measure and apply the offset; log it when the machine's clock is far off."""
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
    wall: AlignedClock,
    stop: asyncio.Event,
    every_seconds: float = ALIGN_EVERY_SECONDS,
) -> None:
    """Re-measure every ``every_seconds`` until ``stop`` is set; a failed measurement keeps
    the last offset (the database being away is the health check's business)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_seconds)
        if stop.is_set():
            return
        try:
            await align(engine, wall)
        except (SQLAlchemyError, OSError) as error:
            logger.warning("clock not aligned this time: %s", type(error).__name__)
