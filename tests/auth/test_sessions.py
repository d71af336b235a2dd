"""Login sessions through the service, on a real database, with a manual clock."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import AuditEvent, RequestInfo
from app.auth import service
from app.auth import sign_in as sign_in_service
from app.auth.models import LoginSession
from app.auth.router import STATUS_OF_LOGIN_REFUSAL
from app.auth.service import AccountError, LoginRefused
from app.clock import ManualClock
from app.config import Settings
from tests.support import TEST_ACTOR

REQUEST = RequestInfo(client_addr="10.1.2.3", user_agent="pytest", request_id="r-1")


async def new_user(db: AsyncSession, clock: ManualClock, role: str = "nurse") -> tuple[str, str]:
    username = f"u{secrets.token_hex(4)}"
    password = f"pw-{secrets.token_urlsafe(12)}"
    await service.create_user(
        db, clock, actor=TEST_ACTOR, username=username, role=role, password=password
    )
    return username, password


async def sign_in(db, clock, settings, username, password, addr="10.1.2.3"):
    return await sign_in_service.login(
        db,
        clock,
        settings,
        username=username,
        password=password,
        request=RequestInfo(client_addr=addr, user_agent="pytest"),
    )


async def last_audit(db: AsyncSession, action: str) -> AuditEvent:
    event = await db.scalar(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq.desc())
    )
    assert event is not None, f"no {action} audit row"
    return event


async def test_sign_in_gives_a_token_that_only_the_browser_holds(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    new = await sign_in(db, clock, settings, username, password)
    assert len(new.token) >= 22  # 128 bits, url-safe base64
    stored = await db.get(LoginSession, new.signed_in.login.id)
    assert stored is not None and stored.token_hash != new.token
    assert stored.token_hash == sign_in_service.token_hash(new.token)
    resolved = await sign_in_service.resolve(db, clock, settings, new.token, REQUEST)
    assert resolved is not None and resolved.user.username == username
    assert (await last_audit(db, "auth.login")).actor_username == username


async def test_idle_timeout_ends_the_session(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    token = (await sign_in(db, clock, settings, username, password)).token
    clock.advance(timedelta(minutes=settings.session_idle_minutes - 1))
    assert await sign_in_service.resolve(db, clock, settings, token, REQUEST) is not None
    # that use counted as activity: the idle clock starts again from here
    clock.advance(timedelta(minutes=settings.session_idle_minutes - 1))
    assert await sign_in_service.resolve(db, clock, settings, token, REQUEST) is not None
    clock.advance(timedelta(minutes=settings.session_idle_minutes))
    assert await sign_in_service.resolve(db, clock, settings, token, REQUEST) is None
    ended = await last_audit(db, "auth.session_ended")
    assert (ended.actor_username, ended.reason) == (username, "idle timeout")
    # and it stays ended, even if used again at once
    assert await sign_in_service.resolve(db, clock, settings, token, REQUEST) is None


async def test_absolute_timeout_ends_even_a_busy_session(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    token = (await sign_in(db, clock, settings, username, password)).token
    busy_until = timedelta(hours=settings.session_absolute_hours)
    elapsed = timedelta()
    while elapsed + timedelta(minutes=10) < busy_until:
        clock.advance(timedelta(minutes=10))
        elapsed += timedelta(minutes=10)
        assert await sign_in_service.resolve(db, clock, settings, token, REQUEST) is not None
    clock.advance(busy_until - elapsed)
    assert await sign_in_service.resolve(db, clock, settings, token, REQUEST) is None
    assert (await last_audit(db, "auth.session_ended")).reason == "absolute timeout"


async def test_logout_invalidates_the_token_on_the_server(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    new = await sign_in(db, clock, settings, username, password)
    await sign_in_service.logout(db, clock, new.signed_in, REQUEST)
    # a copy of the cookie kept by anyone is worthless now
    assert await sign_in_service.resolve(db, clock, settings, new.token, REQUEST) is None
    assert (await last_audit(db, "auth.logout")).actor_username == username


async def test_disabling_a_user_ends_all_their_sessions_at_once(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    tokens = [(await sign_in(db, clock, settings, username, password)).token for _ in range(2)]
    await service.set_disabled(
        db, clock, actor=TEST_ACTOR, username=username, disabled=True, reason="left the unit"
    )
    for token in tokens:
        assert await sign_in_service.resolve(db, clock, settings, token, REQUEST) is None
    with pytest.raises(LoginRefused) as refused:
        await sign_in(db, clock, settings, username, password)
    assert STATUS_OF_LOGIN_REFUSAL[refused.value.kind] == 401
    disabled = await last_audit(db, "user.disable")
    assert disabled.reason == "left the unit" and '"sessions_ended":2' in disabled.after_json


async def test_wrong_password_and_unknown_user_get_the_same_answer(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, _ = await new_user(db, clock)
    with pytest.raises(LoginRefused) as wrong_password:
        await sign_in(db, clock, settings, username, "not-the-password")
    with pytest.raises(LoginRefused) as unknown:
        await sign_in(db, clock, settings, f"nobody{secrets.token_hex(3)}", "whatever-123")
    assert wrong_password.value.message == unknown.value.message == "wrong user name or password"
    failed = await last_audit(db, "auth.login_failed")
    assert failed.actor_username == "anonymous" and failed.entity_id is None


async def test_repeated_failures_throttle_that_address_not_the_account(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username, password = await new_user(db, clock)
    address = f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    for _ in range(settings.login_max_failures):
        with pytest.raises(LoginRefused):
            await sign_in(db, clock, settings, username, "wrong-password", address)
    # from that address even the right password waits (1 s after the fifth failure) ...
    with pytest.raises(LoginRefused) as throttled:
        await sign_in(db, clock, settings, username, password, address)
    assert (STATUS_OF_LOGIN_REFUSAL[throttled.value.kind], throttled.value.retry_after) == (429, 1)
    assert (await last_audit(db, "auth.login_throttled")).reason == "too many failed sign-ins"
    # ... but not from another one
    assert (await sign_in(db, clock, settings, username, password, "10.200.0.1")).token
    clock.advance(timedelta(seconds=1))
    assert (await sign_in(db, clock, settings, username, password, address)).token


async def test_demo_accounts_never_sign_in_in_production(
    db: AsyncSession, clock: ManualClock, settings: Settings
) -> None:
    username = f"demo{secrets.token_hex(3)}"
    await service.create_user(
        db,
        clock,
        actor=TEST_ACTOR,
        username=username,
        role="nurse",
        password=service.demo_password(username),
        is_demo=True,
    )
    production = settings.model_copy(update={"env": "production"})
    with pytest.raises(LoginRefused):
        await sign_in(db, clock, production, username, service.demo_password(username))
    assert (await sign_in(db, clock, settings, username, service.demo_password(username))).token
    with pytest.raises(AccountError, match="never created in production"):
        await service.seed_demo_users(db, clock, production)


@pytest.mark.parametrize(
    ("username", "role", "password", "field"),
    [
        ("Bad Name", "nurse", "long-enough-pw", "username"),
        ("x", "nurse", "long-enough-pw", "username"),
        ("okname", "surgeon", "long-enough-pw", "role"),
        ("okname", "nurse", "short", "password"),
        ("okname", "nurse", " padded-password ", "password"),
    ],
)
async def test_bad_accounts_are_refused_and_write_nothing(
    db: AsyncSession, clock: ManualClock, username: str, role: str, password: str, field: str
) -> None:
    before = await db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()))
    with pytest.raises(AccountError) as refused:
        await service.create_user(
            db, clock, actor=TEST_ACTOR, username=username, role=role, password=password
        )
    assert refused.value.field == field
    assert password.strip() not in refused.value.message
    after = await db.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()))
    assert after == before


async def test_duplicate_user_names_are_refused(db: AsyncSession, clock: ManualClock) -> None:
    username, _ = await new_user(db, clock)
    with pytest.raises(AccountError, match="already exists"):
        await service.create_user(
            db,
            clock,
            actor=TEST_ACTOR,
            username=username.upper(),
            role="nurse",
            password="another-password",
        )
