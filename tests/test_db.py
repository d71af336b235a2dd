"""Engine configuration, the UTC timestamp type and the migrations, on real databases."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

import app.models  # noqa: F401  (every model, for the schema comparison)
from app.db import (
    DEFERRED_BEGIN,
    Base,
    Installation,
    UTCDateTime,
    backend_name,
    create_engine,
    session_factory,
)
from app.schema import current_revision, downgrade, head_revision, upgrade


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///var/stepwise.db", "sqlite"),
        ("sqlite+aiosqlite://", "sqlite"),
        ("postgresql+asyncpg://postgres@127.0.0.1:5432/stepwise", "postgresql"),
    ],
)
def test_backend_name(url: str, expected: str) -> None:
    assert backend_name(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@localhost/stepwise",
        "sqlite:///var/stepwise.db",  # synchronous driver: not usable by the async engine
        "postgresql+psycopg2://postgres@localhost/stepwise",
        "not a url",
    ],
)
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite\\+aiosqlite"):
        backend_name(url)
    with pytest.raises(ValueError):
        create_engine(url)


# --- SQLite engine settings ------------------------------------------------------------------


async def test_sqlite_pragmas_are_in_effect(tmp_path: Path) -> None:
    engine = create_engine(_sqlite_url(tmp_path / "pragmas.db"))
    try:
        async with engine.connect() as conn:
            values = {
                pragma: (await conn.exec_driver_sql(f"PRAGMA {pragma}")).scalar_one()
                for pragma in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()

    assert values == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": 5000,
    }


async def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    engine = create_engine(_sqlite_url(path))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()

    assert path.is_file()


def _other_writer_can_begin(path: Path) -> bool:
    # timeout=0: report a held write lock at once instead of waiting for it.
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    else:
        other.execute("ROLLBACK")
        return True
    finally:
        other.close()


async def test_sqlite_transactions_begin_immediate(tmp_path: Path) -> None:
    path = tmp_path / "locks.db"
    engine = create_engine(_sqlite_url(path))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # a read, yet the write lock is taken
            assert not _other_writer_can_begin(path)
            await conn.rollback()
            assert _other_writer_can_begin(path)

        async with engine.connect() as conn:
            await conn.execution_options(**DEFERRED_BEGIN)
            await conn.execute(text("SELECT 1"))
            assert _other_writer_can_begin(path)
    finally:
        await engine.dispose()


async def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    engine = create_engine(_sqlite_url(tmp_path / "ddl.db"))
    try:
        async with engine.connect() as conn:
            await conn.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY)"))
            await conn.rollback()
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()

    assert "scratch" not in tables


# --- UTCDateTime -----------------------------------------------------------------------------


async def test_utc_datetime_round_trip(engine: AsyncEngine) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    written = datetime(2024, 3, 1, 10, 0, 0, 123456, tzinfo=kolkata)

    async with engine.connect() as conn:
        row_id = (
            await conn.execute(
                Installation.__table__.insert()
                .values(installation_id="round-trip", created_at=written)
                .returning(Installation.__table__.c.id)
            )
        ).scalar_one()
        read = (
            await conn.execute(
                select(Installation.__table__.c.created_at).where(
                    Installation.__table__.c.id == row_id
                )
            )
        ).scalar_one()
        if engine.dialect.name == "sqlite":
            raw = "SELECT created_at FROM installation WHERE id = :id"
        else:
            raw = (
                "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
                "FROM installation WHERE id = :id"
            )
        stored = (await conn.execute(text(raw), {"id": row_id})).scalar_one()
        await conn.rollback()

    assert read == written
    assert read.tzinfo is UTC
    assert read.hour == 4 and read.minute == 30
    assert stored == "2024-03-01 04:30:00.123456"


async def test_utc_datetime_through_the_orm(engine: AsyncEngine) -> None:
    written = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with session_factory(engine)() as session:
        installation = Installation(installation_id="orm-round-trip", created_at=written)
        session.add(installation)
        await session.flush()
        session.expunge(installation)
        loaded = await session.get(Installation, installation.id)
        assert loaded is not None
        assert loaded is not installation
        read = loaded.created_at
        await session.rollback()

    assert read == written
    assert read.tzinfo is UTC


async def test_utc_datetime_refuses_naive(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(StatementError, match="timezone-aware"):
            await conn.execute(
                Installation.__table__.insert().values(
                    installation_id="naive", created_at=datetime(2024, 3, 1, 10, 0)
                )
            )
        await conn.rollback()


def test_utc_datetime_refuses_non_datetimes() -> None:
    column_type = UTCDateTime()
    dialect = create_engine("sqlite+aiosqlite://").dialect
    with pytest.raises(TypeError):
        column_type.process_bind_param("2024-03-01T10:00:00+00:00", dialect)  # type: ignore[arg-type]
    assert column_type.process_bind_param(None, dialect) is None


# --- migrations ------------------------------------------------------------------------------


async def _schema_state(url: str) -> tuple[set[str], str | None, int | None, list[object]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            revision = await conn.run_sync(current_revision)
            rows = None
            diff: list[object] = []
            if "installation" in tables:
                rows = (
                    await conn.execute(select(func.count()).select_from(Installation))
                ).scalar_one()
                diff = await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
                )
    finally:
        await engine.dispose()
    return tables, revision, rows, diff


async def test_migrations_up_down_up(empty_database_url: str) -> None:
    import asyncio

    url = empty_database_url
    head = head_revision()

    assert await asyncio.to_thread(upgrade, url) == head
    tables, revision, rows, diff = await _schema_state(url)
    assert {"installation", "alembic_version"} <= tables
    assert revision == head
    assert rows == 1
    assert diff == [], "the models and the migrations disagree"

    assert await asyncio.to_thread(downgrade, url, "base") is None
    tables, revision, rows, _ = await _schema_state(url)
    assert "installation" not in tables
    assert revision is None

    assert await asyncio.to_thread(upgrade, url) == head
    tables, revision, rows, _ = await _schema_state(url)
    assert revision == head
    assert rows == 1


async def test_installation_row_of_the_session_database(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        installations = (await session.scalars(select(Installation))).all()

    assert len(installations) == 1
    (installation,) = installations
    assert len(installation.installation_id) == 36
    assert installation.created_at.tzinfo is UTC
    assert installation.created_at <= datetime.now(UTC)
