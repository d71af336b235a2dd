"""Fixtures of the audit tests: fresh migrated databases for tests that commit or tamper."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.schema import upgrade


@pytest.fixture
async def fresh_url(empty_database_url: str) -> str:
    """A new database on the backend under test, migrated to head, with an empty audit log."""
    await asyncio.to_thread(upgrade, empty_database_url)
    return empty_database_url


@pytest.fixture
async def fresh_engine(fresh_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(fresh_url)
    try:
        yield engine
    finally:
        await engine.dispose()
