"""Sign-in throttling, unlock and odd user names through real HTTP, on a server whose person
clock is manual (the backoff is then exact, whatever the machine's speed).

Client addresses: the server believes X-Forwarded-For from 127.0.0.1 (uvicorn's default trust of
the local proxy, as in production behind Caddy); each test checks that the address it sent is the
one the audit log recorded, so the variety of addresses is real.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit import AuditEvent
from app.auth.models import LoginFailure
from app.clock import ManualClock
from app.config import Settings
from app.db import create_engine, session_factory
from app.main import create_app
from tests.conftest import run_server
from tests.support import Account, SignedInClient, create_account, login_form_token, run_async


@dataclass
class Server:
    base_url: str
    app: FastAPI

    @property
    def clock(self) -> ManualClock:
        clock = self.app.state.person_clock
        assert isinstance(clock, ManualClock)
        return clock


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[Server]:
    app = create_app(Settings(database_url=database_url, env="test", clock_mode="manual"))
    with run_server(app) as base_url:
        yield Server(base_url, app)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.base_url, timeout=15, headers={"origin": server.base_url}
    ) as c:
        yield c


def address() -> str:
    return f"172.{secrets.randbelow(16) + 16}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def form_login(client: httpx.Client, username: str, password: str, addr: str) -> httpx.Response:
    token = login_form_token(client)
    client.cookies.delete("stepwise_session")
    return client.post(
        "/login",
        data={"username": username, "password": password, "login_token": token, "next": "/"},
        headers={"x-forwarded-for": addr},
    )


def json_login(client: httpx.Client, username: str, password: str, addr: str) -> httpx.Response:
    client.cookies.delete("stepwise_session")
    return client.post(
        "/login",
        json={"username": username, "password": password},
        headers={"x-forwarded-for": addr},
    )


def audit_rows(database_url: str, *, after: int = 0, addr: str | None = None) -> list[dict]:
    async def read() -> list[dict]:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
                if addr is not None:
                    query = query.where(AuditEvent.client_addr == addr)
                return [
                    {
                        "seq": e.seq,
                        "action": e.action,
                        "actor": e.actor_username,
                        "client_addr": e.client_addr,
                        "entity_id": e.entity_id,
                        "reason": e.reason,
                        "after": json.loads(e.after_json) if e.after_json else None,
                    }
                    for e in await db.scalars(query)
                ]
        finally:
            await engine.dispose()

    return run_async(read)


def last_seq(database_url: str) -> int:
    async def read() -> int:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                return await db.scalar(select(func.max(AuditEvent.seq))) or 0
        finally:
            await engine.dispose()

    return run_async(read)


def failure_count(database_url: str) -> int:
    async def read() -> int:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                return await db.scalar(select(func.count()).select_from(LoginFailure)) or 0
        finally:
            await engine.dispose()

    return run_async(read)


# --- M3 -------------------------------------------------------------------------------------------


def test_five_addresses_cannot_lock_the_physician_out(
    server: Server, client: httpx.Client, database_url: str
) -> None:
    """The report: five wrong passwords for "physician" from five addresses, without an
    account, made the real password answer 429 for fifteen minutes, again and again."""
    physician = create_account(database_url, "physician")
    attackers = [address() for _ in range(5)]
    before = last_seq(database_url)
    for _round in range(2):
        for addr in attackers:
            refused = form_login(client, physician.username, "guess-123456", addr)
            assert refused.status_code == 401, refused.text
            assert "wrong user name or password" in refused.text
    failed = [r for r in audit_rows(database_url, after=before) if r["action"] != "auth.login"]
    assert {r["client_addr"] for r in failed} == set(attackers)  # the addresses were real
    assert {r["action"] for r in failed} == {"auth.login_failed"}

    signed_in = form_login(client, physician.username, physician.password, address())
    assert signed_in.status_code == 303, signed_in.text
    in_place = json_login(client, physician.username, physician.password, address())
    assert in_place.status_code == 200 and in_place.json()["username"] == physician.username


def test_one_address_guessing_waits_and_is_told_how_long(
    server: Server, client: httpx.Client, database_url: str
) -> None:
    nurse = create_account(database_url, "nurse")
    addr = address()
    for _ in range(5):
        assert json_login(client, nurse.username, "guess-123456", addr).status_code == 401
    page = form_login(client, nurse.username, nurse.password, addr)
    assert page.status_code == 429 and page.headers["retry-after"] == "1"
    assert "try again in 1 second" in page.text
    answer = json_login(client, nurse.username, nurse.password, addr)
    assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
    assert answer.json() == {
        "detail": "too many failed sign-ins; try again in 1 second or ask an administrator"
    }
    server.clock.advance(timedelta(seconds=1))
    assert form_login(client, nurse.username, nurse.password, addr).status_code == 303


# --- L2 -------------------------------------------------------------------------------------------


def test_a_flood_of_throttled_sign_ins_writes_at_most_two_audit_entries(
    server: Server, client: httpx.Client, database_url: str
) -> None:
    nurse = create_account(database_url, "nurse")
    addr = address()
    for _ in range(5):
        assert json_login(client, nurse.username, "guess-123456", addr).status_code == 401
    before = last_seq(database_url)
    for i in range(50):
        sign_in = json_login if i % 5 else form_login
        password = nurse.password if i % 2 else f"guess-{i:08d}"
        assert sign_in(client, nurse.username, password, addr).status_code == 429
    flood = audit_rows(database_url, after=before, addr=addr)
    assert [r["action"] for r in flood] == ["auth.login_throttled"]

    server.clock.advance(timedelta(seconds=1))
    assert json_login(client, nurse.username, nurse.password, addr).status_code == 200
    rows = audit_rows(database_url, after=before, addr=addr)
    assert [r["action"] for r in rows] == [
        "auth.login_throttled",
        "auth.login_throttle_ended",
        "auth.login",
    ]
    assert rows[1]["after"]["refused"] == 50


# --- unlock ---------------------------------------------------------------------------------------


def throttle(client: httpx.Client, account: Account, addr: str) -> None:
    for _ in range(5):
        assert json_login(client, account.username, "guess-123456", addr).status_code == 401
    assert json_login(client, account.username, account.password, addr).status_code == 429


def test_an_admin_unlocks_a_user_name_through_the_api_with_a_reason(
    server: Server, client: httpx.Client, database_url: str, accounts: dict[str, Account]
) -> None:
    nurse = create_account(database_url, "nurse")
    places = [address(), address()]
    for addr in places:
        throttle(client, nurse, addr)
    admin = SignedInClient(server.base_url, accounts["admin"])
    colleague = SignedInClient(server.base_url, accounts["nurse"])
    try:
        url = f"/api/v1/users/{nurse.username}/unlock"
        assert colleague.post(url, json={"reason": "she asked"}).status_code == 403
        no_reason = admin.post(url)
        assert no_reason.status_code == 422
        assert no_reason.json() == {
            "detail": f"give a reason to unlock {nurse.username}",
            "field": "reason",
        }
        assert admin.post("/api/v1/users/ghost-zz/unlock", json={"reason": "x"}).status_code == 404
        before = last_seq(database_url)
        unlocked = admin.post(url, json={"reason": "locked out by a typo storm"})
        assert unlocked.status_code == 200, unlocked.text
        assert unlocked.json() == {
            "username": nurse.username,
            "failures_cleared": 10,
            "throttles_ended": 2,
        }
        audited = [
            r for r in audit_rows(database_url, after=before) if r["action"] == "user.unlock"
        ]
        assert len(audited) == 1
        assert (audited[0]["actor"], audited[0]["reason"]) == (
            accounts["admin"].username,
            "locked out by a typo storm",
        )
    finally:
        admin.close()
        colleague.close()
    # At once, without waiting, from both places.
    for addr in places:
        assert json_login(client, nurse.username, nurse.password, addr).status_code == 200


# --- user names that are not plain text -----------------------------------------------------------


@pytest.mark.parametrize("typed", ["a\x00b", "\x00", "nurse\x00\x00", "a\x07b"])
def test_a_user_name_with_control_characters_gets_a_clear_422_and_changes_nothing(
    client: httpx.Client, database_url: str, typed: str
) -> None:
    addr = address()
    failures = failure_count(database_url)
    form = form_login(client, typed, "whatever-123", addr)
    assert form.status_code == 422, form.text
    assert "the user name must be plain text" in form.text
    in_place = json_login(client, typed, "whatever-123", addr)
    assert in_place.status_code == 422, in_place.text
    assert in_place.json()["detail"].startswith("the user name must be plain text: it contains")
    assert audit_rows(database_url, addr=addr) == []
    assert failure_count(database_url) == failures


def test_account_routes_refuse_control_characters_in_user_names(
    server: Server, database_url: str, accounts: dict[str, Account]
) -> None:
    admin = SignedInClient(server.base_url, accounts["admin"])
    try:
        before = last_seq(database_url)
        created = admin.post(
            "/api/v1/users",
            json={"username": "a\x00b", "role": "nurse", "password": "long-enough-pw"},
        )
        assert created.status_code == 422 and created.json()["field"] == "username"
        page = admin.post(
            "/admin/users",
            data={"username": "a\x00b", "role": "nurse", "password": "long-enough-pw"},
        )
        assert page.status_code == 422 and "plain text" in page.text
        for change in ("disable", "enable", "unlock"):
            answer = admin.post(f"/api/v1/users/a%00b/{change}", json={"reason": "test"})
            assert answer.status_code == 422, answer.text
            assert "plain text" in answer.json()["detail"]
        assert [
            r for r in audit_rows(database_url, after=before) if r["action"] != "auth.login"
        ] == []
    finally:
        admin.close()
