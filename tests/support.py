"""Test helpers shared across packages: accounts per role, and signed-in HTTP clients."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from app.audit import Actor
from app.auth import service
from app.clock import RealClock
from app.db import create_engine, session_factory

T = TypeVar("T")
TEST_ACTOR = Actor(user_id=None, username="test-setup", role="system")
_CSRF = re.compile(r"""hx-headers='([^']*)'""")


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in another thread: safe from sync tests,
    from fixtures, and while Playwright's own loop runs on this thread."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(make())
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def run_sync_sql(database_url: str, statement: str, params: dict | None = None) -> list[tuple]:
    """One SQL statement on the test database, from sync code; rows for a SELECT."""
    from sqlalchemy import text

    from app.db import create_engine

    async def run() -> list[tuple]:
        engine = create_engine(database_url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), params or {})
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return run_async(run)


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    role: str


def create_account(database_url: str, role: str, prefix: str | None = None) -> Account:
    username = f"{prefix or role}-{secrets.token_hex(3)}"
    password = f"pw-{secrets.token_urlsafe(12)}"

    async def create() -> None:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                await service.create_user(
                    db,
                    RealClock(),
                    actor=TEST_ACTOR,
                    username=username,
                    role=role,
                    password=password,
                )
        finally:
            await engine.dispose()

    run_async(create)
    return Account(username, password, role)


def login_form_token(client: httpx.Client, next_path: str = "/") -> str:
    page = client.get("/login", params={"next": next_path})
    match = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


class SignedInClient(httpx.Client):
    """A browser-like client: signs in through the login form, then sends its Origin and the
    session's CSRF token with every request."""

    csrf_token: str

    def __init__(self, base_url: str, account: Account) -> None:
        super().__init__(base_url=base_url, timeout=15, headers={"origin": base_url})
        self.account = account
        token = login_form_token(self)
        response = self.post(
            "/login",
            data={
                "username": account.username,
                "password": account.password,
                "login_token": token,
                "next": "/",
            },
        )
        assert response.status_code == 303, response.text
        home = self.get("/")
        match = _CSRF.search(home.text)
        assert match, "no CSRF token on the home page"
        self.csrf_token = json.loads(match.group(1))["X-CSRF-Token"]
        self.headers["x-csrf-token"] = self.csrf_token
