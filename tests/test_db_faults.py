"""Every way the database can fail a request is told apart and answered 503 with Retry-After
and a reason; anything else stays a 500. The classifier on the drivers' real exceptions, and
one real server whose database is out of reach, over HTTP."""

from __future__ import annotations

import socket
import sqlite3
import time

import asyncpg.exceptions as pg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app import db_faults
from app.config import Settings
from app.db import backend_name, request_engine
from app.main import create_app


def wrapped(error: BaseException) -> OperationalError:
    """As SQLAlchemy hands a driver's error to the application."""
    return OperationalError("SELECT 1", {}, error)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (wrapped(sqlite3.OperationalError("database or disk is full")), "storage_full"),
        (wrapped(sqlite3.OperationalError("attempt to write a readonly database")), "read_only"),
        (wrapped(sqlite3.OperationalError("database is locked")), "busy"),
        (wrapped(pg.DiskFullError("could not extend file")), "storage_full"),
        (wrapped(pg.ReadOnlySQLTransactionError("read-only transaction")), "read_only"),
        (wrapped(pg.CannotConnectNowError("the database system is starting up")), "restarting"),
        (wrapped(pg.AdminShutdownError("terminating connection")), "restarting"),
        (wrapped(pg.ConnectionDoesNotExistError("connection was closed")), "restarting"),
        (wrapped(pg.QueryCanceledError("canceling statement due to statement timeout")), "timeout"),
        (ConnectionRefusedError(111, "Connect call failed"), "unreachable"),
        (TimeoutError(), "timeout"),
        (PoolTimeout("QueuePool limit reached"), "timeout"),
    ],
)
def test_each_database_fault_is_named(error: BaseException, kind: str) -> None:
    fault = db_faults.fault_of(error)
    assert fault is not None and fault.kind == kind
    assert fault.detail.startswith(fault.reason) and "Idempotency-Key" in fault.detail


def test_a_fault_raised_while_handling_another_is_found_behind_it() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except ConnectionRefusedError as refused:
            raise RuntimeError("could not check the sign-in") from refused
    except RuntimeError as outer:
        fault = db_faults.fault_of(outer)
    assert fault is not None and fault.kind == "unreachable"


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
        ValueError("a bug"),
        KeyError("vitals"),
    ],
)
def test_what_is_not_a_database_fault_is_not_called_one(error: BaseException) -> None:
    assert db_faults.fault_of(error) is None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # free now, and nobody listens on it


async def test_a_server_whose_database_is_out_of_reach_answers_503_with_the_reason() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/stepwise"
    app = create_app(Settings(database_url=url, env="test"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    cookie = {"stepwise_session": "x" * 43}  # a sign-in to check: the database is needed
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test", cookies=cookie) as client,
    ):
        api = await client.get("/api/v1/sessions/1")
        page = await client.get("/sessions/1")
    assert api.status_code == 503, api.text
    assert api.headers["retry-after"] == "1"
    assert api.json()["fault"] == "unreachable"
    assert api.json()["detail"].startswith("the database is out of reach")
    assert page.status_code == 503 and "out of reach" in page.text
    assert "Traceback" not in page.text


async def test_no_statement_of_the_serving_engine_outlasts_its_bound(database_url: str) -> None:
    if backend_name(database_url) != "postgresql":
        pytest.skip("SQLite bounds its waits with the busy timeout")
    engine = request_engine(database_url, timeout_seconds=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(DBAPIError) as caught:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 3
    finally:
        await engine.dispose()
    fault = db_faults.fault_of(caught.value)
    assert fault is not None and fault.kind == "timeout"
