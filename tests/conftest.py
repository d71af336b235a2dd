"""Shared fixtures: real databases built by the migrations, and real HTTP servers.

Every database-backed test runs on SQLite, and also on PostgreSQL when
``STEPWISE_TEST_DATABASE_URL`` names a server (CI sets it). Each test session gets its own
databases, dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db import create_engine
from app.main import create_app
from app.permissions import ROLES
from app.schema import upgrade
from tests.support import Account, SignedInClient, create_account

TEST_DATABASE_ENV = "STEPWISE_TEST_DATABASE_URL"
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 15.0

# The suite tests everything else without the bedside scans and the high-alert double check
# (a server of its own, or a test that names them, turns them on: tests/labels). A server the
# tests start as a newcomer would (`make run`) clears these and has them on.
os.environ.setdefault("STEPWISE_SCAN_TO_VERIFY", "false")
os.environ.setdefault("STEPWISE_HIGH_ALERT_DRUGS", "")

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(TEST_DATABASE_ENV) else [])


def pytest_report_header() -> str:
    # Say up front which databases this run covers, so a log shows it without -v.
    return f"stepwise databases under test: {', '.join(BACKENDS)}"


# --- databases -------------------------------------------------------------------------------


def _pg_admin_kwargs(url: str) -> dict[str, object]:
    parsed = make_url(url)
    return {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password,
        "database": "postgres",  # the maintenance database: CREATE/DROP DATABASE run there
    }


async def _pg_execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(**_pg_admin_kwargs(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def _postgres_database() -> Iterator[str]:
    base = make_url(os.environ[TEST_DATABASE_ENV])
    name = f"{base.database or 'stepwise_test'}_{os.getpid()}_{secrets.token_hex(4)}"
    url = base.set(database=name).render_as_string(hide_password=False)
    asyncio.run(_pg_execute(url, f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        asyncio.run(_pg_execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a database of this test session, migrated to head."""
    if request.param == "sqlite":
        url = _sqlite_url(tmp_path_factory.mktemp("db") / "stepwise.db")
        upgrade(url)
        yield url
        return
    with _postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
def empty_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new, un-migrated database on the same backend as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield _sqlite_url(tmp_path / "empty.db")
        return
    with _postgres_database() as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


# --- live HTTP servers -----------------------------------------------------------------------


class _ThreadedServer(uvicorn.Server):
    """A uvicorn server that reports when its startup (lifespan included) has finished."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.startup_done.set()


@contextmanager
def run_server(target: Settings | FastAPI, port: int = 0) -> Iterator[str]:
    """Serve ``create_app(settings)`` (or a ready app) over real HTTP on a free port (or on
    `port`, to restart a server where its screens expect it); yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    host, port = sock.getsockname()
    app = target if isinstance(target, FastAPI) else create_app(target)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = _ThreadedServer(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    try:
        if not server.startup_done.wait(SERVER_START_TIMEOUT_S):
            raise RuntimeError(f"test server did not start within {SERVER_START_TIMEOUT_S} s")
        if not server.started:
            raise RuntimeError("test server failed to start (see the log above)")
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(SERVER_STOP_TIMEOUT_S)
        sock.close()
        if thread.is_alive():
            raise RuntimeError(f"test server did not stop within {SERVER_STOP_TIMEOUT_S} s")


def settings_for(database_url: str) -> Settings:
    return Settings(database_url=database_url, env="test")


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[str]:
    """Base URL of a real server on the session database."""
    with run_server(settings_for(database_url)) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def accounts(database_url: str) -> dict[str, Account]:
    """One account per role on the session database."""
    return {role: create_account(database_url, role) for role in ROLES}


@pytest.fixture
def signed_in(
    live_server: str, accounts: dict[str, Account]
) -> Iterator[Callable[[str], SignedInClient]]:
    """signed_in("nurse") -> a client signed in as that role on the live server."""
    clients: list[SignedInClient] = []

    def make(role: str) -> SignedInClient:
        client = SignedInClient(live_server, accounts[role])
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def start_server() -> Iterator[Callable[[Settings], str]]:
    """Start extra servers with custom settings; all are stopped after the test."""
    with ExitStack() as stack:
        yield lambda settings: stack.enter_context(run_server(settings))
