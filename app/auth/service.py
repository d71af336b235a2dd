"""Accounts: creating, disabling and listing them, the demo accounts, and the words every part
of sign-in shares (who is signed in, refusals, the system's actors). Each public function is
one unit of work: it writes its rows and its audit row in one transaction and commits. Sign-in
sessions are in app.auth.sign_in, failed sign-ins and their throttles in app.auth.login_failures;
nothing else in app/auth commits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import Actor, RequestInfo
from app.audit import service as audit_service
from app.auth import passwords
from app.auth.models import LoginSession, User
from app.clock import Clock
from app.config import Settings
from app.permissions import ROLES, SYSTEM_ROLE
from app.text import text_problem

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
# audit_event.entity_id holds 255 characters, and a refused path is chosen by the caller.
ROUTE_ID_LIMIT = 255

SYSTEM_ACTOR = Actor(user_id=None, username="system", role=SYSTEM_ROLE)
ANONYMOUS_ACTOR = Actor(user_id=None, username="anonymous", role="anonymous")

AccountRefusal = Literal["invalid", "not_found", "conflict"]
"""invalid: the change itself is wrong; not_found: no such user; conflict: the user name is
taken. The routes answer them 422, 404 and 409."""


class AccountError(ValueError):
    """A refused account change: its kind, and a message of one line, safe to show, never a
    password."""

    def __init__(
        self, message: str, field: str | None = None, kind: AccountRefusal = "invalid"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.kind: AccountRefusal = kind


LoginRefusal = Literal["invalid", "refused", "throttled"]
"""invalid: the sign-in request itself is wrong; refused: the name or password is not right
(or the account is disabled); throttled: too many failures, wait. The routes answer them 422,
401 and 429."""


class LoginRefused(Exception):
    def __init__(self, message: str, kind: LoginRefusal, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind: LoginRefusal = kind
        self.retry_after = retry_after  # seconds, when throttled


@dataclass(frozen=True)
class UserView:
    """Who is signed in, as plain data: safe to read after the database session rolled back
    (an ORM object would expire and try to reload)."""

    id: int
    username: str
    display_name: str
    role: str


@dataclass(frozen=True)
class LoginView:
    id: int
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    user: UserView
    login: LoginView

    @classmethod
    def of(cls, user: User, session: LoginSession) -> SignedIn:
        return cls(
            UserView(user.id, user.username, user.display_name, user.role),
            LoginView(session.id, session.csrf_token, session.expires_at),
        )

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user.id, username=self.user.username, role=self.user.role)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    password: str


DEMO_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("nurse", "nurse", "Demo Nurse"),
    ("physician", "physician", "Demo Physician"),
    ("pharmacist", "pharmacist", "Demo Pharmacist"),
    ("auditor", "auditor", "Demo Auditor"),
    ("admin", "admin", "Demo Administrator"),
)


def demo_password(username: str) -> str:
    return f"{username}-demo-pass"


def actor_of(user: User) -> Actor:
    return Actor(user_id=user.id, username=user.username, role=user.role)


def _user_public(user: User) -> dict[str, object]:
    return {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "disabled": user.disabled_at is not None,
    }


def normalise_username(username: str) -> str:
    return username.strip().lower()


def account_name(username: str) -> str:
    """The normalised user name, refused before any query when it is not plain text."""
    name = normalise_username(username)
    problem = text_problem(name)
    if problem:
        raise AccountError(
            f"user name must be plain text on one line: it {problem}", field="username"
        )
    return name


def checked_reason(reason: str | None) -> str | None:
    problem = None if reason is None else text_problem(reason, multiline=True)
    if problem:
        raise AccountError(f"reason must be plain text: it {problem}", field="reason")
    return reason


# --- accounts ---------------------------------------------------------------------------------


async def create_user(
    db: AsyncSession,
    clock: Clock,
    *,
    actor: Actor,
    username: str,
    role: str,
    password: str,
    display_name: str | None = None,
    request: RequestInfo | None = None,
    is_demo: bool = False,
) -> User:
    name = account_name(username)
    if not USERNAME_PATTERN.match(name):
        raise AccountError(
            "user name must be 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter",
            field="username",
        )
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(ROLES)}", field="role")
    problem = passwords.check_policy(password)
    if problem:
        raise AccountError(problem, field="password")
    title = (display_name or "").strip() or name
    if len(title) > 120:
        raise AccountError("display name must have at most 120 characters", field="display_name")
    problem = text_problem(title)
    if problem:
        raise AccountError(
            f"display name must be plain text on one line: it {problem}", field="display_name"
        )
    if await db.scalar(select(User.id).where(User.username == name)) is not None:
        await db.rollback()  # end the read transaction: a refusal holds no lock
        raise AccountError(f"user {name!r} already exists", field="username", kind="conflict")
    now = clock.now()
    user = User(
        username=name,
        display_name=title,
        role=role,
        password_hash=passwords.hash_password(password),
        is_demo=is_demo,
        created_at=now,
    )
    db.add(user)
    await db.flush()
    await audit_service.append(
        db,
        at=now,
        actor=actor,
        action="user.create",
        entity="user",
        entity_id=str(user.id),
        after=_user_public(user),
        request=request,
    )
    await db.commit()
    return user


async def set_disabled(
    db: AsyncSession,
    clock: Clock,
    *,
    actor: Actor,
    username: str,
    disabled: bool,
    reason: str | None = None,
    request: RequestInfo | None = None,
) -> User:
    """Disable (ending every session of the user at once) or enable an account."""
    name = account_name(username)
    reason = checked_reason(reason)
    user = await db.scalar(select(User).where(User.username == name))
    refusal = None
    if user is None:
        refusal = f"no user {name!r}"
    elif disabled and actor.user_id == user.id:
        refusal = "you cannot disable your own account"
    elif disabled == (user.disabled_at is not None):
        refusal = f"user {name!r} is already {'disabled' if disabled else 'enabled'}"
    if refusal is not None or user is None:
        await db.rollback()  # end the read transaction: a refusal holds no lock
        kind: AccountRefusal = "not_found" if user is None else "invalid"
        raise AccountError(refusal or "no such user", field="username", kind=kind)
    now = clock.now()
    before = _user_public(user)
    user.disabled_at = now if disabled else None
    ended = 0
    if disabled:
        result = await db.execute(
            update(LoginSession)
            .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
            .values(ended_at=now, end_reason="account disabled")
        )
        ended = cast(CursorResult[Any], result).rowcount or 0
    await audit_service.append(
        db,
        at=now,
        actor=actor,
        action="user.disable" if disabled else "user.enable",
        entity="user",
        entity_id=str(user.id),
        before=before,
        after={**_user_public(user), "sessions_ended": ended},
        reason=reason,
        request=request,
    )
    await db.commit()
    return user


async def list_users(db: AsyncSession) -> list[User]:
    return list(await db.scalars(select(User).order_by(User.role, User.username)))


async def seed_demo_users(db: AsyncSession, clock: Clock, settings: Settings) -> list[DemoLogin]:
    """On an empty database, create one demo account per role. Returns the demo logins that
    still work, so `make run` can print them every time. Never in production."""
    if settings.env == "production":
        raise AccountError("demo accounts are never created in production")
    if not await db.scalar(select(func.count()).select_from(User)):
        for username, role, title in DEMO_ACCOUNTS:
            await create_user(
                db,
                clock,
                actor=SYSTEM_ACTOR,
                username=username,
                role=role,
                password=demo_password(username),
                display_name=title,
                is_demo=True,
            )
    working = []
    for user in await db.scalars(select(User).where(User.is_demo.is_(True)).order_by(User.id)):
        password = demo_password(user.username)
        if user.is_active and passwords.verify_password(user.password_hash, password):
            working.append(DemoLogin(user.username, user.role, password))
    return working


async def record_refusal(
    db: AsyncSession,
    clock: Clock,
    *,
    actor: Actor,
    action: str,
    target: str,
    reason: str,
    request: RequestInfo,
) -> None:
    """A refused request is evidence too: who tried what, and why it was refused."""
    await audit_service.append(
        db,
        at=clock.now(),
        actor=actor,
        action="access.denied",
        entity="route",
        entity_id=target[:ROUTE_ID_LIMIT],
        after={"permission": action},
        reason=reason,
        request=request,
    )
    await db.commit()
