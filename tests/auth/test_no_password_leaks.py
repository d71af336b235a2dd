"""Passwords never appear in logs, audit rows or error messages."""

from __future__ import annotations

import logging
import secrets

import httpx
import pytest
from sqlalchemy import select

from app.audit import AuditEvent
from app.db import create_engine, session_factory
from tests.auth.test_user_cli import stepwise
from tests.support import login_form_token, run_async


def all_audit_text(database_url: str) -> str:
    async def dump() -> str:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                rows = await db.scalars(select(AuditEvent))
                return "\n".join(
                    repr({c.key: getattr(row, c.key) for c in AuditEvent.__table__.columns})
                    for row in rows
                )
        finally:
            await engine.dispose()

    return run_async(dump)


def test_no_password_reaches_logs_audit_or_answers(
    signed_in,
    live_server: str,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = f"Zz-{secrets.token_urlsafe(12)}"  # distinctive, easy to grep for
    too_long = "Yy" + secrets.token_urlsafe(300)
    seen: list[str] = []
    admin = signed_in("admin")
    username = f"leak{secrets.token_hex(3)}"

    created = admin.post(
        "/api/v1/users", json={"username": username, "role": "nurse", "password": secret}
    )
    assert created.status_code == 201
    seen.append(created.text)
    for body in (
        {"username": "x y", "role": "nurse", "password": secret},  # refused user name
        {"username": f"{username}b", "role": "nurse", "password": "short-Zz"},
        {"username": f"{username}c", "role": "nurse", "password": too_long},  # schema refusal
        {"username": f"{username}d", "role": "nurse", "password": [secret]},  # wrong type
    ):
        refused = admin.post("/api/v1/users", json=body)
        assert refused.status_code == 422
        seen.append(refused.text)

    with httpx.Client(base_url=live_server, timeout=15, headers={"origin": live_server}) as anon:
        for user, password in (
            (username, secret + "-wrong"),
            (secret, "whatever-123"),
            (username, secret),
        ):
            token = login_form_token(anon)
            answer = anon.post(
                "/login", data={"username": user, "password": password, "login_token": token}
            )
            seen.append(answer.text)

    cli = stepwise(
        "user",
        "add",
        f"{username}e",
        "--role",
        "nurse",
        "--database-url",
        database_url,
        stdin=secret + "\n",
    )
    seen.extend([cli.stdout, cli.stderr])

    audit = all_audit_text(database_url)
    assert username in audit  # the rows are there...
    for text, where in ((audit, "audit rows"), (caplog.text, "logs"), ("\n".join(seen), "answers")):
        # ...and the password is in none of them, not even when typed as the user name
        assert secret not in text, where
        assert too_long[:40] not in text, where
