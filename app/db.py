"""Database plumbing shared by every domain: declarative base, UTC type, engine factory.

Two backends are supported through one async code path: SQLite via aiosqlite (the embedded
default) and PostgreSQL via asyncpg (scale-out).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import DateTime, Integer, MetaData, String, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from app.clock import require_aware

Backend = Literal["sqlite", "postgresql"]

_DRIVERS: dict[str, Backend] = {
    "sqlite+aiosqlite": "sqlite",
    "postgresql+asyncpg": "postgresql",
}

# Execution option read by the SQLite "begin" listener. Transactions start with
# BEGIN IMMEDIATE by default, taking the write lock up front so that two writers never
# deadlock on a lock upgrade; a read-only unit of work may ask for a deferred BEGIN instead.
SQLITE_BEGIN_OPTION = "stepwise_sqlite_begin"
DEFERRED_BEGIN = {SQLITE_BEGIN_OPTION: "DEFERRED"}
# No BEGIN at all: for a unit that is one single read (SQLite runs a lone statement in its own
# implicit read transaction). It must not write: a write would commit on its own.
LONE_READ = {SQLITE_BEGIN_OPTION: "NONE"}
_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE", "NONE"})

SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_CONNECT_TIMEOUT_S = 10

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every ORM model; constraint names are deterministic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    Naive datetimes are refused on the way in. PostgreSQL stores ``timestamptz``; SQLite has
    no time-zone type, so the UTC wall time is stored and UTC is re-attached on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime expects a datetime, got {type(value).__name__}")
        utc = require_aware(value, "UTCDateTime value")
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Installation(Base):
    """One row identifying this installation; created by the first migration."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[str] = mapped_column(
        String(36), unique=True, nullable=False, default=lambda: str(uuid.uuid4())
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


def backend_name(url: str) -> Backend:
    """``"sqlite"`` or ``"postgresql"`` for a supported URL; ``ValueError`` otherwise."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            "invalid database URL; expected sqlite+aiosqlite:///PATH or "
            "postgresql+asyncpg://USER@HOST:PORT/DBNAME"
        ) from None
    backend = _DRIVERS.get(parsed.drivername)
    if backend is None:
        supported = ", ".join(f"{name}://" for name in _DRIVERS)
        raise ValueError(
            f"unsupported database URL scheme {parsed.drivername}://; use one of: {supported}"
        )
    return backend


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _on_sqlite_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # The driver's own transaction handling issues BEGIN lazily (only before DML) and commits
    # before DDL; switch it off so that SQLAlchemy's "begin" event below is the only place a
    # transaction starts. This also lets the PRAGMAs below run outside any transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transaction survives a power cut, not only an application crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
    if mode not in _BEGIN_MODES:
        raise ValueError(f"{SQLITE_BEGIN_OPTION} must be one of {sorted(_BEGIN_MODES)}")
    if mode != "NONE":
        conn.exec_driver_sql(f"BEGIN {mode}")


def request_engine(url: str, timeout_seconds: float) -> AsyncEngine:
    """The serving process's engine: on PostgreSQL no request waits for the database longer
    than `timeout_seconds` in all, so none hangs on a database that has paused or restarts.
    Checking out a pooled connection can take a ping and a reconnect, so each wait gets half:
    the wait for a pooled connection, a connect, and every statement (a lock wait included;
    the server's statement_timeout, and the client's own for a server that has stopped
    answering). The command-line tools and migrations use `create_engine`, without the bound."""
    if backend_name(url) != "postgresql":
        return create_engine(url)
    half = timeout_seconds / 2
    return create_engine(
        url,
        pool_timeout=half,
        connect_args={
            "server_settings": {"statement_timeout": str(int(half * 1000))},
            "command_timeout": half,
            "timeout": half,
        },
    )


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine configured for the backend named by ``url``.

    SQLite: WAL, ``synchronous=FULL``, foreign keys, a busy timeout, and ``BEGIN IMMEDIATE``
    for every transaction unless :data:`DEFERRED_BEGIN` is given as execution options.
    PostgreSQL: pre-ping pooled connections so a restarted server is noticed, not fatal.
    """
    backend = backend_name(url)
    if backend == "sqlite":
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = _create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = {"timeout": POSTGRES_CONNECT_TIMEOUT_S, **kwargs.pop("connect_args", {})}
    return _create_async_engine(url, connect_args=connect_args, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay usable after commit (no implicit refresh I/O)."""
    return async_sessionmaker(engine, expire_on_commit=False)
