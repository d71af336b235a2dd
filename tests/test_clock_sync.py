"""Aligning a process's clock to the database's, on a real PostgreSQL server, with a wall
clock set wrong on purpose."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app import clock_sync
from app.clock import SteadyClock


@pytest.fixture
def postgres_engine(engine: AsyncEngine, database_url: str) -> AsyncEngine:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's clock is the one process's own: nothing to align")
    return engine


class SkewedWall:
    def __init__(self, skew: timedelta) -> None:
        self.skew = skew

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.skew


async def database_now(engine: AsyncEngine) -> datetime:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT clock_timestamp()"))


async def test_a_clock_seven_minutes_ahead_is_brought_to_the_database_time(
    postgres_engine: AsyncEngine,
) -> None:
    wall = SkewedWall(timedelta(minutes=7))
    clock = SteadyClock(wall, aligned=True)
    assert abs(clock.now() - await database_now(postgres_engine)) > timedelta(minutes=6)

    measured = await clock_sync.align(postgres_engine, clock)

    assert abs(measured.offset + timedelta(minutes=7)) < timedelta(milliseconds=50)
    assert measured.round_trip < timedelta(milliseconds=50)
    # The clock holds still rather than run back 7 minutes; after those minutes it follows
    # the database. Seen from a fresh clock aligned the same way, it agrees at once:
    fresh = SteadyClock(wall, aligned=True)
    fresh.align(measured.offset)
    assert abs(fresh.now() - await database_now(postgres_engine)) < timedelta(milliseconds=50)


async def test_a_step_of_the_machine_clock_moves_nothing_while_measurements_go_on(
    postgres_engine: AsyncEngine,
) -> None:
    wall = SkewedWall(timedelta(0))
    clock = SteadyClock(wall, aligned=True)
    await clock_sync.align(postgres_engine, clock)
    stop = asyncio.Event()
    keeper = asyncio.create_task(
        clock_sync.keep_aligned(postgres_engine, clock, stop, every_seconds=0.05)
    )
    try:
        wall.skew = timedelta(seconds=-40)  # the machine's clock is stepped back
        await asyncio.sleep(0.5)  # ten measurements
        assert abs(clock.offset) < timedelta(milliseconds=50)
        assert abs(clock.error) < timedelta(milliseconds=50)
        assert abs(clock.now() - await database_now(postgres_engine)) < timedelta(milliseconds=50)
    finally:
        stop.set()
        await keeper
