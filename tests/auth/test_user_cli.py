"""`stepwise user …` as a real subprocess on a real database."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from app.auth.router import STATUS_OF_LOGIN_REFUSAL
from tests.support import create_account, run_async

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def stepwise(*args: str, stdin: str = "", env: dict[str, str] | None = None):
    base = {k: v for k, v in os.environ.items() if not k.startswith("STEPWISE_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=PROJECT_ROOT,
        input=stdin,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_error(result) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_add_reads_the_password_from_stdin_and_disable_works(database_url: str) -> None:
    name = f"cli{secrets.token_hex(3)}"
    password = f"pw-{secrets.token_urlsafe(10)}"
    added = stepwise(
        "user",
        "add",
        name,
        "--role",
        "physician",
        "--display-name",
        "Dr Test",
        "--database-url",
        database_url,
        stdin=password + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"created {name} (physician)"
    assert password not in added.stdout + added.stderr

    duplicate = stepwise(
        "user",
        "add",
        name,
        "--role",
        "nurse",
        "--database-url",
        database_url,
        stdin=password + "\n",
    )
    assert one_line_error(duplicate) == f"error: user '{name}' already exists"

    disabled = stepwise("user", "disable", name, "--reason", "left", "--database-url", database_url)
    assert disabled.returncode == 0 and "sessions have ended" in disabled.stdout

    async def audit_actor() -> str:
        from sqlalchemy import select

        from app.audit import AuditEvent
        from app.db import create_engine, session_factory

        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                event = await db.scalar(
                    select(AuditEvent)
                    .where(AuditEvent.action == "user.disable")
                    .order_by(AuditEvent.seq.desc())
                )
                assert event is not None
                return event.actor_username
        finally:
            await engine.dispose()

    assert run_async(audit_actor).startswith("cli:")


def test_bad_input_is_one_line(database_url: str) -> None:
    assert "unknown role 'surgeon'" in one_line_error(
        stepwise(
            "user",
            "add",
            "someone",
            "--role",
            "surgeon",
            "--database-url",
            database_url,
            stdin="long-enough-pw\n",
        )
    )
    short = stepwise(
        "user", "add", "someone", "--role", "nurse", "--database-url", database_url, stdin="short\n"
    )
    assert one_line_error(short) == "error: password must have at least 10 characters"
    assert "no user 'ghost'" in one_line_error(
        stepwise("user", "disable", "ghost", "--database-url", database_url)
    )
    assert "no password" in one_line_error(
        stepwise("user", "add", "someone", "--role", "nurse", "--database-url", database_url)
    )


def test_seed_demo_prints_working_logins_on_an_empty_database(empty_database_url: str) -> None:
    from app.schema import upgrade

    upgrade(empty_database_url)
    first = stepwise("user", "seed-demo", "--database-url", empty_database_url)
    assert first.returncode == 0, first.stderr
    assert "nurse-demo-pass" in first.stdout and "admin-demo-pass" in first.stdout
    again = stepwise("user", "seed-demo", "--database-url", empty_database_url)
    assert again.stdout == first.stdout  # idempotent: same logins, no new accounts
    production = stepwise(
        "user",
        "seed-demo",
        "--database-url",
        empty_database_url,
        env={"STEPWISE_ENV": "production", "STEPWISE_SECRET_KEY": secrets.token_urlsafe(40)},
    )
    assert one_line_error(production) == "error: demo accounts are never created in production"


def test_seed_demo_leaves_a_database_with_real_accounts_alone(empty_database_url: str) -> None:
    from app.schema import upgrade

    upgrade(empty_database_url)
    create_account(empty_database_url, "admin")
    result = stepwise("user", "seed-demo", "--database-url", empty_database_url)
    assert result.returncode == 0
    assert result.stdout.strip() == "no demo logins (this database has its own accounts)"


def test_unlock_lets_a_throttled_user_name_sign_in_at_once_and_is_audited(
    database_url: str,
) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from app.audit import AuditEvent, RequestInfo
    from app.auth import login_failures, service
    from app.auth import sign_in as sign_in_service
    from app.auth.models import LoginFailure
    from app.clock import RealClock
    from app.config import Settings
    from app.db import create_engine, session_factory

    account = create_account(database_url, "nurse")
    settings = Settings(database_url=database_url, env="test")
    addr = f"10.66.{secrets.randbelow(250)}.{secrets.randbelow(250)}"

    async def with_db(work):
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as db:
                return await work(db)
        finally:
            await engine.dispose()

    async def fail_twelve_times(db) -> None:
        # Twelve recent failures from one place: a wait of over two minutes from there.
        key = login_failures.failure_key(settings, account.username)
        now = datetime.now(UTC)
        db.add_all(LoginFailure(username_key=key, client_addr=addr, at=now) for _ in range(12))
        await db.commit()

    async def sign_in(db) -> int:
        try:
            await sign_in_service.login(
                db,
                RealClock(),
                settings,
                username=account.username,
                password=account.password,
                request=RequestInfo(client_addr=addr),
            )
        except service.LoginRefused as refused:
            return STATUS_OF_LOGIN_REFUSAL[refused.kind]
        return 200

    async def last_unlock(db) -> AuditEvent | None:
        return await db.scalar(
            select(AuditEvent)
            .where(AuditEvent.action == "user.unlock")
            .order_by(AuditEvent.seq.desc())
        )

    run_async(lambda: with_db(fail_twelve_times))
    assert run_async(lambda: with_db(sign_in)) == 429
    same_secret = {"STEPWISE_SECRET_KEY": settings.secret_key.get_secret_value()}
    no_reason = stepwise(
        "user", "unlock", account.username, "--database-url", database_url, env=same_secret
    )
    assert one_line_error(no_reason) == (
        f"error: give a reason to unlock {account.username} with --reason"
    )
    assert "no user 'ghost'" in one_line_error(
        stepwise("user", "unlock", "ghost", "--reason", "x", "--database-url", database_url)
    )
    unlocked = stepwise(
        "user",
        "unlock",
        account.username,
        "--reason",
        "locked out at the bedside",
        "--database-url",
        database_url,
        env=same_secret,
    )
    assert unlocked.returncode == 0, unlocked.stderr
    assert unlocked.stdout.strip() == (
        f"unlocked {account.username}: 12 failed sign-in(s) forgotten, 1 throttle(s) ended"
    )
    assert run_async(lambda: with_db(sign_in)) == 200
    event = run_async(lambda: with_db(last_unlock))
    assert event is not None and event.actor_username.startswith("cli:")
    assert event.reason == "locked out at the bedside"
