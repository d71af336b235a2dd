from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.clock import ManualClock
from app.config import Settings
from app.db import session_factory


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as session:
        yield session


@pytest.fixture
def clock() -> ManualClock:
    # Far from the real date, so a test that slipped to the wall clock would show.
    return ManualClock(datetime(2031, 3, 4, 8, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, env="test")
